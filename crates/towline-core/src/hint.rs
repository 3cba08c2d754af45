//! Retry hints: how long a server asked us to wait, read from its response headers.
//!
//! Every parser here takes raw header bytes from the network, so each one is total: garbage,
//! negative numbers, overflow and dates in the past give no hint or a zero wait, never a panic,
//! and every hint a [`HintReader`] produces is capped.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::DATE;
use http::{HeaderMap, HeaderName};
use tokio::time::Instant;

/// The default cap on a hint: one hour.
///
/// It is well above the longest wait the vendor docs towline targets describe (IXON keeps a
/// tripped rate limit for 10 minutes; Open2b's quota window is 5 minutes), and far below what a
/// mistaken reading produces (an epoch read as a delay is ~56 years). Layers apply their own,
/// usually smaller, limits on top (a retry's max delay, a rate limit's `max_wait`), and can tell
/// from [`RetryHint::was_capped`] that the server asked for more.
pub const DEFAULT_HINT_CAP: Duration = Duration::from_secs(60 * 60);

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
}

impl HintFormat {
    /// Parses one header value into a wait, measuring dates and epochs against `reference`
    /// (the server's clock when known, see [`HintReader::read_at`]).
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
    /// The `RateLimit-Reset` header (IETF draft `RateLimit` header fields).
    RateLimitReset,
    /// The `X-RateLimit-Reset` header (GitHub and many others).
    XRateLimitReset,
    /// A header the user added with [`HintReader::header`].
    Header(HeaderName),
    /// The response body, e.g. Google's `RetryInfo` (filled in by the error-body decoder).
    Body,
}

impl fmt::Display for HintSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HintSource::RetryAfter => f.write_str("retry-after"),
            HintSource::XWaitSeconds => f.write_str("x-wait-seconds"),
            HintSource::RateLimitReset => f.write_str("ratelimit-reset"),
            HintSource::XRateLimitReset => f.write_str("x-ratelimit-reset"),
            HintSource::Header(name) => f.write_str(name.as_str()),
            HintSource::Body => f.write_str("response body"),
        }
    }
}

/// A server's request to wait before calling again: how long, and which header said so.
///
/// Made by [`HintReader::read`] from response headers, or by an error-body decoder from a body
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

/// How far a response's `Date` may be from our clock and still be trusted as the server's.
///
/// Within a day, a difference is clock skew, and measuring against `Date` removes it. Beyond
/// that, one of the clocks is broken (a `Date` in 1970, say), and trusting it would turn a
/// 60-second reset into decades: we fall back to our own clock.
pub const MAX_TRUSTED_SKEW: Duration = Duration::from_secs(24 * 60 * 60);

/// One header a [`HintReader`] reads.
#[derive(Clone, Debug)]
struct HintHeader {
    name: HeaderName,
    format: HintFormat,
    source: HintSource,
    /// For reset headers: the matching `*-Remaining` header. When it is present and not `0`,
    /// the quota is not used up, so the reset time is information, not a demand to wait.
    unless_remaining: Option<HeaderName>,
}

/// Reads a [`RetryHint`] from response headers: which headers, in which format, with what cap.
///
/// The default reads, in this order of precedence, `Retry-After`, `X-Wait-Seconds`, then
/// `RateLimit-Reset` and `X-RateLimit-Reset`, with a cap of [`DEFAULT_HINT_CAP`]. The first
/// header that gives a valid value decides: `Retry-After` is the server's explicit answer, and
/// GitHub, for one, sends `Retry-After: 60` on a secondary rate limit beside an
/// `X-RateLimit-Reset` for the (later) primary window, asking clients to honour the former.
/// A reset header counts only when its `*-Remaining` header is absent or `0`. When one header
/// is repeated, its longest value wins.
///
/// Read hints only from responses that ask for a wait (429, 503, ...): many APIs send
/// `X-RateLimit-Reset` on every response, where it describes the quota window.
///
/// ```
/// use std::time::Duration;
/// use http::HeaderMap;
/// use towline_core::{HintReader, HintSource};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-wait-seconds", "12".parse().unwrap());
/// let hint = HintReader::new().read(&headers).unwrap();
/// assert_eq!(hint.wait(), Duration::from_secs(12));
/// assert_eq!(hint.source(), &HintSource::XWaitSeconds);
///
/// // Absurd values are capped, garbage is ignored.
/// headers.insert("x-wait-seconds", "99999999999".parse().unwrap());
/// headers.insert("retry-after", "soon".parse().unwrap());
/// let hint = HintReader::new().cap(Duration::from_secs(60)).read(&headers).unwrap();
/// assert_eq!(hint.wait(), Duration::from_secs(60));
/// assert!(hint.was_capped());
/// ```
#[derive(Clone, Debug)]
pub struct HintReader {
    cap: Duration,
    headers: Vec<HintHeader>,
}

