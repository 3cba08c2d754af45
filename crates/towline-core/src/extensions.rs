//! The request and response extensions towline's layers share.

use std::cell::Cell;
use std::time::Duration;

use http::{Extensions, StatusCode};
use tokio::time::Instant;

use crate::error::ErrorKind;
use crate::hint::saturating_add;

/// When the whole call must end.
///
/// Layers below a deadline read it with [`in_force`](Deadline::in_force) so that none starts a
/// sleep or an attempt that cannot finish in time. It reaches them two ways:
///
/// - **In scope** (how the deadline layer passes it on): [`scope`](Deadline::scope) makes it
///   the ambient deadline of the current thread while the layer calls and polls the layers
///   below, like a tokio task-local. It costs no allocation, which the success path cares
///   about; it does not cross a task boundary (a `Buffer`, a spawned call).
/// - **As a request extension** (how a caller sets its own): it travels with the request
///   wherever the request goes, at the cost of allocating the extension map.
///
/// When several are set, the earliest wins: neither [`tighten`](Deadline::tighten) nor
/// [`scope`](Deadline::scope) ever moves a deadline later.
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
///
/// // In the scope of an earlier deadline, that one is in force.
/// Deadline::after(Duration::from_secs(5)).scope(|| {
///     let deadline = Deadline::in_force(request.extensions()).unwrap();
///     assert!(!deadline.allows(Duration::from_secs(6)));
/// });
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

    /// The deadline set as an extension of a request or response, if any. Layers deciding
    /// what fits in the call's time want [`in_force`](Deadline::in_force), which also sees
    /// the deadline in scope.
    pub fn from_extensions(extensions: &Extensions) -> Option<Deadline> {
        extensions.get::<Deadline>().copied()
    }

    /// The deadline in force for a request: the earlier of its extension and the deadline in
    /// [`scope`](Deadline::scope), if either is set.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_core::Deadline;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let request = http::Request::new(());
    /// assert_eq!(Deadline::in_force(request.extensions()), None);
    /// let soon = Deadline::after(Duration::from_secs(1));
    /// soon.scope(|| assert_eq!(Deadline::in_force(request.extensions()), Some(soon)));
    /// # }
    /// ```
    pub fn in_force(extensions: &Extensions) -> Option<Deadline> {
        earliest(Self::from_extensions(extensions), Self::in_scope())
    }

    /// The deadline the current thread is in the [`scope`](Deadline::scope) of, if any.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_core::Deadline;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert_eq!(Deadline::in_scope(), None);
    /// let soon = Deadline::after(Duration::from_secs(1));
    /// assert_eq!(soon.scope(Deadline::in_scope), Some(soon));
    /// # }
    /// ```
    pub fn in_scope() -> Option<Deadline> {
        IN_SCOPE.with(Cell::get)
    }

    /// Runs `f` with no deadline in scope: for work that several calls share, such as a token
    /// fetch the others wait on, which no one call's deadline should cut short.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_core::Deadline;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// Deadline::after(Duration::from_secs(1)).scope(|| {
    ///     assert!(Deadline::in_scope().is_some());
    ///     Deadline::unscoped(|| assert_eq!(Deadline::in_scope(), None));
    /// });
    /// # }
    /// ```
    pub fn unscoped<R>(f: impl FnOnce() -> R) -> R {
        enter(None, f)
    }

    /// Runs `f` with this deadline in scope (or the one already in scope, if earlier), and
    /// restores the previous one after, even if `f` panics.
    ///
    /// A layer that enforces a deadline calls and polls the layers below inside it; a layer
    /// below reads it with [`in_force`](Deadline::in_force). It lasts for the synchronous
    /// call only, so a layer must enter it again for each poll.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_core::Deadline;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let soon = Deadline::after(Duration::from_secs(1));
    /// let effective = soon.scope(|| {
    ///     // A later deadline inside an earlier one changes nothing.
    ///     Deadline::after(Duration::from_secs(60)).scope(Deadline::in_scope)
    /// });
    /// assert_eq!(effective, Some(soon));
    /// assert_eq!(Deadline::in_scope(), None);
    /// # }
    /// ```
    pub fn scope<R>(self, f: impl FnOnce() -> R) -> R {
        let deadline = earliest(Self::in_scope(), Some(self));
        enter(deadline, f)
    }

    /// Sets this deadline on `extensions` unless an earlier one is already there, and returns
    /// the deadline in force.
    pub fn tighten(self, extensions: &mut Extensions) -> Deadline {
        match Self::from_extensions(extensions) {
            Some(existing) if existing <= self => existing,
            _ => {
                extensions.insert(self);
                self
            }
        }
    }
}

thread_local! {
    // The deadline of the call being polled on this thread: `Deadline::scope` sets it around
    // each synchronous call and poll, so it never outlives one and cannot leak across tasks.
    static IN_SCOPE: Cell<Option<Deadline>> = const { Cell::new(None) };
}

/// Runs `f` with `deadline` in scope, restoring the outer one after, even if `f` panics.
#[inline]
fn enter<R>(deadline: Option<Deadline>, f: impl FnOnce() -> R) -> R {
    crate::scoped::with_value(&IN_SCOPE, deadline, f)
}

fn earliest(a: Option<Deadline>, b: Option<Deadline>) -> Option<Deadline> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
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

impl std::fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptOutcome::Status(status) => std::fmt::Display::fmt(status, f),
            AttemptOutcome::Error(kind) => std::fmt::Display::fmt(kind, f),
        }
    }
}

/// How a call went, attempt by attempt: a response extension set by the retry layer.
///
/// It counts every attempt (the first one included), the delay slept before each retry, and
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
    /// [`ReplayRequested`](crate::ReplayRequested)).
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

    /// How many attempts were made, the first one included.
    pub fn count(&self) -> usize {
        self.earlier.len() + 1
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

    #[tokio::test]
    async fn scopes_nest_and_unwind_back_to_the_outer_deadline() {
        let outer = Deadline::after(Duration::from_secs(10));
        let inner = Deadline::after(Duration::from_secs(5));
        outer.scope(|| {
            inner.scope(|| assert_eq!(Deadline::in_scope(), Some(inner)));
            assert_eq!(Deadline::in_scope(), Some(outer));
            // A panic inside a scope leaves the outer one in force.
            let panicked = std::panic::catch_unwind(|| {
                inner.scope(|| panic!("inside"));
            });
            assert!(panicked.is_err());
            assert_eq!(Deadline::in_scope(), Some(outer));
            Deadline::unscoped(|| assert_eq!(Deadline::in_scope(), None));
            assert_eq!(Deadline::in_scope(), Some(outer));
        });
        assert_eq!(Deadline::in_scope(), None);
    }

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
        assert_eq!(Deadline::from_extensions(&extensions), Some(early));

        let mut extensions = Extensions::new();
        late.tighten(&mut extensions);
        assert_eq!(early.tighten(&mut extensions), early);
        assert_eq!(Deadline::from_extensions(&extensions), Some(early));
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
