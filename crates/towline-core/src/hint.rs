//! Retry hints: how long a server asked us to wait ([`RetryHint`]) and where it said so
//! ([`HintSource`]).
//!
//! Reading them from headers is [`HintReader`](crate::HintReader)'s (`hint_reader.rs`), with
//! the value formats in `hint_format.rs` and the structured `RateLimit` fields in
//! `ratelimit_fields.rs`. Every parser there takes raw header bytes from the network, so each
//! one is total: garbage, negative numbers, overflow and dates in the past give no hint or a
//! zero wait, never a panic, and every hint a reader produces is capped.

use std::fmt;
use std::time::Duration;

use http::HeaderName;
use tokio::time::Instant;

/// Where a [`RetryHint`] came from.
///
/// ```
/// use towline_core::HintSource;
///
/// assert_eq!(HintSource::RetryAfter.to_string(), "retry-after");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HintSource {
    /// The `Retry-After` header.
    RetryAfter,
    /// The `X-Wait-Seconds` header (Open2b).
    XWaitSeconds,
    /// The `RateLimit` structured field of the current IETF draft (`"default";r=0;t=20`).
    RateLimit,
    /// The `RateLimit-Reset` header (earlier IETF drafts).
    RateLimitReset,
    /// The `X-RateLimit-Reset` header (GitHub and many others).
    XRateLimitReset,
    /// A header the user added with [`HintReader::header`](crate::HintReader::header).
    Header(HeaderName),
    /// The response body, e.g. Google's `RetryInfo` (filled in by the error-body decoder).
    Body,
}

impl fmt::Display for HintSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HintSource::RetryAfter => f.write_str("retry-after"),
            HintSource::XWaitSeconds => f.write_str("x-wait-seconds"),
            HintSource::RateLimit => f.write_str("ratelimit"),
            HintSource::RateLimitReset => f.write_str("ratelimit-reset"),
            HintSource::XRateLimitReset => f.write_str("x-ratelimit-reset"),
            HintSource::Header(name) => f.write_str(name.as_str()),
            HintSource::Body => f.write_str("response body"),
        }
    }
}

/// A server's request to wait before calling again: how long, and which header said so.
///
/// Made by [`HintReader::read`](crate::HintReader::read) from response headers, or by an error-body decoder from a body
/// field. [`wait`](RetryHint::wait) is capped; [`requested`](RetryHint::requested) is what the
/// server asked for, so a layer can fail fast instead of waiting a capped, wrong amount.
///
/// ```
/// use std::time::Duration;
/// use towline_core::{HintSource, RetryHint};
///
/// let hint = RetryHint::new(Duration::from_secs(7200), HintSource::RetryAfter)
///     .capped(Duration::from_secs(3600));
/// assert_eq!(hint.wait(), Duration::from_secs(3600));
/// assert_eq!(hint.requested(), Duration::from_secs(7200));
/// assert!(hint.was_capped());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryHint {
    wait: Duration,
    requested: Duration,
    source: HintSource,
}

impl RetryHint {
    /// A hint to wait `wait`, as `source` said. Not capped: see [`capped`](RetryHint::capped).
    pub fn new(wait: Duration, source: HintSource) -> Self {
        RetryHint {
            wait,
            requested: wait,
            source,
        }
    }

    /// Limits the wait to `cap`, keeping what was requested.
    pub fn capped(mut self, cap: Duration) -> Self {
        self.wait = self.wait.min(cap);
        self
    }

    /// How long to wait, capped.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// How long the server asked to wait, before any cap.
    pub fn requested(&self) -> Duration {
        self.requested
    }

    /// Whether the server asked for more than [`wait`](RetryHint::wait).
    pub fn was_capped(&self) -> bool {
        self.requested > self.wait
    }

    /// Which header (or body field) the hint came from.
    pub fn source(&self) -> &HintSource {
        &self.source
    }

    /// The instant the wait ends, counted from `now` (far in the future rather than a panic if
    /// the sum overflows).
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use towline_core::{HintSource, RetryHint};
    ///
    /// let now = Instant::now();
    /// let hint = RetryHint::new(Duration::from_secs(5), HintSource::XWaitSeconds);
    /// assert_eq!(hint.ends_at(now), now + Duration::from_secs(5));
    /// ```
    pub fn ends_at(&self, now: Instant) -> Instant {
        saturating_add(now, self.wait)
    }
}

impl fmt::Display for RetryHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wait {:?} ({})", self.wait, self.source)?;
        if self.was_capped() {
            write!(f, ", capped from {:?}", self.requested)?;
        }
        Ok(())
    }
}

/// `now + wait`; when that overflows, about 30 years from `now` (tokio's own "far future").
pub(crate) fn saturating_add(now: Instant, wait: Duration) -> Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);
    now.checked_add(wait)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

#[cfg(test)]
#[path = "hint_tests.rs"]
mod tests;
