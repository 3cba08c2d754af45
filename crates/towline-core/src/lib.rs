//! The shared vocabulary of towline: what its layers say to each other and to you.
//!
//! No layer lives here. This crate holds what every layer needs to agree on, so that each
//! layer depends on `towline-core` alone and stays usable without the others:
//!
//! - **Errors.** Layers return [`BoxError`] (tower's convention) with typed errors inside
//!   ([`Redirected`], [`Elapsed`], [`DeadlineExceeded`], [`RateLimited`], [`AuthError`],
//!   [`RetryBudgetExhausted`], [`BodyTooLarge`], and a decoded [`ApiError`]). [`Error::from`]
//!   turns any of them, and hyper's, hyper-util's, `std::io`'s and tower's own errors, into one
//!   exhaustive [`ErrorKind`] to `match` on; [`classify`] does the same without wrapping.
//! - **Retry hints.** [`HintReader`] reads how long a server asked us to wait (`Retry-After`,
//!   `X-Wait-Seconds`, `RateLimit-Reset`, `X-RateLimit-Reset`, your own header) into a capped
//!   [`RetryHint`]. Garbage gives no hint; nothing panics.
//! - **The per-call context.** [`CallContext`], a request extension, is the one way towline's
//!   layers share what they know about a call: its [`Deadline`], which attempt this is, and
//!   whether a layer above sends the attempt again after a credentials refresh ([`Resend`],
//!   answered with [`CredentialsRefreshed`]). [`Attempts`] is the response extension that says
//!   how the call went, attempt by attempt.
//! - **Body replay.** [`Replayable`] request bodies can be sent again (retry, resend after a
//!   token refresh); [`ReplayBody`] makes a streaming body replayable up to a cap.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use http::{Response, StatusCode};
//! use towline_core::{BoxError, Error, ErrorKind, HintReader};
//!
//! // An Open2b-style "come back later" reply.
//! let response = Response::builder()
//!     .status(StatusCode::SERVICE_UNAVAILABLE)
//!     .header("x-wait-seconds", "30")
//!     .body(())
//!     .unwrap();
//! let hint = HintReader::new().read(response.headers()).unwrap();
//! assert_eq!(hint.wait(), Duration::from_secs(30));
//!
//! // Whatever a stack of layers returns, one conversion gives the typed outcome.
//! let from_the_stack: BoxError = Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
//! match Error::from(from_the_stack).kind() {
//!     ErrorKind::Network { may_have_reached_server: true } => { /* only retry if idempotent */ }
//!     other => panic!("unexpected {other}"),
//! }
//! ```

mod api;
mod auth_failure;
mod bulkhead;
mod circuit;
mod classify;
mod context;
mod display;
mod error;
mod extensions;
mod failures;
mod hint;
mod hint_format;
mod hint_reader;
mod kind;
mod members;
mod rate_limited;
mod ratelimit_fields;
mod replay;
mod store;

pub use api::{ApiCode, ApiError, ApiErrorKind, ApiFormat, Target};
pub use bulkhead::BulkheadFull;
pub use circuit::CircuitOpen;
pub use classify::{classify, find};
pub use context::{
    AttemptLimit, CallContext, CredentialsRefreshed, Resend, take_credentials_refreshed,
};
pub use display::DisplayChain;
pub use error::{BoxError, Error};
pub use extensions::{AttemptOutcome, Attempts, Deadline};
pub use failures::{
    AuthError, AuthReason, BodyTooLarge, DeadlineExceeded, Elapsed, RateLimitReason, RateLimited,
    Redirected, Retried, RetryBudgetExhausted, TimeoutPhase,
};
pub use hint::{HintSource, RetryHint};
pub use hint_format::{EPOCH_THRESHOLD_SECS, HintFormat};
pub use hint_reader::{DEFAULT_HINT_CAP, HintReader, MAX_TRUSTED_SKEW};
pub use kind::ErrorKind;
pub use members::Members;
pub use ratelimit_fields::{RateLimitEntry, RateLimitPolicy, marks_rate_limit, quota_exhausted};
pub use replay::{DEFAULT_REPLAY_CAP, ReplayBody, Replayable, replay_request};
pub use store::StoreUnavailable;

/// Adds `get_ref`, `get_mut` and `into_inner` for the `inner: S` field of a service, as
/// tower-http's services have them. For towline's layer crates; call it inside an
/// `impl<S, ..> Service<S, ..>` block.
#[doc(hidden)]
#[macro_export]
macro_rules! inner_service_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// The inner service, owned.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}