impl Default for HintReader {
    fn default() -> Self {
        Self::new()
    }
}

impl HintReader {
    /// The four standard headers, capped at [`DEFAULT_HINT_CAP`]. See the type's docs.
    pub fn new() -> Self {
        let header =
            |name: &'static str, format, source, remaining: Option<&'static str>| HintHeader {
                name: HeaderName::from_static(name),
                format,
                source,
                unless_remaining: remaining.map(HeaderName::from_static),
            };
        HintReader {
            cap: DEFAULT_HINT_CAP,
            headers: vec![
                header(
                    "retry-after",
                    HintFormat::RetryAfter,
                    HintSource::RetryAfter,
                    None,
                ),
                header(
                    "x-wait-seconds",
                    HintFormat::DeltaSeconds,
                    HintSource::XWaitSeconds,
                    None,
                ),
                header(
                    "ratelimit-reset",
                    HintFormat::Reset,
                    HintSource::RateLimitReset,
                    Some("ratelimit-remaining"),
                ),
                header(
                    "x-ratelimit-reset",
                    HintFormat::Reset,
                    HintSource::XRateLimitReset,
                    Some("x-ratelimit-remaining"),
                ),
            ],
        }
    }

    /// Sets the cap on every hint read. See the type's docs for an example.
    pub fn cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// The cap on every hint read, to apply to hints from elsewhere (a body) too.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_core::{DEFAULT_HINT_CAP, HintReader};
    ///
    /// assert_eq!(HintReader::new().limit(), DEFAULT_HINT_CAP);
    /// assert_eq!(HintReader::new().cap(Duration::from_secs(9)).limit(), Duration::from_secs(9));
    /// ```
    pub fn limit(&self) -> Duration {
        self.cap
    }

    /// Also reads `name`, in `format` (a vendor's own wait header), after `Retry-After` and
    /// `X-Wait-Seconds` and before the reset headers.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::{HeaderMap, HeaderName};
    /// use towline_core::{HintFormat, HintReader, HintSource};
    ///
    /// let name = HeaderName::from_static("x-backoff");
    /// let hints = HintReader::new().header(name.clone(), HintFormat::DeltaSeconds);
    /// let mut headers = HeaderMap::new();
    /// headers.insert(name.clone(), "3".parse().unwrap());
    /// headers.insert("x-ratelimit-reset", "300".parse().unwrap());
    /// let hint = hints.read(&headers).unwrap();
    /// assert_eq!(hint.source(), &HintSource::Header(name));
    /// assert_eq!(hint.wait(), Duration::from_secs(3));
    /// ```
    pub fn header(mut self, name: HeaderName, format: HintFormat) -> Self {
        let position = self
            .headers
            .iter()
            .position(|h| h.unless_remaining.is_some())
            .unwrap_or(self.headers.len());
        let source = HintSource::Header(name.clone());
        self.headers.insert(
            position,
            HintHeader {
                name,
                format,
                source,
                unless_remaining: None,
            },
        );
        self
    }

    /// Reads the hint of the first configured header with a valid value, measuring dates
    /// against the response's `Date` header (see [`read_at`](HintReader::read_at)).
    /// See the type's docs for an example.
    pub fn read(&self, headers: &HeaderMap) -> Option<RetryHint> {
        self.read_at(headers, SystemTime::now())
    }

