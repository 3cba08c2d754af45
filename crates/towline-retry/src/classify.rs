//! What to retry: a [`Classify`] decides, from an attempt's outcome, whether it failed in a
//! way worth retrying and what that failure proves.

use std::error::Error as StdError;

use http::{HeaderMap, StatusCode};
use towline_core::{ApiError, ApiErrorKind, ErrorKind, HintReader, RetryHint, marks_rate_limit};

/// What an attempt returned, as a classifier sees it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Outcome<'a> {
    /// A response arrived.
    Response {
        /// Its status.
        status: StatusCode,
        /// Its headers.
        headers: &'a HeaderMap,
    },
    /// The attempt failed with this error.
    Error(&'a (dyn StdError + Send + Sync + 'static)),
}

impl Outcome<'_> {
    /// The error's [`ErrorKind`], or `None` for a response.
    ///
    /// ```
    /// use towline_core::ErrorKind;
    /// use towline_retry::Outcome;
    ///
    /// let err = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// let outcome = Outcome::Error(&err);
    /// assert_eq!(outcome.error_kind(), Some(ErrorKind::Network { may_have_reached_server: false }));
    /// ```
    pub fn error_kind(&self) -> Option<ErrorKind> {
        match self {
            Outcome::Response { .. } => None,
            Outcome::Error(error) => Some(ErrorKind::of(*error)),
        }
    }

    /// The status: of the response, or of a decoded error body ([`ApiError`]).
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Outcome::Response { status, .. } => Some(*status),
            Outcome::Error(error) => towline_core::find::<ApiError>(*error).map(|a| a.status),
        }
    }
}

/// A classifier's answer.
///
/// ```
/// use towline_retry::Verdict;
///
/// let verdict = Verdict::retry().not_processed();
/// assert!(verdict.is_retry());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Done: a success, or a failure no retry can fix.
    Done,
    /// Worth retrying.
    Retry {
        /// The server certainly did not process the request (connection never made, 429,
        /// 503 with a wait hint), so even a non-idempotent request may be sent again.
        not_processed: bool,
        /// A wait the server asked for: the floor of the next delay.
        hint: Option<RetryHint>,
    },
}

impl Verdict {
    /// Retry, with nothing proven about processing and no hint.
    pub fn retry() -> Self {
        Verdict::Retry {
            not_processed: false,
            hint: None,
        }
    }

    /// Marks that the server certainly did not process the request.
    pub fn not_processed(self) -> Self {
        match self {
            Verdict::Retry { hint, .. } => Verdict::Retry {
                not_processed: true,
                hint,
            },
            done => done,
        }
    }

    /// Sets the server's wait hint.
    pub fn with_hint(self, hint: Option<RetryHint>) -> Self {
        match self {
            Verdict::Retry { not_processed, .. } => Verdict::Retry {
                not_processed,
                hint,
            },
            done => done,
        }
    }

    /// Whether this says to retry.
    pub fn is_retry(&self) -> bool {
        matches!(self, Verdict::Retry { .. })
    }
}

/// Decides what to retry. Implemented by [`StandardClassifier`] and by closures
/// `Fn(Outcome<'_>) -> Verdict`; combine with [`or`](Classify::or).
///
/// ```
/// use http::StatusCode;
/// use towline_retry::{Classify, Outcome, StandardClassifier, Verdict};
///
/// // Also retry 409 Conflict, which this API uses for "try again".
/// let classifier = StandardClassifier::new().or(|outcome: Outcome<'_>| {
///     if outcome.status() == Some(StatusCode::CONFLICT) { Verdict::retry() } else { Verdict::Done }
/// });
/// let headers = http::HeaderMap::new();
/// let outcome = Outcome::Response { status: StatusCode::CONFLICT, headers: &headers };
/// assert!(classifier.classify(outcome).is_retry());
/// ```
pub trait Classify: Send + Sync + 'static {
    /// The verdict on one attempt's outcome.
    fn classify(&self, outcome: Outcome<'_>) -> Verdict;

    /// Retries what `self` or `other` says to retry (`self` first).
    fn or<C: Classify>(self, other: C) -> Or<Self, C>
    where
        Self: Sized,
    {
        Or(self, other)
    }
}

