//! [`HintFormat`]: how one header value expresses a wait.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::ratelimit_fields::RateLimitEntry;

/// Values at or above this are read as Unix epoch seconds by [`HintFormat::Reset`], smaller ones
/// as delta seconds.
///
/// 1,000,000,000 s is 2001-09-09 as an epoch and ~31.7 years as a delay: no real reset is that
/// far away, and no real clock is that far back. GitHub sends epochs in `X-RateLimit-Reset`,
/// the IETF draft's `RateLimit-Reset` and many APIs send deltas; this reads both.
pub const EPOCH_THRESHOLD_SECS: u64 = 1_000_000_000;

/// How a header's value expresses a wait.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use towline_core::HintFormat;
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(HintFormat::DeltaSeconds.parse(b"2.5", now), Some(Duration::from_millis(2500)));
/// assert_eq!(HintFormat::Reset.parse(b"1700000030", now), Some(Duration::from_secs(30)));
/// assert_eq!(HintFormat::RetryAfter.parse(b"-5", now), None);
/// assert_eq!(HintFormat::RateLimit.parse(br#""default";r=0;t=20"#, now), Some(Duration::from_secs(20)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HintFormat {
    /// `Retry-After` (RFC 9110 §10.2.3): delta seconds, or an HTTP-date (IMF-fixdate, RFC 850 or
    /// asctime). A date in the past means "now": zero.
    RetryAfter,
    /// Delta seconds only, as in Open2b's `X-Wait-Seconds`. A decimal fraction is accepted.
    DeltaSeconds,
    /// Delta seconds or Unix epoch seconds (see [`EPOCH_THRESHOLD_SECS`]), as in `RateLimit-Reset`
    /// and `X-RateLimit-Reset`. An epoch in the past means zero.
    Reset,
    /// The IETF `RateLimit` structured field, `"default";r=0;t=20` (or its older dictionary
    /// form `remaining=0, reset=20`): the latest reset (`t`, delta seconds) of the policies
    /// whose quota is used up (`r=0`). No policy used up, no wait. See
    /// [`RateLimitEntry`](crate::RateLimitEntry).
    RateLimit,
}

impl HintFormat {
    /// Parses one header value into a wait, measuring dates and epochs against `reference`
    /// (the server's clock when known, see [`HintReader::read_at`](crate::HintReader::read_at)).
    ///
    /// Returns `None` for anything that is not a well-formed value of this format, including
    /// negative numbers, and for an epoch too far away for the system clock to represent.
    /// Delays too large for a [`Duration`] saturate (callers cap them). A millisecond epoch
    /// reads as a far-future epoch in seconds, and so is capped.
    /// See the type's docs for an example.
    pub fn parse(self, value: &[u8], reference: SystemTime) -> Option<Duration> {
        let value = value.trim_ascii();
        match self {
            HintFormat::DeltaSeconds => parse_seconds(value),
            HintFormat::RetryAfter => match parse_seconds(value) {
                Some(delta) => Some(delta),
                None => {
                    let date = httpdate::parse_http_date(std::str::from_utf8(value).ok()?).ok()?;
                    Some(until(date, reference))
                }
            },
            HintFormat::RateLimit => RateLimitEntry::parse(value)
                .into_iter()
                .filter(RateLimitEntry::is_exhausted)
                .filter_map(|entry| entry.reset)
                .max(),
            HintFormat::Reset => {
                let seconds = parse_seconds(value)?;
                if seconds.as_secs() >= EPOCH_THRESHOLD_SECS {
                    let at = UNIX_EPOCH.checked_add(seconds)?;
                    Some(until(at, reference))
                } else {
                    Some(seconds)
                }
            }
        }
    }
}

/// The time from `reference` until `at`; zero when `at` is not after it.
fn until(at: SystemTime, reference: SystemTime) -> Duration {
    at.duration_since(reference).unwrap_or(Duration::ZERO)
}

/// Non-negative decimal seconds: `DIGITS [ "." DIGITS ]`. No sign, no exponent, no spaces
/// inside. Integer parts too large for a `u64` saturate.
fn parse_seconds(value: &[u8]) -> Option<Duration> {
    let (whole, fraction) = match value.iter().position(|&b| b == b'.') {
        Some(dot) => (&value[..dot], Some(&value[dot + 1..])),
        None => (value, None),
    };
    if whole.is_empty() || !whole.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let secs = whole.iter().fold(0u64, |acc, &d| {
        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    let mut nanos = 0u32;
    if let Some(fraction) = fraction {
        if fraction.is_empty() || !fraction.iter().all(u8::is_ascii_digit) {
            return None;
        }
        // Nanosecond precision; further digits are valid but below what a timer can honour.
        let mut scale = 100_000_000u32;
        for &d in fraction.iter().take(9) {
            nanos += u32::from(d - b'0') * scale;
            scale /= 10;
        }
    }
    Some(Duration::new(secs, nanos))
}