    /// Like [`read`](HintReader::read), with `now` as this machine's clock.
    ///
    /// HTTP-dates and epochs are the server's clock: when the response has a valid `Date`
    /// header within [`MAX_TRUSTED_SKEW`] of `now`, they are measured against it, so a skewed
    /// local clock does not stretch or shrink the wait. Otherwise they are measured against
    /// `now`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::HeaderMap;
    /// use towline_core::HintReader;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("date", "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap());
    /// headers.insert("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT".parse().unwrap());
    /// // Our clock is an hour off; the wait is still the server's 30 seconds.
    /// let skewed = httpdate::parse_http_date("Sun, 06 Nov 1994 09:49:37 GMT").unwrap();
    /// let hint = HintReader::new().read_at(&headers, skewed).unwrap();
    /// assert_eq!(hint.wait(), Duration::from_secs(30));
    /// ```
    pub fn read_at(&self, headers: &HeaderMap, now: SystemTime) -> Option<RetryHint> {
        let reference = headers
            .get(DATE)
            .and_then(|date| httpdate::parse_http_date(date.to_str().ok()?).ok())
            .filter(|date| distance(*date, now) <= MAX_TRUSTED_SKEW)
            .unwrap_or(now);
        self.headers.iter().find_map(|header| {
            if let Some(remaining) = &header.unless_remaining {
                let quota_left = headers
                    .get(remaining)
                    .is_some_and(|value| value.as_bytes().trim_ascii() != b"0");
                if quota_left {
                    return None;
                }
            }
            let wait = headers
                .get_all(&header.name)
                .iter()
                .filter_map(|value| header.format.parse(value.as_bytes(), reference))
                .max()?;
            Some(RetryHint::new(wait, header.source.clone()).capped(self.cap))
        })
    }
}

/// `now + wait`; when that overflows, about 30 years from `now` (tokio's own "far future").
pub(crate) fn saturating_add(now: Instant, wait: Duration) -> Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);
    now.checked_add(wait)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

