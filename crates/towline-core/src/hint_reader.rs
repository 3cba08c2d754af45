//! [`HintReader`]: which headers to read a [`RetryHint`] from, in which format, with what cap.

use std::time::{Duration, SystemTime};

use http::header::DATE;
use http::{HeaderMap, HeaderName};

use crate::hint::{HintSource, RetryHint};
use crate::hint_format::HintFormat;
use crate::ratelimit_fields::structured_wait;

/// The default cap on a hint: one hour.
///
/// It is well above the longest wait the vendor docs towline targets describe (IXON keeps a
/// tripped rate limit for 10 minutes; Open2b's quota window is 5 minutes), and far below what a
/// mistaken reading produces (an epoch read as a delay is ~56 years). Layers apply their own,
/// usually smaller, limits on top (a retry's max delay, a rate limit's `max_wait`), and can tell
/// from [`RetryHint::was_capped`] that the server asked for more.
pub const DEFAULT_HINT_CAP: Duration = Duration::from_secs(60 * 60);

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
/// The default reads, in this order of precedence, `Retry-After`, `X-Wait-Seconds`, the IETF
/// `RateLimit` structured field (current draft: `"default";r=0;t=20`, with `RateLimit-Policy`'s
/// window for a used-up policy that gives no `t`; earlier drafts' dictionary form too), then
/// `RateLimit-Reset` and `X-RateLimit-Reset`, with a cap of [`DEFAULT_HINT_CAP`]. The first
/// header that gives a valid value decides: `Retry-After` is the server's explicit answer, and
/// GitHub, for one, sends `Retry-After: 60` on a secondary rate limit beside an
/// `X-RateLimit-Reset` for the (later) primary window, asking clients to honour the former.
/// A reset header counts only when its `*-Remaining` header is absent or `0`. When one header
/// is repeated, its longest value wins.
///
/// Read hints only from responses that ask for a wait (429, 503, a response
/// [marked as a rate limit](crate::marks_rate_limit)): many APIs send `X-RateLimit-Reset` on
/// every response, where it describes the quota window.
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
    /// The five standard headers, capped at [`DEFAULT_HINT_CAP`]. See the type's docs.
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
                    "ratelimit",
                    HintFormat::RateLimit,
                    HintSource::RateLimit,
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
            .position(|h| h.unless_remaining.is_some() || h.source == HintSource::RateLimit)
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
            if header.source == HintSource::RateLimit {
                // Needs `RateLimit-Policy` as well: the window of a used-up policy without `t`.
                let wait = structured_wait(headers)?;
                return Some(RetryHint::new(wait, HintSource::RateLimit).capped(self.cap));
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

/// How far apart two wall-clock times are, whichever comes first.
fn distance(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap_or(Duration::ZERO)
}
