//! `RetryLayer`: retries with jittered backoff, a retry budget, idempotency rules, server wait
//! hints and request-body replay — the retry layer users of tower's `Retry` write by hand.
//!
//! - **What to retry** ([`StandardClassifier`]): network errors and per-attempt timeouts; 408,
//!   429, 500, 502, 503 and 504, as responses or as decoded [`ApiError`](towline_core::ApiError)s.
//!   Never other 4xx, auth errors or redirects. Compose your own rules with [`Classify::or`]
//!   and closures.
//! - **When** ([`Backoff`], [`Jitter`]): exponential (100 ms doubling to 10 s by default) or
//!   constant, with none, full, equal or decorrelated jitter, from a seedable RNG. A server's
//!   wait (`Retry-After`, `X-Wait-Seconds`, `RateLimit-Reset`, Google's `RetryInfo`) is the
//!   floor of the next delay.
//! - **How much** ([`RetryBudget`]): retries add at most 20 % of the calls (plus 10 per second),
//!   shared by every clone of the layer, so an outage cannot multiply the load. When the budget
//!   is empty the last error comes back at once inside
//!   [`RetryBudgetExhausted`](towline_core::RetryBudgetExhausted) (a last response comes back
//!   as it is, its [`Attempts`](towline_core::Attempts) marked
//!   [`budget_exhausted`](towline_core::Attempts::budget_exhausted)).
//! - **Whether it is safe**: GET, HEAD, OPTIONS, TRACE, PUT and DELETE are retried after they
//!   may have reached the server; POST and PATCH only with an `Idempotency-Key` (which the
//!   layer can add) or when the failure proves the server did not process them (the
//!   connection was never made, a 429, a 503 with a wait hint — Open2b's way).
//! - **Until when**: at most [`DEFAULT_MAX_RETRIES`] retries, optionally a total delay, and never a
//!   sleep past the call's [`Deadline`](towline_core::Deadline); a server wait that would end
//!   past it fails at once with [`RateLimited`](towline_core::RateLimited).
//! - **Bodies**: a [`Replayable`](towline_core::Replayable) request body is sent again as it is
//!   (`Full`, `Empty`); wrap a streaming body in
//!   [`ReplayBody`](towline_core::ReplayBody) to keep what it sent, up to a cap.
//! - **tower's own `Retry`**: [`RetryLayer::tower_policy`] gives these rules as a
//!   `tower::retry::Policy` ([`TowerPolicy`]) for a stack that already uses tower's `Retry`;
//!   and [`Classify`] is implemented for closures, so a predicate from an existing policy
//!   plugs in as a classifier.
//! - **Hedging** ([`HedgeLayer`], off unless added): a slow idempotent request is sent a
//!   second time after a fixed delay or a latency percentile, and the first response wins;
//!   hedges obey the same idempotency rule, spend the same [`RetryBudget`] and never start
//!   when the call's deadline leaves less than the delay. Place it below the retry layer.
//! - **Record**: a retried call's response carries the
//!   [`Attempts`](towline_core::Attempts) extension; a retried call's error is wrapped in
//!   [`Retried`](towline_core::Retried). A retried call gets a `tracing` span (`retry`, with
//!   the method and host) and a debug event per retry (attempt, delay, what the last attempt
//!   returned); never headers, paths or queries, which may carry secrets. A call that succeeds
//!   at once creates no span.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{BoxError, ServiceBuilder, ServiceExt};
//! use towline_core::Attempts;
//! use towline_retry::{RetryLayer, RetryPolicy};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
//! let counted = calls.clone();
//! let service = ServiceBuilder::new()
//!     .layer(RetryLayer::with_policy(RetryPolicy::new().seed(7)))
//!     .service_fn(move |_req: Request<Full<Bytes>>| {
//!         // Two 503s while the API scales up, then a success.
//!         let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
//!         async move {
//!             let status = if n < 2 { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
//!             Ok::<_, BoxError>(Response::builder().status(status).body(()).unwrap())
//!         }
//!     });
//!
//! let response = service.oneshot(Request::new(Full::new(Bytes::new()))).await.unwrap();
//! assert_eq!(response.status(), StatusCode::OK);
//! let attempts = Attempts::from_extensions(response.extensions()).unwrap();
//! assert_eq!(attempts.count(), 3);
//! # }
//! ```

mod backoff;
mod budget;
mod classify;
mod decide;
mod future;
pub mod hedge;
mod layer;
mod policy;
mod service;
mod shared;
mod template;
mod tower_policy;

pub use backoff::{Backoff, InvalidBackoff, Jitter};
pub use budget::{InvalidBudget, RetryBudget};
pub use classify::{Classify, Or, Outcome, StandardClassifier, Verdict};
pub use future::ResponseFuture;
pub use hedge::{Hedge, HedgeLayer, InvalidHedge};
pub use layer::RetryLayer;
pub use policy::{DEFAULT_MAX_HINT_WAIT, DEFAULT_MAX_RETRIES, IDEMPOTENCY_KEY, RetryPolicy};
pub use service::Retry;
pub use tower_policy::TowerPolicy;
