//! [`CallContext`]: what the layers of a stack share about one call, carried by the request.

use std::fmt;
use std::time::Duration;

use http::Extensions;
use tokio::time::Instant;

use crate::error::BoxError;
use crate::extensions::Deadline;

/// What towline's layers share about one call: when it started, its deadline, which attempt
/// the request is, and whether a layer above sends the attempt again after a credentials
/// refresh.
///
/// It travels as a request extension, so it goes wherever the request goes: through a
/// `tower::buffer::Buffer`, into a spawned task, through layers that are not towline's. A
/// layer reads it with [`from_extensions`](CallContext::from_extensions) and updates it with
/// [`of_mut`](CallContext::of_mut), which inserts a fresh one the first time. No other channel
/// exists between towline's layers.
///
/// Who sets what:
///
/// - the deadline layer (or a caller, with [`Deadline::tighten`]) sets the
///   [`deadline`](CallContext::deadline); it only ever moves earlier;
/// - the retry layer sets the [`attempt`](CallContext::attempt) number and the
///   [`resend`](CallContext::resend) promise on each attempt it sends;
/// - the per-attempt timeout layer sets the [`attempt_limit`](CallContext::attempt_limit) of
///   the attempt it times, when the request carries a context already (it inserts none), so
///   that a layer below reading a body under that limit can say the body was what was slow;
/// - whoever inserts it first fixes [`started`](CallContext::started).
///
/// ```
/// use std::time::Duration;
/// use towline_core::{CallContext, Deadline, Resend};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut request = http::Request::new(());
/// assert!(CallContext::from_extensions(request.extensions()).is_none());
///
/// let context = CallContext::of_mut(request.extensions_mut());
/// context.tighten_deadline(Deadline::after(Duration::from_secs(30)));
/// context.set_attempt(2);
/// context.set_resend(Resend::OnRefresh);
///
/// let seen = CallContext::from_extensions(request.extensions()).unwrap();
/// assert_eq!(seen.attempt(), 2);
/// assert_eq!(seen.resend(), Resend::OnRefresh);
/// assert!(seen.deadline().unwrap().allows(Duration::from_secs(10)));
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallContext {
    started: Instant,
    deadline: Option<Deadline>,
    attempt: u32,
    resend: Resend,
    attempt_limit: Option<AttemptLimit>,
}

impl Default for CallContext {
    fn default() -> Self {
        Self::new()
    }
}

impl CallContext {
    /// A call starting now: its first attempt, no deadline, no resend promised.
    ///
    /// ```
    /// use towline_core::{CallContext, Resend};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let context = CallContext::new();
    /// assert_eq!((context.attempt(), context.resend(), context.deadline()), (1, Resend::No, None));
    /// # }
    /// ```
    pub fn new() -> Self {
        Self::starting_at(Instant::now())
    }

    /// A call that started at `started`: for a layer that has read the clock already.
    ///
    /// ```
    /// use tokio::time::Instant;
    /// use towline_core::CallContext;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let now = Instant::now();
    /// assert_eq!(CallContext::starting_at(now).started(), now);
    /// # }
    /// ```
    pub fn starting_at(started: Instant) -> Self {
        CallContext {
            started,
            deadline: None,
            attempt: 1,
            resend: Resend::No,
            attempt_limit: None,
        }
    }

    /// The context a request carries, if any layer (or the caller) set one.
    ///
    /// ```
    /// use towline_core::CallContext;
    ///
    /// let request = http::Request::new(());
    /// assert_eq!(CallContext::from_extensions(request.extensions()), None);
    /// ```
    pub fn from_extensions(extensions: &Extensions) -> Option<&CallContext> {
        extensions.get::<CallContext>()
    }

    /// The context a request carries, inserted (starting now) if it has none yet.
    ///
    /// Inserting the first extension of a request allocates its extension map; a layer that
    /// has nothing to say leaves the request alone.
    ///
    /// ```
    /// use towline_core::CallContext;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let mut request = http::Request::new(());
    /// CallContext::of_mut(request.extensions_mut()).set_attempt(3);
    /// assert_eq!(CallContext::of_mut(request.extensions_mut()).attempt(), 3);
    /// # }
    /// ```
    pub fn of_mut(extensions: &mut Extensions) -> &mut CallContext {
        extensions.get_or_insert_with(CallContext::new)
    }

    /// When the call started: when its context was made.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// When the whole call must end, if anyone said.
    pub fn deadline(&self) -> Option<Deadline> {
        self.deadline
    }

