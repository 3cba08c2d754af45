//! The typed errors towline's layers return inside a [`BoxError`](crate::BoxError).
//!
//! They live here, not in the layer crates, so that [`classify`](crate::classify) recognises
//! them without core depending on any layer, and a user can match on them with only core.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use http::{HeaderValue, StatusCode};
use tokio::time::Instant;

use crate::BoxError;
use crate::extensions::{Attempts, Deadline};
use crate::hint::RetryHint;

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

/// Why a rate-limited call was not sent, or not sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateLimitReason {
    /// The server's wait is longer than the layer's `max_wait`.
    WaitTooLong,
    /// The server's wait ends after the call's [`Deadline`].
    PastDeadline,
    /// The client-side quota is used up for longer than the call may wait.
    QuotaExhausted,
}

/// The server said to wait, and the call could not: fails fast instead of hanging.
///
/// ```
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use towline_core::{HintSource, RateLimitReason, RateLimited, RetryHint};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let hint = RetryHint::new(Duration::from_secs(600), HintSource::RetryAfter);
/// let until = hint.ends_at(Instant::now());
/// let err = RateLimited::new(until, RateLimitReason::WaitTooLong).with_hint(hint);
/// assert_eq!(err.until(), until);
/// assert!(err.to_string().starts_with("rate limited for 600s (retry-after)"));
/// # }
/// ```
#[derive(Debug)]
pub struct RateLimited {
    until: Instant,
    reason: RateLimitReason,
    hint: Option<RetryHint>,
    source: Option<BoxError>,
}

impl RateLimited {
    /// Calls may go again at `until`; this one did not wait, for `reason`.
    pub fn new(until: Instant, reason: RateLimitReason) -> Self {
        RateLimited {
            until,
            reason,
            hint: None,
            source: None,
        }
    }

    /// Keeps the hint the server sent.
    pub fn with_hint(mut self, hint: RetryHint) -> Self {
        self.hint = Some(hint);
        self
    }

    /// Keeps the error (e.g. the decoded 429) as the source.
    pub fn with_source(mut self, source: BoxError) -> Self {
        self.source = Some(source);
        self
    }

    /// The instant calls may go again.
    pub fn until(&self) -> Instant {
        self.until
    }

    /// How long from now until calls may go again (zero once that instant has passed).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use towline_core::{RateLimitReason, RateLimited};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let err = RateLimited::new(Instant::now() + Duration::from_secs(90), RateLimitReason::WaitTooLong);
    /// assert_eq!(err.remaining(), Duration::from_secs(90));
    /// assert_eq!(err.to_string(), "rate limited: longer than the call may wait; calls may go again in 90s");
    /// # }
    /// ```
    pub fn remaining(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    /// Why the call did not wait.
    pub fn reason(&self) -> RateLimitReason {
        self.reason
    }

    /// The hint the server sent, if the wait came from one.
    pub fn hint(&self) -> Option<&RetryHint> {
        self.hint.as_ref()
    }
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hint {
            Some(hint) => write!(
                f,
                "rate limited for {:?} ({})",
                hint.requested(),
                hint.source()
            )?,
            None => f.write_str("rate limited")?,
        }
        f.write_str(match self.reason {
            RateLimitReason::WaitTooLong => ": longer than the call may wait",
            RateLimitReason::PastDeadline => ": ends after the call's deadline",
            RateLimitReason::QuotaExhausted => ": client-side quota used up",
        })?;
        // To the millisecond: finer digits are noise to a reader.
        let remaining = Duration::from_millis(self.remaining().as_millis() as u64);
        write!(f, "; calls may go again in {remaining:?}")
    }
}

impl StdError for RateLimited {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}

/// Why a server refused our credentials.
///
/// Only [`Expired`](AuthReason::Expired) and [`InvalidToken`](AuthReason::InvalidToken) are
/// [refreshable](AuthReason::is_refreshable): a new token can fix them. The others need a
/// person (2FA, SSO, a role) or a fix in the code (a malformed header), so retrying with a
/// fresh token would only loop.
///
/// ```
/// use towline_core::AuthReason;
///
/// assert!(AuthReason::Expired.is_refreshable());
/// assert!(!AuthReason::TwoFactorRequired.is_refreshable());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthReason {
    /// The token has expired (Telecom X `expired`).
    Expired,
    /// The token is not (or no longer) accepted (IXON "Invalid value" on `Authorization`,
    /// Telecom X `invalid_token`).
    InvalidToken,
    /// The credentials are wrong or missing (Telecom X `credentials_invalid`).
    CredentialsInvalid,
    /// The account needs a one-time password (IXON "2FA is required").
    TwoFactorRequired,
    /// The account must log in through single sign-on (IXON "SSO is required").
    SsoRequired,
    /// The SSO code or state was rejected (IXON `ssoAuthentication.code` / `.state`).
    SsoInvalid,
    /// The token is shorter than the server allows (IXON "Value is too short").
    TokenTooShort,
    /// The token is longer than the server allows (IXON "Value is too long").
    TokenTooLong,
    /// The token's characters do not match what the server expects (IXON "Value does not match
    /// regex expression").
    TokenMalformed,
    /// The `Authorization` header is not `<scheme> <credentials>` (IXON "must start with a
    /// type", Telecom X `format_error`).
    MalformedHeader,
    /// The client's IP address is not allowed for this token (Telecom X).
    IpNotAllowed,
    /// Our token source failed to produce a token (the token endpoint is down, the
    /// credentials were refused); the next call asks it again.
    SourceFailed,
    /// The server gave no reason we recognise.
    Unknown,
}

impl AuthReason {
    /// Whether fetching a new token and replaying the request can fix this.
    pub fn is_refreshable(self) -> bool {
        matches!(self, AuthReason::Expired | AuthReason::InvalidToken)
    }
}

impl fmt::Display for AuthReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthReason::Expired => "token expired",
            AuthReason::InvalidToken => "token invalid",
            AuthReason::CredentialsInvalid => "credentials invalid",
            AuthReason::TwoFactorRequired => "two-factor authentication required",
            AuthReason::SsoRequired => "single sign-on required",
            AuthReason::SsoInvalid => "single sign-on code or state invalid",
            AuthReason::TokenTooShort => "token too short",
            AuthReason::TokenTooLong => "token too long",
            AuthReason::TokenMalformed => "token malformed",
            AuthReason::MalformedHeader => "authorization header malformed",
            AuthReason::IpNotAllowed => "IP address not allowed",
            AuthReason::SourceFailed => "the token source failed",
            AuthReason::Unknown => "unauthorized",
        })
    }
}

/// Authentication failed and the auth layer could not fix it.
///
/// ```
/// use towline_core::{AuthError, AuthReason};
///
/// let err = AuthError::new(AuthReason::SsoRequired);
/// assert_eq!(err.reason(), AuthReason::SsoRequired);
/// assert_eq!(err.to_string(), "authentication failed: single sign-on required");
/// ```
#[derive(Debug)]
pub struct AuthError {
    reason: AuthReason,
    source: Option<BoxError>,
}

impl AuthError {
    /// Authentication failed for `reason`.
    pub fn new(reason: AuthReason) -> Self {
        AuthError {
            reason,
            source: None,
        }
    }

    /// Keeps the cause (the decoded 401, or the token source's error) as the source.
    pub fn with_source(mut self, source: BoxError) -> Self {
        self.source = Some(source);
        self
    }

    /// Why authentication failed.
    pub fn reason(&self) -> AuthReason {
        self.reason
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "authentication failed: {}", self.reason)
    }
}

impl StdError for AuthError {
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
