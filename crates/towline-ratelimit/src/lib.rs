//! `RateLimitLayer`: when a server says "wait", every request to that key waits.
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
//!   [`ApiError`](towline_core::ApiError);
//! - held requests wait without polling, and are released spread over a small jitter;
//! - a wait longer than [`DEFAULT_MAX_WAIT`] (configurable), or one ending past the call's
//!   [`Deadline`](towline_core::Deadline), fails at once with
//!   [`RateLimited`](towline_core::RateLimited) carrying the instant: never a silent hang;
//! - optional client-side pacing to a known [`Quota`] (Open2b: 1000 calls per 5 minutes per
//!   key), exact over any window (a sliding-window log), so the limit is not hit at all;
//! - the state sits behind the [`GateStore`] trait, in memory by default, so a shared store
//!   can serve many replicas;
//! - `poll_ready` is the inner service's: a held request waits in its own future, so a closed
//!   gate on one key never holds up another.
//!
//! See [`RateLimitLayer`] for an example.

mod layer;
mod store;

pub use layer::{
    DEFAULT_MAX_WAIT, DEFAULT_RELEASE_SPREAD, Quota, RateLimit, RateLimitLayer, ResponseFuture,
};
pub use store::{GateStore, InMemoryStore};
