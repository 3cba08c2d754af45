//! [`RateLimited`]: a call the rate-limit or retry layer did not send because the server
//! said to wait longer than the call could.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::BoxError;
use crate::hint::RetryHint;

/// Why a rate-limited call was not sent, or not sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RateLimitReason {
    /// The server's wait is longer than the layer's `max_wait`.
    WaitTooLong,
    /// The server's wait ends after the call's [`Deadline`](crate::Deadline).
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
