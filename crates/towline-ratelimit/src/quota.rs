//! [`Quota`]: a client-side limit of calls per window.

use std::fmt;
use std::time::Duration;

/// A client-side quota: at most `calls` calls per `per`, per key.
///
/// ```
/// use std::time::Duration;
/// use towline_ratelimit::Quota;
///
/// // Open2b: 1000 calls every 5 minutes per key.
/// let quota = Quota::new(1000, Duration::from_secs(300));
/// assert_eq!(quota.calls(), 1000);
/// assert_eq!(quota.per(), Duration::from_secs(300));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    calls: u32,
    per: Duration,
}

impl Quota {
    /// `calls` calls per `per`, clamped to what makes sense: zero calls count as one, and a
    /// zero `per` as one nanosecond (which paces nothing). [`try_new`](Self::try_new) refuses
    /// both instead. Any `per`, up to `Duration::MAX`, is fine.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_ratelimit::Quota;
    ///
    /// assert_eq!(Quota::new(0, Duration::from_secs(1)).calls(), 1);
    /// ```
    pub fn new(calls: u32, per: Duration) -> Self {
        Quota {
            calls: calls.max(1),
            per: per.max(Duration::from_nanos(1)),
        }
    }

    /// `calls` calls per `per`, or why that is not a quota.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_ratelimit::{Quota, QuotaError};
    ///
    /// assert!(Quota::try_new(10, Duration::from_secs(1)).is_ok());
    /// assert_eq!(Quota::try_new(0, Duration::from_secs(1)), Err(QuotaError::ZeroCalls));
    /// assert_eq!(Quota::try_new(10, Duration::ZERO), Err(QuotaError::ZeroPeriod));
    /// ```
    pub fn try_new(calls: u32, per: Duration) -> Result<Self, QuotaError> {
        if calls == 0 {
            return Err(QuotaError::ZeroCalls);
        }
        if per.is_zero() {
            return Err(QuotaError::ZeroPeriod);
        }
        Ok(Quota { calls, per })
    }

    /// How many calls a window allows (at least 1).
    pub fn calls(&self) -> u32 {
        self.calls
    }

    /// How long a window lasts (more than zero).
    pub fn per(&self) -> Duration {
        self.per
    }
}

/// Why [`Quota::try_new`] refused its arguments.
///
/// ```
/// use std::time::Duration;
/// use towline_ratelimit::{Quota, QuotaError};
///
/// let err = Quota::try_new(0, Duration::from_secs(1)).unwrap_err();
/// assert_eq!(err.to_string(), "a quota must allow at least one call");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QuotaError {
    /// Zero calls per window: no call could ever go.
    ZeroCalls,
    /// A zero-length window: it would limit nothing.
    ZeroPeriod,
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuotaError::ZeroCalls => "a quota must allow at least one call",
            QuotaError::ZeroPeriod => "a quota's window must be longer than zero",
        })
    }
}

impl std::error::Error for QuotaError {}