/// How far apart two wall-clock times are, whichever comes first.
fn distance(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap_or(Duration::ZERO)
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const NOW: u64 = 1_763_769_600; // 2025-11-22T00:00:00Z

    fn headers(pairs: &[(&'static str, &'static [u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    fn read(pairs: &[(&'static str, &'static [u8])]) -> Option<RetryHint> {
        HintReader::new().read_at(&headers(pairs), at(NOW))
    }

    fn wait(pairs: &[(&'static str, &'static [u8])]) -> Option<Duration> {
        read(pairs).map(|h| h.wait())
    }

    #[test]
    fn retry_after_delta_seconds() {
        assert_eq!(wait(&[("retry-after", b"5")]), Some(Duration::from_secs(5)));
        assert_eq!(wait(&[("retry-after", b"0")]), Some(Duration::ZERO));
        assert_eq!(
            wait(&[("retry-after", b"  120 ")]),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            wait(&[("retry-after", b"007")]),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn retry_after_http_date_in_all_three_forms() {
        let date: &[(&str, &[u8])] = &[("date", b"Sat, 22 Nov 2025 00:00:00 GMT")];
        for form in [
            &b"Sat, 22 Nov 2025 00:00:30 GMT"[..],
            b"Saturday, 22-Nov-25 00:00:30 GMT",
            b"Sat Nov 22 00:00:30 2025",
        ] {
            let mut map = headers(date);
            map.insert("retry-after", HeaderValue::from_bytes(form).unwrap());
            let hint = HintReader::new().read_at(&map, at(NOW)).unwrap();
            assert_eq!(hint.wait(), Duration::from_secs(30), "{form:?}");
        }
    }

    #[test]
    fn retry_after_date_is_measured_against_the_date_header_not_the_local_clock() {
        let map = headers(&[
            ("date", b"Sat, 22 Nov 2025 10:00:00 GMT"),
            ("retry-after", b"Sat, 22 Nov 2025 10:01:00 GMT"),
        ]);
        // The local clock is 10 hours behind the server's: still 60 s.
        let hint = HintReader::new().read_at(&map, at(NOW)).unwrap();
        assert_eq!(hint.wait(), Duration::from_secs(60));
    }

    #[test]
    fn retry_after_date_without_date_header_uses_the_local_clock() {
        assert_eq!(
            wait(&[("retry-after", b"Sat, 22 Nov 2025 00:00:10 GMT")]),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn a_garbage_date_header_falls_back_to_the_local_clock() {
        assert_eq!(
            wait(&[
                ("date", b"yesterday"),
                ("retry-after", b"Sat, 22 Nov 2025 00:00:10 GMT")
            ]),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn past_dates_are_zero() {
        assert_eq!(
            wait(&[("retry-after", b"Thu, 01 Jan 1970 00:00:00 GMT")]),
            Some(Duration::ZERO)
        );
        assert_eq!(
            wait(&[("retry-after", b"Fri, 21 Nov 2025 23:59:59 GMT")]),
            Some(Duration::ZERO)
        );
        assert_eq!(
            wait(&[("x-ratelimit-reset", b"1000000000")]),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_and_negative_values_give_no_hint() {
        for bad in [
            &b"-5"[..],
            b"+5",
            b"",
            b"   ",
            b"soon",
            b"5s",
            b"5 6",
            b"1e3",
            b"0x10",
            b"1.",
            b".5",
            b"1..5",
            b"NaN",
            b"inf",
            b"Sat, 32 Nov 2025 00:00:00 GMT",
            b"\xff\xfe",
        ] {
            let mut map = HeaderMap::new();
            map.insert("retry-after", HeaderValue::from_bytes(bad).unwrap());
            map.insert("x-wait-seconds", HeaderValue::from_bytes(bad).unwrap());
            map.insert("ratelimit-reset", HeaderValue::from_bytes(bad).unwrap());
            map.insert("x-ratelimit-reset", HeaderValue::from_bytes(bad).unwrap());
            assert_eq!(HintReader::new().read_at(&map, at(NOW)), None, "{bad:?}");
        }
    }

    #[test]
    fn overflowing_values_are_capped_and_flagged() {
        for huge in [
            &b"99999999999"[..],
            b"18446744073709551616",
            b"999999999999999999999999999999999999",
        ] {
            let mut map = HeaderMap::new();
            map.insert("x-wait-seconds", HeaderValue::from_bytes(huge).unwrap());
            let hint = HintReader::new().read_at(&map, at(NOW)).unwrap();
            assert_eq!(hint.wait(), DEFAULT_HINT_CAP, "{huge:?}");
            assert!(hint.was_capped());
            assert!(hint.requested() >= Duration::from_secs(99_999_999_999));
        }
    }

    #[test]
    fn x_wait_seconds_accepts_fractions() {
        assert_eq!(
            wait(&[("x-wait-seconds", b"1.25")]),
            Some(Duration::from_millis(1250))
        );
        assert_eq!(
            wait(&[("x-wait-seconds", b"0.0000000019")]),
            Some(Duration::from_nanos(1))
        );
    }

    #[test]
    fn x_wait_seconds_is_not_a_date() {
        assert_eq!(
            wait(&[("x-wait-seconds", b"Sat, 22 Nov 2025 00:00:10 GMT")]),
            None
        );
    }

    #[test]
    fn reset_headers_read_deltas_and_epochs() {
        assert_eq!(
            wait(&[("ratelimit-reset", b"42")]),
            Some(Duration::from_secs(42))
        );
        assert_eq!(
            wait(&[("x-ratelimit-reset", b"1763769660")]),
            Some(Duration::from_secs(60))
        );
        let hint = read(&[("ratelimit-reset", b"1763769605")]).unwrap();
        assert_eq!(hint.wait(), Duration::from_secs(5));
        assert_eq!(hint.source(), &HintSource::RateLimitReset);
    }

    #[test]
    fn reset_epochs_are_measured_against_the_date_header() {
        let map = headers(&[
            ("date", b"Sat, 22 Nov 2025 00:10:00 GMT"),
            ("x-ratelimit-reset", b"1763770210"),
        ]);
        let hint = HintReader::new().read_at(&map, at(NOW)).unwrap();
        assert_eq!(hint.wait(), Duration::from_secs(10));
    }

    #[test]
    fn retry_after_takes_precedence_over_the_other_headers() {
        let hint = read(&[
            ("retry-after", b"3"),
            ("x-wait-seconds", b"9"),
            ("ratelimit-reset", b"4"),
        ])
        .unwrap();
        assert_eq!(hint.wait(), Duration::from_secs(3));
        assert_eq!(hint.source(), &HintSource::RetryAfter);

        let hint = read(&[("x-wait-seconds", b"9"), ("x-ratelimit-reset", b"40")]).unwrap();
        assert_eq!(hint.source(), &HintSource::XWaitSeconds);
    }

    #[test]
    fn github_secondary_limit_waits_for_retry_after_not_the_primary_reset() {
        // Secondary limit: Retry-After 60 beside the primary window's reset 50 minutes away.
        let hint = read(&[
            ("retry-after", b"60"),
            ("x-ratelimit-remaining", b"4999"),
            ("x-ratelimit-reset", b"1763772600"),
        ])
        .unwrap();
        assert_eq!(hint.wait(), Duration::from_secs(60));
    }

    #[test]
    fn a_reset_counts_only_when_the_quota_is_used_up() {
        assert_eq!(
            wait(&[
                ("x-ratelimit-remaining", b"12"),
                ("x-ratelimit-reset", b"30")
            ]),
            None
        );
        assert_eq!(
            wait(&[
                ("x-ratelimit-remaining", b"0"),
                ("x-ratelimit-reset", b"30")
            ]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            wait(&[("ratelimit-remaining", b" 0 "), ("ratelimit-reset", b"7")]),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            wait(&[("ratelimit-reset", b"7")]),
            Some(Duration::from_secs(7))
        );
    }

    #[test]
    fn a_repeated_header_keeps_its_longest_value() {
        let hint = read(&[("retry-after", b"2"), ("retry-after", b"8")]).unwrap();
        assert_eq!(hint.wait(), Duration::from_secs(8));
    }

    #[test]
    fn an_implausible_date_header_is_not_trusted() {
        // A server clock stuck in 1970 would turn a 60 s reset into 56 years.
        let hint = read(&[
            ("date", b"Thu, 01 Jan 1970 00:00:00 GMT"),
            ("x-ratelimit-reset", b"1763769660"),
        ])
        .unwrap();
        assert_eq!(hint.wait(), Duration::from_secs(60));
        assert!(!hint.was_capped());
    }

    #[test]
    fn a_valid_header_still_counts_beside_garbage() {
        assert_eq!(
            wait(&[("retry-after", b"-5"), ("x-wait-seconds", b"2")]),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn no_headers_no_hint() {
        assert_eq!(read(&[]), None);
        assert_eq!(read(&[("content-type", b"application/json")]), None);
    }

    #[test]
    fn user_headers_are_read_in_their_format() {
        let hints =
            HintReader::new().header(HeaderName::from_static("x-retry-in"), HintFormat::Reset);
        let map = headers(&[("x-retry-in", b"1763769615")]);
        let hint = hints.read_at(&map, at(NOW)).unwrap();
        assert_eq!(hint.wait(), Duration::from_secs(15));
        assert_eq!(hint.source().to_string(), "x-retry-in");
    }

    #[test]
    fn ends_at_saturates_instead_of_panicking() {
        let now = Instant::now();
        let hint = RetryHint::new(Duration::MAX, HintSource::Body);
        assert!(hint.ends_at(now) > now + Duration::from_secs(86_400 * 365));
    }

    #[test]
    fn display_says_what_and_where() {
        let hint = RetryHint::new(Duration::from_secs(90), HintSource::RetryAfter)
            .capped(Duration::from_secs(60));
        assert_eq!(hint.to_string(), "wait 60s (retry-after), capped from 90s");
    }

    proptest! {
        #[test]
        fn arbitrary_header_bytes_never_panic_and_never_exceed_the_cap(
            value in proptest::collection::vec(any::<u8>(), 0..64),
            date in proptest::collection::vec(any::<u8>(), 0..40),
            cap_secs in 0u64..100_000,
            now_secs in 0u64..4_000_000_000,
        ) {
            let cap = Duration::from_secs(cap_secs);
            let now = at(now_secs);
            for format in [HintFormat::RetryAfter, HintFormat::DeltaSeconds, HintFormat::Reset] {
                let _ = format.parse(&value, now);
            }
            let (Ok(value), Ok(date)) = (HeaderValue::from_bytes(&value), HeaderValue::from_bytes(&date)) else {
                return Ok(());
            };
            let mut map = HeaderMap::new();
            map.insert("date", date);
            for name in ["retry-after", "x-wait-seconds", "ratelimit-reset", "x-ratelimit-reset"] {
                map.insert(name, value.clone());
            }
            if let Some(hint) = HintReader::new().cap(cap).read_at(&map, now) {
                prop_assert!(hint.wait() <= cap);
                prop_assert!(hint.wait() <= hint.requested());
            }
        }

        #[test]
        fn any_digits_parse_and_stay_under_the_cap(secs in any::<u64>(), frac in 0u32..1_000_000_000) {
            let text = format!("{secs}.{frac:09}");
            let parsed = HintFormat::DeltaSeconds.parse(text.as_bytes(), at(NOW)).unwrap();
            prop_assert_eq!(parsed, Duration::new(secs, frac));
            let mut map = HeaderMap::new();
            map.insert("x-wait-seconds", HeaderValue::from_str(&text).unwrap());
            let hint = HintReader::new().read_at(&map, at(NOW)).unwrap();
            prop_assert!(hint.wait() <= DEFAULT_HINT_CAP);
        }

        #[test]
        fn http_dates_round_trip(offset in 0u64..10_000_000, now_secs in 0u64..3_000_000_000) {
            let now = at(now_secs);
            let then = now + Duration::from_secs(offset);
            let text = httpdate::fmt_http_date(then);
            prop_assert_eq!(HintFormat::RetryAfter.parse(text.as_bytes(), now), Some(Duration::from_secs(offset)));
        }
    }
}