    /// Sets `deadline` unless an earlier one is set, and returns the deadline in force: a
    /// deadline only ever moves earlier.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_core::{CallContext, Deadline};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let mut context = CallContext::new();
    /// let soon = Deadline::after(Duration::from_secs(5));
    /// context.tighten_deadline(soon);
    /// assert_eq!(context.tighten_deadline(Deadline::after(Duration::from_secs(60))), soon);
    /// # }
    /// ```
    pub fn tighten_deadline(&mut self, deadline: Deadline) -> Deadline {
        let earliest = match self.deadline {
            Some(existing) if existing <= deadline => existing,
            _ => deadline,
        };
        self.deadline = Some(earliest);
        earliest
    }

    /// Which attempt of the call this request is: 1 for the first, counting every send (a
    /// resend after a credentials refresh included).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Sets the attempt number (the retry layer does, for each attempt it sends).
    pub fn set_attempt(&mut self, attempt: u32) {
        self.attempt = attempt;
    }

    /// Whether a layer above sends this attempt again after a credentials refresh.
    pub fn resend(&self) -> Resend {
        self.resend
    }

    /// The per-attempt time limit this attempt runs under, if a timeout layer above set one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_core::{AttemptLimit, CallContext};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let mut context = CallContext::new();
    /// assert_eq!(context.attempt_limit(), None);
    /// let limit = AttemptLimit::after(Duration::from_secs(1));
    /// context.set_attempt_limit(Some(limit));
    /// assert_eq!(context.attempt_limit(), Some(limit));
    /// # }
    /// ```
    pub fn attempt_limit(&self) -> Option<AttemptLimit> {
        self.attempt_limit
    }

    /// Sets the per-attempt time limit (the timeout layer does, for the attempt it times).
    pub fn set_attempt_limit(&mut self, limit: Option<AttemptLimit>) {
        self.attempt_limit = limit;
    }

    /// Sets the resend promise. Only a layer that keeps a copy of the request and acts on
    /// [`CredentialsRefreshed`] may promise [`Resend::OnRefresh`]; a layer that keeps none sets
    /// [`Resend::No`], so that a promise from further up does not reach past it.
    pub fn set_resend(&mut self, resend: Resend) {
        self.resend = resend;
    }
}

/// A per-attempt time limit in force: the attempt must be complete by
/// [`until`](AttemptLimit::until), `limit` after it started.
///
/// The timeout layer covers the response head and, when the error-body layer sits below it,
/// the reading of an error body too. It cannot see which of the two it cut short; a layer
/// below that reads a body under the limit can, and ends at `until` with
/// `Elapsed::new(limit, TimeoutPhase::Body)` itself (an answer ready at the limit wins over
/// the layer's own timer, which polls its inner future first).
///
/// ```
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use towline_core::AttemptLimit;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let start = Instant::now();
/// let limit = AttemptLimit::starting_at(start, Duration::from_secs(10));
/// assert_eq!((limit.until(), limit.limit()), (start + Duration::from_secs(10), Duration::from_secs(10)));
/// // Saturates where `Instant + Duration::MAX` would panic.
/// assert!(AttemptLimit::starting_at(start, Duration::MAX).until() > start);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AttemptLimit {
    until: Instant,
    limit: Duration,
}

impl AttemptLimit {
    /// An attempt starting now that must be complete within `limit`.
    pub fn after(limit: Duration) -> Self {
        Self::starting_at(Instant::now(), limit)
    }

    /// An attempt that started at `start` and must be complete within `limit`.
    pub fn starting_at(start: Instant, limit: Duration) -> Self {
        AttemptLimit {
            until: Deadline::after_start(start, limit).instant(),
            limit,
        }
    }

    /// The instant the attempt must be complete by.
    pub fn until(self) -> Instant {
        self.until
    }

    /// The limit, as configured.
    pub fn limit(self) -> Duration {
        self.limit
    }
}

/// Whether a layer above sends an attempt again, at once, when a layer below refreshed the
/// credentials it carried (see [`CredentialsRefreshed`]).
///
/// The token-refresh layer reads it from the [`CallContext`]: under [`OnRefresh`](Resend::OnRefresh)
/// it keeps no copy of the request and ends a refreshed attempt with [`CredentialsRefreshed`];
/// under [`No`](Resend::No) it keeps its own copy and sends it itself; under
/// [`Resent`](Resend::Resent) the attempt is already the resend, and another 401 is final.
///
/// ```
/// use towline_core::Resend;
///
/// assert_eq!(Resend::default(), Resend::No);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resend {
    /// No layer above sends this attempt again: a layer that needs a resend keeps its own copy.
    #[default]
    No,
    /// A layer above keeps a copy and sends this attempt again, at once, if a layer below ends
    /// it with [`CredentialsRefreshed`].
    OnRefresh,
    /// This attempt is that resend: it will not be sent again for a refresh.
    Resent,
}

