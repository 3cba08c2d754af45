//! The request and response extensions towline's layers share.

use std::time::Duration;

use http::{Extensions, StatusCode};
use tokio::time::Instant;

use crate::context::CallContext;
use crate::hint::saturating_add;
use crate::kind::ErrorKind;

/// When the whole call must end.
///
/// Layers read the deadline in force for a request with [`in_force`](Deadline::in_force), so
/// that none starts a sleep or an attempt that cannot finish in time. It travels in the
/// request's [`CallContext`]: the deadline layer sets it there, and so does a caller with
/// [`tighten`](Deadline::tighten). The earliest always wins: a deadline never moves later.
///
/// ```
/// use std::time::Duration;
/// use towline_core::Deadline;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut request = http::Request::new(());
/// Deadline::after(Duration::from_secs(30)).tighten(request.extensions_mut());
/// // A caller's tighter deadline wins over a later, looser one.
/// let effective = Deadline::after(Duration::from_secs(60)).tighten(request.extensions_mut());
/// assert!(effective.remaining() <= Duration::from_secs(30));
///
/// let deadline = Deadline::in_force(request.extensions()).unwrap();
/// assert!(deadline.allows(Duration::from_secs(10)));
/// assert!(!deadline.allows(Duration::from_secs(31)));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(Instant);

impl Deadline {
    /// A deadline at `instant`.
    pub fn at(instant: Instant) -> Self {
        Deadline(instant)
    }

    /// A deadline `timeout` from now (on tokio's clock, so paused-time tests control it).
    pub fn after(timeout: Duration) -> Self {
        Self::after_start(Instant::now(), timeout)
    }

    /// A deadline `timeout` after `start`: for a caller that has read the clock already.
    /// Like [`after`](Deadline::after), it saturates where `Instant + Duration` would panic.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tokio::time::Instant;
    /// use towline_core::Deadline;
    ///
    /// let start = Instant::now();
    /// let deadline = Deadline::after_start(start, Duration::from_secs(5));
    /// assert_eq!(deadline.instant(), start + Duration::from_secs(5));
    /// assert!(Deadline::after_start(start, Duration::MAX).instant() > start);
    /// ```
    pub fn after_start(start: Instant, timeout: Duration) -> Self {
        Deadline(saturating_add(start, timeout))
    }

    /// The instant the call must end.
    pub fn instant(self) -> Instant {
        self.0
    }

    /// Time left before the deadline; zero once it has passed.
    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether the deadline has passed.
    pub fn is_expired(self) -> bool {
        Instant::now() >= self.0
    }

    /// Whether a wait of `wait` starting now ends no later than the deadline.
    pub fn allows(self, wait: Duration) -> bool {
        wait <= self.remaining() && !self.is_expired()
    }

    /// The deadline in force for a request: the one in its [`CallContext`], if any.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_core::Deadline;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let mut request = http::Request::new(());
    /// assert_eq!(Deadline::in_force(request.extensions()), None);
    /// let soon = Deadline::after(Duration::from_secs(1));
    /// soon.tighten(request.extensions_mut());
    /// assert_eq!(Deadline::in_force(request.extensions()), Some(soon));
    /// # }
    /// ```
    pub fn in_force(extensions: &Extensions) -> Option<Deadline> {
        CallContext::from_extensions(extensions).and_then(CallContext::deadline)
    }

    /// Sets this deadline in the request's [`CallContext`] (inserting one if needed) unless an
    /// earlier one is set there, and returns the deadline in force.
    pub fn tighten(self, extensions: &mut Extensions) -> Deadline {
        CallContext::of_mut(extensions).tighten_deadline(self)
    }
}

/// What an earlier attempt of a call returned.
///
/// ```
/// use http::StatusCode;
/// use towline_core::{AttemptOutcome, ErrorKind};
///
/// let outcome = AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(outcome.to_string(), "503 Service Unavailable");
/// let outcome = AttemptOutcome::Error(ErrorKind::Timeout);
/// assert_eq!(outcome.to_string(), "timeout");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// A response with this status (which some layer judged worth retrying).
    Status(StatusCode),
    /// An error of this kind.
    Error(ErrorKind),
}

impl AttemptOutcome {
    /// A short, stable name for the outcome, for metrics and span attributes: the status
    /// (`"503"`) or the error kind's [`name`](ErrorKind::name) (`"timeout"`).
    ///
    /// ```
    /// use http::StatusCode;
    /// use towline_core::{AttemptOutcome, ErrorKind};
    ///
    /// assert_eq!(AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE).name(), "503");
    /// assert_eq!(AttemptOutcome::Error(ErrorKind::Timeout).name(), "timeout");
    /// ```
    pub fn name(&self) -> &str {
        match self {
            AttemptOutcome::Status(status) => status.as_str(),
            AttemptOutcome::Error(kind) => kind.name(),
        }
    }

