//! towline: resilience middleware for outbound HTTP, as composable tower layers.
//!
//! Real APIs fail in messy, vendor-specific ways. towline's layers stack over any hyper or
//! tower `Service` and turn that into a few typed outcomes ([`Error`], [`ErrorKind`]):
//!
//! | layer | crate | feature |
//! |---|---|---|
//! | [`DeadlineLayer`], [`TimeoutLayer`] | `towline-timeout` | `timeout` |
//! | [`RetryLayer`] | `towline-retry` | `retry` |
//! | [`RateLimitLayer`] | `towline-ratelimit` | `ratelimit` |
//! | [`TokenRefreshLayer`] | `towline-auth` | `auth` |
//! | [`NoRedirectLayer`] | `towline-redirect` | `redirect` |
//! | [`ErrorBodyLayer`] | `towline-envelope` | `envelope` |
//! | [`Pipeline`], [`vendors`], [`ServiceBuilderExt`] | this crate | `pipeline` (default: all) |
//!
//! # The standard pipeline in one call
//!
//! ```
//! use bytes::Bytes;
//! use http::Request;
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::ServiceExt;
//! use towline::{Error, ErrorKind, Pipeline};
//! use towline_testkit::{Reply, TestServer};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let server = TestServer::start().await;
//! server.script("/items", [Reply::status(503), Reply::ok().body("[]")]);
//!
//! let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
//! let service = Pipeline::new().service(client);
//! let response = service
//!     .clone()
//!     .oneshot(Request::get(server.url("/items")).body(Empty::new()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 200); // the 503 was retried
//!
//! server.route("/gone", Reply::status(404));
//! let outcome = service
//!     .oneshot(Request::get(server.url("/gone")).body(Empty::new()).unwrap())
//!     .await;
//! let Err(err) = outcome else { panic!("a 404 is an error") };
//! assert_eq!(Error::from(err).kind(), ErrorKind::Api);
//! # }
//! ```
//!
//! # Layer by layer
//!
//! [`ServiceBuilderExt`] adds one method per layer to tower's `ServiceBuilder`:
//!
//! ```
//! use std::time::Duration;
//! use tower::ServiceBuilder;
//! use towline::ServiceBuilderExt;
//!
//! let builder = ServiceBuilder::new()
//!     .call_deadline(Duration::from_secs(30))
//!     .retries(towline::RetryLayer::new())
//!     .no_redirects()
//!     .attempt_timeout(Duration::from_secs(10))
//!     .decode_error_bodies();
//! # let _ = builder;
//! ```

pub use towline_core as core;
pub use towline_core::{
    ApiError, ApiErrorKind, Attempts, AuthReason, BoxError, Deadline, DisplayChain, Error,
    ErrorKind, HintReader, ReplayBody, RetryHint,
};

#[cfg(feature = "auth")]
pub use towline_auth as auth;
#[cfg(feature = "auth")]
pub use towline_auth::{ClientCredentials, StaticToken, Token, TokenRefreshLayer, TokenSource};
#[cfg(feature = "breaker")]
pub use towline_breaker as breaker;
#[cfg(feature = "breaker")]
pub use towline_breaker::{BulkheadLayer, CircuitBreakerLayer, Circuits};
#[cfg(feature = "envelope")]
pub use towline_envelope as envelope;
#[cfg(feature = "envelope")]
pub use towline_envelope::{Decoder, ErrorBodyLayer, ErrorFormat, Format};
#[cfg(feature = "ratelimit")]
pub use towline_ratelimit as ratelimit;
#[cfg(feature = "ratelimit")]
pub use towline_ratelimit::{Quota, RateLimitLayer};
#[cfg(feature = "redirect")]
pub use towline_redirect as redirect;
#[cfg(feature = "redirect")]
pub use towline_redirect::NoRedirectLayer;
#[cfg(feature = "redis")]
pub use towline_redis as redis;
#[cfg(feature = "redis")]
pub use towline_redis::{Leasing, OnFailure, RedisStore, RedisTokenSource};
#[cfg(feature = "retry")]
pub use towline_retry as retry;
#[cfg(feature = "retry")]
pub use towline_retry::{Backoff, HedgeLayer, Jitter, RetryBudget, RetryLayer, RetryPolicy};
#[cfg(feature = "telemetry")]
pub use towline_telemetry as telemetry;
#[cfg(feature = "telemetry")]
pub use towline_telemetry::{AttemptSpanLayer, CallSpanLayer, Timeline};
#[cfg(feature = "timeout")]
pub use towline_timeout as timeout;
#[cfg(feature = "timeout")]
pub use towline_timeout::{DeadlineLayer, TimeoutLayer};

#[cfg(feature = "pipeline")]
mod boxed_body;
#[cfg(feature = "pipeline")]
mod builder;
#[cfg(feature = "pipeline")]
mod pipeline;
#[cfg(feature = "pipeline")]
pub mod vendors;

#[cfg(feature = "pipeline")]
pub use boxed_body::{BoxedBody, BoxedBodyFuture};
#[cfg(feature = "pipeline")]
pub use builder::ServiceBuilderExt;
#[cfg(feature = "pipeline")]
pub use pipeline::{
    DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BODY_IDLE, DEFAULT_DEADLINE, DefaultHeaders, Pipeline,
    Standard,
};

/// The names most programs use: `use towline::prelude::*;`. With it, a call and its error
/// handling need nothing else from towline or tower: `ServiceExt` (for `oneshot`, `ready`),
/// `BoxError` (what every layer returns), [`Error`] and [`ErrorKind`] (what it means), and the
/// typed parts an error carries.
///
/// ```
/// use towline::prelude::*;
///
/// let pipeline = Pipeline::new().retry(RetryLayer::new());
/// # let _ = pipeline;
/// fn log(err: BoxError) -> String {
///     let err = Error::from(err);
///     match err.api() {
///         Some(api) => format!("{}: {}", api.status, err.chain()),
///         None => err.chain().to_string(),
///     }
/// }
/// assert_eq!(log("boom".into()), "boom");
/// ```
pub mod prelude {
    pub use tower::ServiceExt;
    pub use towline_core::{
        ApiError, ApiErrorKind, Attempts, AuthError, AuthReason, BoxError, DeadlineExceeded,
        DisplayChain, Elapsed, Error, ErrorKind, RateLimited, Redirected, Retried,
        RetryBudgetExhausted,
    };

    #[cfg(feature = "auth")]
    pub use towline_auth::{Token, TokenRefreshLayer};
    #[cfg(feature = "envelope")]
    pub use towline_envelope::ErrorBodyLayer;
    #[cfg(feature = "ratelimit")]
    pub use towline_ratelimit::RateLimitLayer;
    #[cfg(feature = "redirect")]
    pub use towline_redirect::NoRedirectLayer;
    #[cfg(feature = "retry")]
    pub use towline_retry::{RetryLayer, RetryPolicy};
    #[cfg(feature = "timeout")]
    pub use towline_timeout::{DeadlineLayer, TimeoutLayer};

    #[cfg(feature = "pipeline")]
    pub use crate::{Pipeline, ServiceBuilderExt};
}

/// The README's examples, compiled and run by `cargo test` as doc tests of this crate: each is
/// built as its own crate depending on `towline`, which proves a new crate copying them
/// verbatim compiles (the dependencies they use are the ones the README lists;
/// `tests/readme.rs` checks that).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct Readme;
