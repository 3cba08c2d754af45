//! `CircuitBreakerLayer`: when a server keeps failing, stop calling it for a while; and
//! `BulkheadLayer`: at most N calls per key in flight.
//!
//! Retrying into a chronic failure multiplies the load on a sick server and makes every caller
//! wait out its deadline. This layer keeps a circuit per key (the authority, or your
//! function), shared by every clone of the layer:
//!
//! - **closed**: calls go; outcomes are counted over a sliding window. It opens when at least
//!   [`DEFAULT_MIN_THROUGHPUT`] calls were counted and at least [`DEFAULT_FAILURE_RATIO`] of
//!   them failed over [`DEFAULT_SAMPLING_WINDOW`] (the defaults of Polly and of Microsoft's
//!   standard HTTP resilience handler), or, optionally, after N failures in a row;
//! - **open**: calls fail at once with [`CircuitOpen`](towline_core::CircuitOpen) (its own
//!   [`ErrorKind`](towline_core::ErrorKind::CircuitOpen)), not sent, for the break
//!   ([`DEFAULT_BREAK`]);
//! - **half-open**: after the break, a few probe calls go ([`DEFAULT_PROBES`]); if they
//!   succeed the circuit closes, if one fails it opens again for twice as long, up to
//!   [`DEFAULT_MAX_BREAK`].
//!
//! A failure is what towline's retry layer treats as the server's fault, read from core's
//! typed model: network errors, timeouts, 500, 502, 503, 504. A 4xx is an answer (a success for
//! the circuit); a 429 (or a 503 with a wait hint) counts nothing, nor does a call whose future
//! was dropped. [`Circuits`] shows each key's state and forces a circuit open or closed.
//!
//! Each transition emits one event `towline.circuit.state` (target `towline::breaker`; WARN
//! when the circuit opens, INFO otherwise) with `towline.circuit.key` (the authority, or
//! `<redacted>` for a `key_by` key), `towline.circuit.from`, `towline.circuit.to` (`closed`,
//! `open`, `half_open`, `forced_open`) and, on opening, `towline.circuit.break_ms`.
//!
//! Placed below the retry layer, an open circuit ends the call at once: the retry layer does
//! not retry a [`CircuitOpen`](towline_core::CircuitOpen).
//!
//! ```
//! use std::time::Duration;
//! use http::{Request, Response};
//! use tower::{BoxError, Layer, ServiceExt, service_fn};
//! use towline_breaker::{CircuitBreakerLayer, CircuitState, Settings};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let layer = CircuitBreakerLayer::with_settings(Settings::new().consecutive_failures(3)).unwrap();
//! let service = layer.layer(service_fn(|_req: Request<()>| async {
//!     Err::<Response<()>, BoxError>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into())
//! }));
//! for _ in 0..3 {
//!     let request = Request::get("http://down.example/").body(()).unwrap();
//!     assert!(service.clone().oneshot(request).await.is_err());
//! }
//! assert!(matches!(
//!     layer.circuits().state("down.example"),
//!     Some(CircuitState::Open { .. })
//! ));
//! # }
//! ```
//!
//! # Bulkhead: a concurrency limit per key
//!
//! [`BulkheadLayer`] lets at most N calls per key be in flight at once, so one slow server
//! cannot take every connection, task and deadline of the client; a bounded queue may hold a
//! few more for a bounded time, and the rest fail at once with
//! [`BulkheadFull`](towline_core::BulkheadFull) (its own
//! [`ErrorKind`](towline_core::ErrorKind::BulkheadFull), not sent, final for the retry layer).
//!
//! Why not tower's `ConcurrencyLimit` (`tower::limit`): it keeps one semaphore for every
//! request of a service and its clones, with no key, so a slow host holds back the fast ones.
//! It has no queue bound and no wait limit: a call waits as long as it takes, and only a
//! timeout above ends the wait, as a timeout (which may have been sent, for the classifier)
//! rather than a refusal known not to be sent. And it takes its permit in `poll_ready`,
//! before the request exists: it cannot read a key or the call's deadline from the request,
//! and a permit is held by every service made ready and not yet called. Services that buffer
//! or clone defeat that: a `Buffer`'s worker makes its inner service ready and then holds the
//! permit while it waits for the next request, and a clone made ready and dropped (the retry
//! layer's and tower-http's clone-and-swap, `oneshot` on a clone per call) takes and gives back
//! a permit it never used, so its waiters are woken for nothing. This layer takes its place
//! in the response future, where the key, the deadline and the wait limit are known, and its
//! readiness is the inner service's.
//!
//! A place is held until the response head arrives (as tower's `ConcurrencyLimit` holds its
//! permit until its response future completes), not until the body ends: the response body
//! type stays the inner service's, and a body the caller keeps unread, or reads slowly, does
//! not hold a place of the key meanwhile. Streaming downloads therefore count only until
//! their head; bound those with the connection pool's limit.
//!
//! ```
//! use std::time::Duration;
//! use towline_breaker::BulkheadLayer;
//!
//! // 8 calls per host in flight, 16 more may wait up to 200 ms (and never past the deadline).
//! let layer = BulkheadLayer::new(8).queue(16).max_wait(Duration::from_millis(200));
//! # let _ = layer;
//! ```

mod bulkhead;
mod circuit;
mod future;
mod handle;
mod judge;
mod layer;
mod registry;
mod service;
mod settings;
mod state;
mod time;
mod window;

pub use bulkhead::{Bulkhead, BulkheadFuture, BulkheadLayer};
pub use future::ResponseFuture;
pub use handle::Circuits;
pub use layer::CircuitBreakerLayer;
pub use registry::DEFAULT_MAX_KEYS;
pub use service::CircuitBreaker;
pub use settings::{
    DEFAULT_BREAK, DEFAULT_FAILURE_RATIO, DEFAULT_MAX_BREAK, DEFAULT_MIN_THROUGHPUT,
    DEFAULT_PROBES, DEFAULT_SAMPLING_WINDOW, InvalidSettings, MIN_SAMPLING_WINDOW, Settings,
};
pub use state::CircuitState;