    /// What an attempt that ended with `error` returned: the status of the decoded error body
    /// in its chain (a decoded 503 is a 503, as a response would be), else the error's kind.
    ///
    /// ```
    /// use http::StatusCode;
    /// use towline_core::{ApiError, ApiFormat, AttemptOutcome, ErrorKind};
    ///
    /// let api = ApiError::new(StatusCode::UNAUTHORIZED, ApiFormat::Unrecognized);
    /// assert_eq!(AttemptOutcome::of_error(&api), AttemptOutcome::Status(StatusCode::UNAUTHORIZED));
    /// let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    /// assert_eq!(
    ///     AttemptOutcome::of_error(&reset),
    ///     AttemptOutcome::Error(ErrorKind::Network { may_have_reached_server: true })
    /// );
    /// ```
    pub fn of_error(error: &(dyn std::error::Error + 'static)) -> Self {
        match crate::find::<crate::ApiError>(error) {
            Some(api) => AttemptOutcome::Status(api.status),
            None => AttemptOutcome::Error(ErrorKind::of(error)),
        }
    }
}

impl std::fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptOutcome::Status(status) => std::fmt::Display::fmt(status, f),
            AttemptOutcome::Error(kind) => std::fmt::Display::fmt(kind, f),
        }
    }
}

/// How a call went, attempt by attempt: a response extension set by the retry layer (and by
/// the hedge layer, when it sent a hedged copy).
///
/// It counts every attempt (the first one included, hedged copies too), the delay slept before each retry, and
/// what each attempt before the last returned. A call that succeeded at once has one attempt,
/// no delays and no earlier outcomes, and allocates nothing.
///
/// ```
/// use std::time::Duration;
/// use http::StatusCode;
/// use towline_core::{AttemptOutcome, Attempts};
///
/// let mut attempts = Attempts::new();
/// attempts.record_retry(AttemptOutcome::Status(StatusCode::BAD_GATEWAY), Duration::from_millis(100));
/// attempts.record_retry(AttemptOutcome::Status(StatusCode::BAD_GATEWAY), Duration::from_millis(250));
/// assert_eq!(attempts.count(), 3);
/// assert_eq!(attempts.retries(), 2);
/// assert_eq!(attempts.total_delay(), Duration::from_millis(350));
/// assert_eq!(attempts.earlier()[0], AttemptOutcome::Status(StatusCode::BAD_GATEWAY));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attempts {
    earlier: Vec<AttemptOutcome>,
    delays: Vec<Duration>,
    /// How many of the earlier attempts were followed by a replay, not a retry.
    replays: usize,
    /// How many hedged copies were sent beside an attempt still in flight.
    hedges: usize,
    budget_exhausted: bool,
}

impl Default for Attempts {
    fn default() -> Self {
        Self::new()
    }
}

impl Attempts {
    /// A call on its first attempt.
    pub fn new() -> Self {
        Attempts {
            earlier: Vec::new(),
            delays: Vec::new(),
            replays: 0,
            hedges: 0,
            budget_exhausted: false,
        }
    }

    /// Records that the latest attempt ended with `outcome` and the next one starts after
    /// sleeping `delay`.
    pub fn record_retry(&mut self, outcome: AttemptOutcome, delay: Duration) {
        self.earlier.push(outcome);
        self.delays.push(delay);
    }

    /// Records that the latest attempt ended with `outcome` and is sent again at once, not as
    /// a retry: a replay with refreshed credentials after a 401 (see
    /// [`CredentialsRefreshed`](crate::CredentialsRefreshed)).
    ///
    /// ```
    /// use http::StatusCode;
    /// use towline_core::{AttemptOutcome, Attempts};
    ///
    /// let mut attempts = Attempts::new();
    /// attempts.record_replay(AttemptOutcome::Status(StatusCode::UNAUTHORIZED));
    /// assert_eq!((attempts.count(), attempts.retries(), attempts.replays()), (2, 0, 1));
    /// ```
    pub fn record_replay(&mut self, outcome: AttemptOutcome) {
        self.earlier.push(outcome);
        self.delays.push(Duration::ZERO);
        self.replays += 1;
    }

    /// Records that a hedged copy of the attempt in flight was sent beside it, because it was
    /// slow to answer (the first answer of the two was kept, the other dropped).
    ///
    /// ```
    /// use towline_core::Attempts;
    ///
    /// let mut attempts = Attempts::new();
    /// attempts.record_hedge();
    /// assert_eq!((attempts.count(), attempts.retries(), attempts.hedges()), (2, 0, 1));
    /// ```
    pub fn record_hedge(&mut self) {
        self.hedges += 1;
    }

    /// How many attempts were made, the first one included (and hedged copies too).
    pub fn count(&self) -> usize {
        self.earlier.len() + 1 + self.hedges
    }