/// An attempt ended because the credentials it carried were refused and have been refreshed:
/// the same request sent again carries the new ones.
///
/// A token-refresh layer returns it only when the [`CallContext`] promises
/// [`Resend::OnRefresh`]; the layer that made the promise (towline's retry layer, or tower's
/// `Retry` with towline's policy) sends its copy again at once — no delay, no retry budget,
/// not counted as a retry. Layers in between may wrap it (it is found through the error's
/// `source()` chain), but must not turn it into a response. If the request cannot be sent
/// again after all (a streaming body past its replay cap), the call ends with
/// [`into_inner`](CredentialsRefreshed::into_inner): the error the refreshing layer would have
/// ended it with.
///
/// ```
/// use towline_core::{AuthError, AuthReason, BoxError, CredentialsRefreshed, find};
///
/// let refreshed = CredentialsRefreshed::new(Box::new(AuthError::new(AuthReason::Expired)));
/// let error: BoxError = Box::new(refreshed);
/// assert!(find::<CredentialsRefreshed>(&*error).is_some());
/// let otherwise = error.downcast::<CredentialsRefreshed>().unwrap().into_inner();
/// assert!(otherwise.is::<AuthError>());
/// ```
#[derive(Debug)]
pub struct CredentialsRefreshed {
    otherwise: BoxError,
}

impl CredentialsRefreshed {
    /// The attempt's credentials were refreshed; `otherwise` is the error to end the call with
    /// if it is not sent again.
    pub fn new(otherwise: BoxError) -> Self {
        CredentialsRefreshed { otherwise }
    }

    /// The error to end the call with when the request is not sent again.
    ///
    /// ```
    /// use towline_core::CredentialsRefreshed;
    ///
    /// let refreshed = CredentialsRefreshed::new("401 Unauthorized".into());
    /// assert_eq!(refreshed.into_inner().to_string(), "401 Unauthorized");
    /// ```
    pub fn into_inner(self) -> BoxError {
        self.otherwise
    }
}

impl fmt::Display for CredentialsRefreshed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the credentials were refreshed: send the request again")
    }
}

impl std::error::Error for CredentialsRefreshed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.otherwise)
    }
}

/// Takes a [`CredentialsRefreshed`] out of `error`, wherever it is in the `source()` chain:
/// `Ok` with what the refreshing layer would otherwise have ended the call with, or the
/// error back unchanged.
///
/// A layer in between may have wrapped it; then the wrapper is dropped with it, since the
/// request is about to be sent again.
///
/// ```
/// use towline_core::{BoxError, CredentialsRefreshed, take_credentials_refreshed};
///
/// let refreshed: BoxError = Box::new(CredentialsRefreshed::new("401 Unauthorized".into()));
/// let otherwise = take_credentials_refreshed(refreshed).unwrap();
/// assert_eq!(otherwise.to_string(), "401 Unauthorized");
///
/// let other: BoxError = "connection reset".into();
/// assert!(take_credentials_refreshed(other).is_err());
/// ```
pub fn take_credentials_refreshed(error: BoxError) -> Result<BoxError, BoxError> {
    match error.downcast::<CredentialsRefreshed>() {
        Ok(refreshed) => Ok(refreshed.into_inner()),
        // Wrapped by a layer in between: the chain can only be borrowed, so the error to end
        // with, should the resend not happen, is the wrapper as it is.
        Err(error) if crate::find::<CredentialsRefreshed>(&*error).is_some() => Ok(error),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_only_moves_earlier() {
        let mut context = CallContext::new();
        let late = Deadline::after(Duration::from_secs(50));
        let early = Deadline::after(Duration::from_secs(5));
        assert_eq!(context.tighten_deadline(late), late);
        assert_eq!(context.tighten_deadline(early), early);
        assert_eq!(context.tighten_deadline(late), early);
        assert_eq!(context.deadline(), Some(early));
    }

    #[tokio::test(start_paused = true)]
    async fn the_context_travels_with_a_copy_of_the_request() {
        let mut request = http::Request::new(());
        CallContext::of_mut(request.extensions_mut()).set_attempt(4);
        let copy = crate::replay_request(&request).unwrap();
        assert_eq!(
            CallContext::from_extensions(copy.extensions()).map(CallContext::attempt),
            Some(4)
        );
    }

    #[test]
    fn a_wrapped_refresh_is_still_found() {
        #[derive(Debug)]
        struct Wrapper(BoxError);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("wrapped")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&*self.0)
            }
        }
        let refreshed: BoxError = Box::new(CredentialsRefreshed::new("401".into()));
        let wrapped: BoxError = Box::new(Wrapper(refreshed));
        let otherwise = take_credentials_refreshed(wrapped).unwrap();
        assert_eq!(otherwise.to_string(), "wrapped");
    }
}