impl<F> Classify for F
where
    F: Fn(Outcome<'_>) -> Verdict + Send + Sync + 'static,
{
    fn classify(&self, outcome: Outcome<'_>) -> Verdict {
        self(outcome)
    }
}

/// Two classifiers, the first one's retry winning. See [`Classify::or`].
#[derive(Clone, Debug)]
pub struct Or<A, B>(A, B);

impl<A: Classify, B: Classify> Classify for Or<A, B> {
    fn classify(&self, outcome: Outcome<'_>) -> Verdict {
        match self.0.classify(outcome) {
            Verdict::Done => self.1.classify(outcome),
            retry => retry,
        }
    }
}

/// The default rules, read from core's typed error model.
///
/// Retried: network errors and per-attempt timeouts; the statuses 408, 429, 500, 502, 503 and
/// 504, as responses or as decoded [`ApiError`]s (the set the AWS SDKs, gRPC's retry policy and
/// the Attraqt and IXON docs agree on); and rate limits of any status: a decoded [`ApiError`]
/// whose kind is [`ApiErrorKind::RateLimited`] (GitHub's 403, Google's legacy 403
/// `rateLimitExceeded`, Stripe's 400 `rate_limit`), or a response its headers mark as one
/// ([`marks_rate_limit`]: a 403 with `Retry-After` or a used-up quota). Never: other 4xx (a
/// plain 403 is final), auth, redirects, rate-limit fail-fasts, the call's deadline, bodies too
/// large.
///
/// "Not processed" (safe to re-send a POST): a connection never made, a rate limit, a 503 with
/// a wait hint (Open2b's "wait `X-Wait-Seconds`").
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use towline_retry::{Classify, Outcome, StandardClassifier, Verdict};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-wait-seconds", "3".parse().unwrap());
/// let verdict = StandardClassifier::new()
///     .classify(Outcome::Response { status: StatusCode::SERVICE_UNAVAILABLE, headers: &headers });
/// let Verdict::Retry { not_processed, hint } = verdict else { panic!() };
/// assert!(not_processed);
/// assert_eq!(hint.unwrap().wait().as_secs(), 3);
/// ```
#[derive(Clone, Debug, Default)]
pub struct StandardClassifier {
    hints: HintReader,
}

impl StandardClassifier {
    /// The default rules. See the type's docs.
    pub fn new() -> Self {
        StandardClassifier {
            hints: HintReader::new(),
        }
    }

    /// Reads wait hints with `hints` (e.g. a vendor's own header).
    pub fn hints(mut self, hints: HintReader) -> Self {
        self.hints = hints;
        self
    }
}

/// The statuses worth retrying.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// A rate limit: retried after the server's wait, and never processed (the server refused it
/// before doing anything).
fn rate_limit_verdict(hint: Option<RetryHint>) -> Verdict {
    Verdict::Retry {
        not_processed: true,
        hint,
    }
}

/// The verdict on a decoded error body: its typed kind first, so a rate limit of any status is
/// one, then its status.
fn api_verdict(api: &ApiError) -> Verdict {
    match api.kind {
        ApiErrorKind::RateLimited => rate_limit_verdict(api.retry_hint.clone()),
        _ => status_verdict(api.status, api.retry_hint.clone()),
    }
}

fn status_verdict(status: StatusCode, hint: Option<RetryHint>) -> Verdict {
    if !is_retryable_status(status) {
        return Verdict::Done;
    }
    let not_processed = status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::SERVICE_UNAVAILABLE && hint.is_some());
    Verdict::Retry {
        not_processed,
        hint,
    }
}