    /// How many hedged copies were sent beside a slow attempt (see
    /// [`record_hedge`](Attempts::record_hedge)); neither retries nor replays.
    pub fn hedges(&self) -> usize {
        self.hedges
    }

    /// How many attempts were retries (replays after a credentials refresh not included).
    pub fn retries(&self) -> usize {
        self.earlier.len() - self.replays
    }

    /// How many attempts were replays after a credentials refresh.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::StatusCode;
    /// use towline_core::{AttemptOutcome, Attempts};
    ///
    /// let mut attempts = Attempts::new();
    /// attempts.record_replay(AttemptOutcome::Status(StatusCode::UNAUTHORIZED));
    /// attempts.record_retry(AttemptOutcome::Status(StatusCode::BAD_GATEWAY), Duration::from_millis(100));
    /// assert_eq!((attempts.replays(), attempts.retries(), attempts.count()), (1, 1, 3));
    /// ```
    pub fn replays(&self) -> usize {
        self.replays
    }

    /// The delay slept before each attempt after the first, in order (zero before a replay).
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// The sum of all delays, saturating.
    pub fn total_delay(&self) -> Duration {
        self.delays
            .iter()
            .fold(Duration::ZERO, |sum, d| sum.saturating_add(*d))
    }

    /// What each attempt before the last returned, in order.
    pub fn earlier(&self) -> &[AttemptOutcome] {
        &self.earlier
    }

    /// Records that the retry budget stopped another retry.
    pub fn mark_budget_exhausted(&mut self) {
        self.budget_exhausted = true;
    }

    /// Whether the retry budget stopped another retry: the last outcome was worth retrying,
    /// but too many retries were already in flight across all calls.
    ///
    /// ```
    /// use towline_core::Attempts;
    ///
    /// let mut attempts = Attempts::new();
    /// assert!(!attempts.budget_exhausted());
    /// attempts.mark_budget_exhausted();
    /// assert!(attempts.budget_exhausted());
    /// ```
    pub fn budget_exhausted(&self) -> bool {
        self.budget_exhausted
    }

    /// The attempts recorded on a response (or request), if any.
    pub fn from_extensions(extensions: &Extensions) -> Option<&Attempts> {
        extensions.get::<Attempts>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn deadline_counts_down_on_the_paused_clock() {
        let deadline = Deadline::after(Duration::from_secs(10));
        assert_eq!(deadline.remaining(), Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(deadline.remaining(), Duration::from_secs(6));
        assert!(deadline.allows(Duration::from_secs(6)));
        assert!(!deadline.allows(Duration::from_millis(6001)));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(deadline.is_expired());
        assert_eq!(deadline.remaining(), Duration::ZERO);
        assert!(!deadline.allows(Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_is_never_replaced_by_a_later_one() {
        let mut extensions = Extensions::new();
        let early = Deadline::after(Duration::from_secs(5));
        let late = Deadline::after(Duration::from_secs(50));
        assert_eq!(early.tighten(&mut extensions), early);
        assert_eq!(late.tighten(&mut extensions), early);
        assert_eq!(Deadline::in_force(&extensions), Some(early));

        let mut extensions = Extensions::new();
        late.tighten(&mut extensions);
        assert_eq!(early.tighten(&mut extensions), early);
        assert_eq!(Deadline::in_force(&extensions), Some(early));
    }

    #[tokio::test(start_paused = true)]
    async fn an_absurd_timeout_does_not_panic() {
        let deadline = Deadline::after(Duration::MAX);
        assert!(!deadline.is_expired());
        assert!(deadline.allows(Duration::from_secs(86_400 * 365)));
    }

    #[test]
    fn attempts_start_at_one_and_record_each_retry() {
        let attempts = Attempts::default();
        assert_eq!(attempts.count(), 1);
        assert_eq!(attempts.retries(), 0);
        assert!(attempts.delays().is_empty());
        assert_eq!(attempts.total_delay(), Duration::ZERO);

        let mut attempts = Attempts::new();
        attempts.record_retry(
            AttemptOutcome::Error(ErrorKind::Network {
                may_have_reached_server: false,
            }),
            Duration::from_millis(80),
        );
        attempts.record_retry(
            AttemptOutcome::Status(StatusCode::TOO_MANY_REQUESTS),
            Duration::MAX,
        );
        assert_eq!(attempts.count(), 3);
        assert_eq!(attempts.total_delay(), Duration::MAX);
        assert_eq!(
            attempts.earlier()[1],
            AttemptOutcome::Status(StatusCode::TOO_MANY_REQUESTS)
        );

        let mut extensions = Extensions::new();
        extensions.insert(attempts.clone());
        assert_eq!(Attempts::from_extensions(&extensions), Some(&attempts));
    }
}
