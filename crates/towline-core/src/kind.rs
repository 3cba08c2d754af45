//! [`ErrorKind`]: the few outcomes a caller acts on, what each promises about the request, and
//! the short names metrics and spans use for them.

use std::fmt;

/// What went wrong, in the few outcomes a caller acts on.
///
/// ```
/// use towline_core::{BoxError, ErrorKind, classify};
///
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// assert_eq!(
///     classify(&BoxError::from(refused)),
///     ErrorKind::Network { may_have_reached_server: false }
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The transport failed.
    Network {
        /// `false` only when the request certainly never left: the connection was never
        /// established (refused, DNS, TLS handshake) or the request was dropped before being
        /// written. Only then is it safe to re-send a non-idempotent request.
        may_have_reached_server: bool,
    },
    /// A per-attempt time limit passed ([`Elapsed`](crate::Elapsed), tower's or tokio's `Elapsed`, a socket
    /// timeout).
    Timeout,
    /// The whole call's deadline passed ([`DeadlineExceeded`](crate::DeadlineExceeded)).
    DeadlineExceeded,
    /// The server answered with a redirect that was not followed ([`Redirected`](crate::Redirected)).
    Redirected,
    /// The server described an error in its body ([`ApiError`](crate::ApiError); see [`Error::api`](crate::Error::api)).
    Api,
    /// The server asked for a wait the call could not honour ([`RateLimited`](crate::RateLimited)).
    RateLimited,
    /// Authentication failed and could not be fixed by a refresh ([`AuthError`](crate::AuthError)).
    Auth,
    /// The retry budget stopped a retry ([`RetryBudgetExhausted`](crate::RetryBudgetExhausted)); the last error is its source.
    RetryBudgetExhausted,
    /// A body passed a size limit ([`BodyTooLarge`](crate::BodyTooLarge), `http_body_util::LengthLimitError`).
    BodyTooLarge,
    /// A circuit breaker refused the call without sending it ([`CircuitOpen`](crate::CircuitOpen)).
    CircuitOpen,
    /// A concurrency limit (bulkhead) refused the call without sending it: its key had its
    /// limit of calls in flight and no place came in time ([`BulkheadFull`](crate::BulkheadFull)).
    BulkheadFull,
    /// A shared store could not answer and failed closed
    /// ([`StoreUnavailable`](crate::StoreUnavailable)): the request was not sent.
    StoreUnavailable,
    /// Anything else (a bug, a user error, an unknown inner error).
    Other,
}

impl ErrorKind {
    /// Whether the request certainly never reached the server: only then is it safe to send a
    /// non-idempotent request again. Every other kind (a timeout, an API error, an unknown
    /// error) answers `false`, because the server may have processed the request.
    ///
    /// ```
    /// use towline_core::ErrorKind;
    ///
    /// assert!(ErrorKind::Network { may_have_reached_server: false }.certainly_not_sent());
    /// assert!(!ErrorKind::Network { may_have_reached_server: true }.certainly_not_sent());
    /// assert!(!ErrorKind::Timeout.certainly_not_sent());
    /// assert!(!ErrorKind::Other.certainly_not_sent());
    /// ```
    pub fn certainly_not_sent(self) -> bool {
        matches!(
            self,
            ErrorKind::Network {
                may_have_reached_server: false
            } | ErrorKind::CircuitOpen
                | ErrorKind::BulkheadFull
                | ErrorKind::StoreUnavailable
        )
    }
}

impl ErrorKind {
    /// A short, stable, snake_case name for the kind, for metrics and span attributes
    /// (`error.type`): low cardinality, never an error's message.
    ///
    /// ```
    /// use towline_core::ErrorKind;
    ///
    /// assert_eq!(ErrorKind::Timeout.name(), "timeout");
    /// assert_eq!(ErrorKind::Network { may_have_reached_server: true }.name(), "network");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Network { .. } => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::DeadlineExceeded => "deadline_exceeded",
            ErrorKind::Redirected => "redirected",
            ErrorKind::Api => "api",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Auth => "auth",
            ErrorKind::RetryBudgetExhausted => "retry_budget_exhausted",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::BulkheadFull => "bulkhead_full",
            ErrorKind::StoreUnavailable => "store_unavailable",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Network {
                may_have_reached_server: true,
            } => "network error (the request may have reached the server)",
            ErrorKind::Network {
                may_have_reached_server: false,
            } => "network error (the request was not sent)",
            ErrorKind::Timeout => "timeout",
            ErrorKind::DeadlineExceeded => "deadline exceeded",
            ErrorKind::Redirected => "redirected",
            ErrorKind::Api => "api error",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Auth => "auth error",
            ErrorKind::RetryBudgetExhausted => "retry budget exhausted",
            ErrorKind::BodyTooLarge => "body too large",
            ErrorKind::CircuitOpen => "circuit open",
            ErrorKind::BulkheadFull => "bulkhead full (the request was not sent)",
            ErrorKind::StoreUnavailable => "shared store unavailable (the request was not sent)",
            ErrorKind::Other => "other error",
        })
    }
}