impl Classify for StandardClassifier {
    fn classify(&self, outcome: Outcome<'_>) -> Verdict {
        match outcome {
            // The headers are read only for a status worth retrying.
            Outcome::Response { status, headers } if is_retryable_status(status) => {
                status_verdict(status, self.hints.read(headers))
            }
            Outcome::Response { status, headers } if marks_rate_limit(status, headers) => {
                rate_limit_verdict(self.hints.read(headers))
            }
            Outcome::Response { .. } => Verdict::Done,
            Outcome::Error(error) => match ErrorKind::of(error) {
                ErrorKind::Network {
                    may_have_reached_server,
                } => {
                    let verdict = Verdict::retry();
                    if may_have_reached_server {
                        verdict
                    } else {
                        verdict.not_processed()
                    }
                }
                ErrorKind::Timeout => Verdict::retry(),
                ErrorKind::Api => match towline_core::find::<ApiError>(error) {
                    Some(api) => api_verdict(api),
                    None => Verdict::Done,
                },
                ErrorKind::DeadlineExceeded
                | ErrorKind::Redirected
                | ErrorKind::RateLimited
                | ErrorKind::Auth
                | ErrorKind::RetryBudgetExhausted
                | ErrorKind::BodyTooLarge
                | ErrorKind::CircuitOpen
                | ErrorKind::BulkheadFull
                | ErrorKind::StoreUnavailable
                | ErrorKind::Other => Verdict::Done,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{HeaderMap, HeaderValue, StatusCode};
    use towline_core::{ApiError, ApiErrorKind, ApiFormat, BoxError, HintSource, RetryHint};

    use super::{Classify, Outcome, StandardClassifier, Verdict};

    fn api(status: StatusCode, kind: ApiErrorKind, hint: Option<u64>) -> BoxError {
        let mut err = ApiError::new(status, ApiFormat::GitHub);
        err.kind = kind;
        err.retry_hint =
            hint.map(|s| RetryHint::new(Duration::from_secs(s), HintSource::RetryAfter));
        Box::new(err)
    }

    fn classify_error(error: &BoxError) -> Verdict {
        StandardClassifier::new().classify(Outcome::Error(&**error))
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_decoded_rate_limit_of_any_status_is_retried_with_its_hint_as_not_processed() {
        // GitHub's 403 and Stripe's legacy 400, decoded as rate limits.
        for status in [StatusCode::FORBIDDEN, StatusCode::BAD_REQUEST] {
            let error = api(status, ApiErrorKind::RateLimited, Some(60));
            let Verdict::Retry {
                not_processed,
                hint,
            } = classify_error(&error)
            else {
                panic!("{status}: a rate limit is retried");
            };
            assert!(not_processed);
            assert_eq!(hint.unwrap().wait(), Duration::from_secs(60));
        }
        // Google's legacy 403 rateLimitExceeded has no hint: retried with backoff.
        let error = api(StatusCode::FORBIDDEN, ApiErrorKind::RateLimited, None);
        assert!(classify_error(&error).is_retry());
    }

    #[test]
    fn a_plain_403_is_final() {
        let error = api(StatusCode::FORBIDDEN, ApiErrorKind::Forbidden, None);
        assert_eq!(classify_error(&error), Verdict::Done);
        let quota_left = headers(&[
            ("x-ratelimit-remaining", "4999"),
            ("x-ratelimit-reset", "60"),
        ]);
        let outcome = Outcome::Response {
            status: StatusCode::FORBIDDEN,
            headers: &quota_left,
        };
        assert_eq!(StandardClassifier::new().classify(outcome), Verdict::Done);
    }

    #[test]
    fn a_403_response_its_headers_mark_as_a_rate_limit_is_retried_after_the_reset() {
        for marked in [
            headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "30")]),
            headers(&[("retry-after", "30")]),
            headers(&[("ratelimit", "\"default\";r=0;t=30")]),
        ] {
            let outcome = Outcome::Response {
                status: StatusCode::FORBIDDEN,
                headers: &marked,
            };
            let Verdict::Retry {
                not_processed,
                hint,
            } = StandardClassifier::new().classify(outcome)
            else {
                panic!("{marked:?}: a rate limit is retried");
            };
            assert!(not_processed);
            assert_eq!(hint.unwrap().wait(), Duration::from_secs(30));
        }
    }

    #[test]
    fn a_401_with_a_used_up_quota_is_not_a_rate_limit() {
        let marked = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "30")]);
        let outcome = Outcome::Response {
            status: StatusCode::UNAUTHORIZED,
            headers: &marked,
        };
        assert_eq!(StandardClassifier::new().classify(outcome), Verdict::Done);
    }
}
