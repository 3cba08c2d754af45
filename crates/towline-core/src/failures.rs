//! The typed errors towline's layers return inside a [`BoxError`](crate::BoxError).
//!
//! They live here, not in the layer crates, so that [`classify`](crate::classify) recognises
//! them without core depending on any layer, and a user can match on them with only core.
//! The two with most to say have their own files ([`RateLimited`] in `rate_limited.rs`,
//! [`AuthError`] in `auth_failure.rs`); they are re-exported here, where the rest of the crate
//! looks for the typed errors.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::{HeaderValue, StatusCode};

pub use crate::auth_failure::{AuthError, AuthReason};
pub use crate::rate_limited::{RateLimitReason, RateLimited};

use crate::BoxError;
use crate::extensions::{Attempts, Deadline};

/// A redirect response that was not followed.
///
/// ```
/// use http::{HeaderValue, StatusCode};
/// use towline_core::Redirected;
///
/// let err = Redirected::new(StatusCode::FOUND, Some(HeaderValue::from_static("/login")));
/// assert_eq!(err.location_str(), Some("/login"));
/// assert_eq!(err.to_string(), "redirect 302 Found to \"/login\" was not followed");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirected {
    status: StatusCode,
    location: Option<HeaderValue>,
}

impl Redirected {
    /// A redirect with `status` and the raw `Location` header, if there was one.
    pub fn new(status: StatusCode, location: Option<HeaderValue>) -> Self {
        Redirected { status, location }
    }

    /// The redirect status (300, 301, 302, 303, 307 or 308).
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `Location` header exactly as received, even if it is not a valid URI.
    pub fn location(&self) -> Option<&HeaderValue> {
        self.location.as_ref()
    }

    /// The `Location` header as text, when it is visible ASCII.
    pub fn location_str(&self) -> Option<&str> {
        self.location.as_ref()?.to_str().ok()
    }
}

impl fmt::Display for Redirected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redirect {}", self.status)?;
        match &self.location {
            Some(location) => write!(f, " to {location:?} was not followed"),
            None => f.write_str(" (no Location) was not followed"),
        }
    }
}

impl StdError for Redirected {}

/// Which part of a response a per-attempt timeout was waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeoutPhase {
    /// The status line and headers.
    Head,
    /// The body, after the head arrived.
    Body,
}

/// A per-attempt time limit passed.
///
/// ```
/// use std::time::Duration;
/// use towline_core::{Elapsed, TimeoutPhase};
///
/// let err = Elapsed::new(Duration::from_secs(5), TimeoutPhase::Head);
/// assert_eq!(err.to_string(), "response head not received within 5s");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed {
    limit: Duration,
    phase: TimeoutPhase,
}

impl Elapsed {
    /// The limit `limit` passed while waiting for `phase`.
    pub fn new(limit: Duration, phase: TimeoutPhase) -> Self {
        Elapsed { limit, phase }
    }

    /// The time limit that passed.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// What the attempt was waiting for.
    pub fn phase(&self) -> TimeoutPhase {
        self.phase
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.phase {
            TimeoutPhase::Head => "response head not received",
            TimeoutPhase::Body => "response body stalled, not complete",
        };
        write!(f, "{what} within {:?}", self.limit)
    }
}

impl StdError for Elapsed {}

/// The whole call's [`Deadline`] passed.
///
/// ```
/// use std::time::Duration;
/// use towline_core::{Deadline, DeadlineExceeded};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let err = DeadlineExceeded::new(Deadline::after(Duration::ZERO));
/// assert_eq!(err.to_string(), "the call's deadline passed");
/// # }
/// ```
#[derive(Debug)]
pub struct DeadlineExceeded {
    deadline: Deadline,
    source: Option<BoxError>,
}

impl DeadlineExceeded {
    /// The deadline `deadline` passed.
    pub fn new(deadline: Deadline) -> Self {
        DeadlineExceeded {
            deadline,
            source: None,
        }
    }

    /// Keeps the error of the attempt that was cut short (or the last one), as the source.
    pub fn with_source(mut self, source: BoxError) -> Self {
        self.source = Some(source);
        self
    }

    /// The deadline that passed.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }
}

impl fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the call's deadline passed")
    }
}

impl StdError for DeadlineExceeded {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

/// The retry budget was empty, so the last error is returned without another attempt.
///
/// The last attempt's error is the [`source`](StdError::source); `towline_core::Error::find`
/// reaches it.
///
/// ```
/// use towline_core::{BoxError, RetryBudgetExhausted};
///
/// let err = RetryBudgetExhausted::new(BoxError::from("503 Service Unavailable"));
/// assert_eq!(err.last().to_string(), "503 Service Unavailable");
/// ```
#[derive(Debug)]
pub struct RetryBudgetExhausted {
    last: BoxError,
}

impl RetryBudgetExhausted {
    /// The budget stopped a retry after `last`.
    pub fn new(last: BoxError) -> Self {
        RetryBudgetExhausted { last }
    }

    /// The last attempt's error.
    pub fn last(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.last
    }

    /// The last attempt's error, owned.
    pub fn into_last(self) -> BoxError {
        self.last
    }
}

impl fmt::Display for RetryBudgetExhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The last error is the source: printing it here too would say it twice in a chain.
        f.write_str("retry budget exhausted")
    }
}

impl StdError for RetryBudgetExhausted {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.last)
    }
}

/// A body was longer than the limit a layer reads or buffers.
///
/// ```
/// use towline_core::BodyTooLarge;
///
/// assert_eq!(BodyTooLarge::new(65_536).to_string(), "body longer than 65536 bytes");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyTooLarge {
    limit: u64,
}

impl BodyTooLarge {
    /// A body passed `limit` bytes.
    pub fn new(limit: u64) -> Self {
        BodyTooLarge { limit }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "body longer than {} bytes", self.limit)
    }
}

impl StdError for BodyTooLarge {}

/// The last error of a call that was retried, with the record of its attempts.
///
/// The retry layer wraps the final error in it when at least one retry happened; the kind of
/// the call is the last error's (`classify` looks through this wrapper), and
/// `towline_core::Error::attempts` gives the record.
///
/// ```
/// use std::time::Duration;
/// use http::StatusCode;
/// use towline_core::{AttemptOutcome, Attempts, BoxError, Error, ErrorKind, Retried};
///
/// let mut attempts = Attempts::new();
/// attempts.record_retry(AttemptOutcome::Error(ErrorKind::Timeout), Duration::from_millis(80));
/// let last: BoxError = Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
/// let err = Error::new(Retried::new(attempts, last));
/// assert_eq!(err.kind(), ErrorKind::Network { may_have_reached_server: true });
/// assert_eq!(err.attempts().unwrap().count(), 2);
/// assert_eq!(
///     err.to_string(),
///     "network error (the request may have reached the server): gave up after 2 attempts: connection reset"
/// );
/// ```
#[derive(Debug)]
pub struct Retried {
    attempts: Attempts,
    last: BoxError,
}

impl Retried {
    /// `last` ended a call made of `attempts`.
    pub fn new(attempts: Attempts, last: BoxError) -> Self {
        Retried { attempts, last }
    }

    /// The attempts made.
    pub fn attempts(&self) -> &Attempts {
        &self.attempts
    }

    /// The last attempt's error.
    pub fn last(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.last
    }

    /// The last attempt's error, owned.
    pub fn into_last(self) -> BoxError {
        self.last
    }
}

impl fmt::Display for Retried {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The last error is the source; say only what this wrapper adds.
        write!(f, "gave up after {} attempts", self.attempts.count())
    }
}

impl StdError for Retried {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.last)
    }
}
