//! `RateLimitLayer`: when a server says "wait", every request to that key waits.
//!
//! ```
//! use std::time::Duration;
//! use http::{Request, Response};
//! use tower::{BoxError, Layer, ServiceExt, service_fn};
//! use towline_ratelimit::{Quota, RateLimitLayer};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! // At most 2 calls a second per host, and a 429's `Retry-After` honoured by every call.
//! let layer = RateLimitLayer::new().quota(Quota::new(2, Duration::from_secs(1)));
//! let service = layer.layer(service_fn(|_req: Request<()>| async {
//!     Ok::<_, BoxError>(Response::new(()))
//! }));
//! let start = tokio::time::Instant::now();
//! for _ in 0..3 {
//!     let request = Request::get("http://api.example/items").body(()).unwrap();
//!     service.clone().oneshot(request).await.unwrap();
//! }
//! // The third call waited for the next window.
//! assert_eq!(start.elapsed(), Duration::from_secs(1));
//! # }
//! ```
//!
//! A 429 with `Retry-After`, or Open2b's 503 with `X-Wait-Seconds`, tells the client that
//! nobody on this key should call again before a given instant. Retrying just the one request
//! (what retry libraries do) lets every other concurrent request hit the wall too. This layer
//! closes a gate per key (the authority, or your function: an API key, a tenant), shared by all
//! clones of the layer, and holds every request to that key until it opens:
//!
//! - the wait comes from the hints of `towline-core` ([`HintReader`](towline_core::HintReader):
//!   `Retry-After` in both forms, `X-Wait-Seconds`, `RateLimit-Reset`, `X-RateLimit-Reset`,
//!   your own header) on a 429 or 503 response, or on a decoded
//!   [`ApiError`](towline_core::ApiError); one response closes a gate for at most
//!   [`DEFAULT_MAX_CLOSE`] (configurable), whatever its hint says;
//! - held requests wait without polling, and are released spread over a small jitter;
//! - a wait longer than [`DEFAULT_MAX_WAIT`] (configurable), or one ending at or past the
//!   call's [`Deadline`](towline_core::Deadline), fails at once with
//!   [`RateLimited`](towline_core::RateLimited) carrying the instant: never a silent hang;
//! - optional client-side pacing to a known [`Quota`] (Open2b: 1000 calls per 5 minutes per
//!   key), exact over any window (a sliding-window log), so the limit is not hit at all; a
//!   caller that gives up while waiting gives its slot back;
//! - the state sits behind the [`GateStore`] trait, async-ready for a store shared by many
//!   replicas; the default [`InMemoryStore`] forgets entries as they expire and keeps at
//!   most [`DEFAULT_MAX_KEYS`] keys;
//! - [`Gates`] lists the closed gates and reopens one;
//! - `poll_ready` is the inner service's: a held request waits in its own future, so a closed
//!   gate on one key never holds up another.

mod admit;
mod config;
mod future;
mod gates;
mod key;
mod layer;
mod memory;
mod quota;
mod service;
mod store;
mod time;

pub use future::ResponseFuture;
pub use gates::{ClosedGate, Gates};
pub use layer::{DEFAULT_MAX_CLOSE, DEFAULT_MAX_WAIT, DEFAULT_RELEASE_SPREAD, RateLimitLayer};
pub use memory::{DEFAULT_MAX_KEYS, InMemoryStore};
pub use quota::{Quota, QuotaError};
pub use service::RateLimit;
pub use store::{GateStore, Reservation, Slot, StoreFuture};
