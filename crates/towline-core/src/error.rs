//! The typed error: [`Error`] and what its `Display` tells. The kinds it is sorted into are in
//! `kind.rs`, the sorting itself in `classify.rs`, formatting a whole chain in `display.rs`.

use std::error::Error as StdError;
use std::fmt;

use crate::api::ApiError;
use crate::classify::{chain, classify, find};
use crate::context::CredentialsRefreshed;
use crate::display::DisplayChain;
use crate::extensions::Attempts;
use crate::failures::{
    AuthError, AuthReason, DeadlineExceeded, RateLimited, Redirected, Retried, RetryBudgetExhausted,
};
use crate::hint::RetryHint;
use crate::kind::ErrorKind;

/// The error type every towline layer returns: tower's convention, so layers stack over any
/// inner service's error. The concrete errors inside are typed; [`Error::from`] sorts them out.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A towline error: the [`ErrorKind`] it was classified as, and the original error inside.
///
/// Convert any layer's [`BoxError`] with `Error::from` and `match` on [`kind`](Error::kind);
/// the typed parts are reachable with [`api`](Error::api), [`retry_hint`](Error::retry_hint),
/// [`auth_reason`](Error::auth_reason) and, for anything else, [`find`](Error::find).
///
/// ```
/// use http::StatusCode;
/// use towline_core::{ApiError, ApiFormat, BoxError, Error, ErrorKind, RetryBudgetExhausted};
///
/// // What a retry layer returns after its budget ran out on a decoded 503:
/// let last = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ApiFormat::Unrecognized);
/// let boxed: BoxError = Box::new(RetryBudgetExhausted::new(Box::new(last)));
///
/// let err = Error::from(boxed);
/// assert_eq!(err.kind(), ErrorKind::RetryBudgetExhausted);
/// assert_eq!(err.api().unwrap().status, StatusCode::SERVICE_UNAVAILABLE);
/// ```
pub struct Error {
    kind: ErrorKind,
    inner: BoxError,
}

impl Error {
    /// Classifies `error` (see [`classify`]) and wraps it.
    ///
    /// ```
    /// use towline_core::{Error, ErrorKind};
    ///
    /// let err = Error::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    /// assert_eq!(err.kind(), ErrorKind::Network { may_have_reached_server: false });
    /// ```
    pub fn new(error: impl Into<BoxError>) -> Self {
        Error::from(error.into())
    }

    /// What went wrong.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_core::{Elapsed, Error, ErrorKind, TimeoutPhase};
    ///
    /// let err = Error::new(Elapsed::new(Duration::from_secs(5), TimeoutPhase::Head));
    /// assert_eq!(err.kind(), ErrorKind::Timeout);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The first error of type `E` in the chain of sources, this error's own inner one first.
    ///
    /// ```
    /// use towline_core::{BoxError, Error};
    ///
    /// let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    /// let err = Error::from(BoxError::from(io));
    /// assert_eq!(err.find::<std::io::Error>().unwrap().kind(), std::io::ErrorKind::ConnectionReset);
    /// ```
    pub fn find<E: StdError + 'static>(&self) -> Option<&E> {
        find(&*self.inner)
    }

    /// The record of the call's requests, when more than one was sent: retries, a resend
    /// after a credentials refresh (by the retry layer or the token layer alone), and a
    /// deadline that passed after a retry. `None` means one request.
    ///
    /// ```
    /// use towline_core::{Attempts, BoxError, Error, Retried};
    ///
    /// let err = Error::new(Retried::new(Attempts::new(), BoxError::from("boom")));
    /// assert_eq!(err.attempts().unwrap().count(), 1);
    /// assert!(Error::new(std::io::Error::other("once")).attempts().is_none());
    /// ```
    pub fn attempts(&self) -> Option<&Attempts> {
        self.find::<Retried>().map(Retried::attempts)
    }

    /// The decoded error body, if the server sent one.
    ///
    /// ```
    /// use http::StatusCode;
    /// use towline_core::{ApiError, ApiFormat, Error};
    ///
    /// let err = Error::new(ApiError::new(StatusCode::FORBIDDEN, ApiFormat::Attraqt));
    /// assert_eq!(err.api().unwrap().status, StatusCode::FORBIDDEN);
    /// ```
    pub fn api(&self) -> Option<&ApiError> {
        self.find::<ApiError>()
    }

    /// The redirect that was not followed.
    ///
    /// ```
    /// use http::StatusCode;
    /// use towline_core::{Error, Redirected};
    ///
    /// let err = Error::new(Redirected::new(StatusCode::MOVED_PERMANENTLY, None));
    /// assert_eq!(err.redirected().unwrap().status(), StatusCode::MOVED_PERMANENTLY);
    /// ```
    pub fn redirected(&self) -> Option<&Redirected> {
        self.find::<Redirected>()
    }

    /// The wait the server asked for, from a rate-limit error or a decoded body.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::StatusCode;
    /// use towline_core::{ApiError, ApiFormat, Error, HintSource, RetryHint};
    ///
    /// let mut api = ApiError::new(StatusCode::TOO_MANY_REQUESTS, ApiFormat::Attraqt);
    /// api.retry_hint = Some(RetryHint::new(Duration::from_secs(2), HintSource::RetryAfter));
    /// assert_eq!(Error::new(api).retry_hint().unwrap().wait(), Duration::from_secs(2));
    /// ```
    pub fn retry_hint(&self) -> Option<&RetryHint> {
        chain(&*self.inner).find_map(|e| {
            if let Some(limited) = e.downcast_ref::<RateLimited>() {
                limited.hint()
            } else {
                e.downcast_ref::<ApiError>()?.retry_hint.as_ref()
            }
        })
    }

    /// Why authentication failed, from the auth layer or a decoded body.
    ///
    /// ```
    /// use towline_core::{AuthError, AuthReason, Error};
    ///
    /// let err = Error::new(AuthError::new(AuthReason::Expired));
    /// assert_eq!(err.auth_reason(), Some(AuthReason::Expired));
    /// ```
    pub fn auth_reason(&self) -> Option<AuthReason> {
        chain(&*self.inner).find_map(|e| {
            if let Some(auth) = e.downcast_ref::<AuthError>() {
                Some(auth.reason())
            } else {
                e.downcast_ref::<ApiError>()?.auth_reason()
            }
        })
    }

    /// The original error.
    ///
    /// ```
    /// use towline_core::Error;
    ///
    /// let err = Error::new(std::io::Error::other("boom"));
    /// assert!(err.get_ref().is::<std::io::Error>());
    /// ```
    pub fn get_ref(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.inner
    }

    /// The original error, owned.
    ///
    /// ```
    /// use towline_core::Error;
    ///
    /// let inner = Error::new(std::io::Error::other("boom")).into_inner();
    /// assert_eq!(inner.to_string(), "boom");
    /// ```
    pub fn into_inner(self) -> BoxError {
        self.inner
    }
}

impl From<BoxError> for Error {
    fn from(error: BoxError) -> Self {
        // Already classified (a layer or the user converted it once): keep it as it is.
        match error.downcast::<Error>() {
            Ok(error) => *error,
            Err(error) => Error {
                kind: classify(&error),
                inner: error,
            },
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("inner", &self.inner)
            .finish()
    }
}

impl fmt::Display for Error {
    /// What finally happened, in one line: the inner error and, through each towline wrapper
    /// that keeps its cause as `source()` without printing it (`Retried`,
    /// `RetryBudgetExhausted`, `DeadlineExceeded`, `RateLimited`, `AuthError`,
    /// `CredentialsRefreshed`), the cause: "gave up after 4 attempts: 503 Service Unavailable
    /// (...)". Network errors are prefixed by the kind, which says whether the request was sent.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ErrorKind::Network { .. } = self.kind {
            write!(f, "{}: ", self.kind)?;
        }
        let mut told = self.told();
        if let Some(first) = told.next() {
            fmt::Display::fmt(first, f)?;
        }
        for link in told {
            write!(f, ": {link}")?;
        }
        Ok(())
    }
}

impl Error {
    /// The links of the chain this error's `Display` tells, outermost first: the inner error,
    /// then the cause of each wrapper that leaves its cause out of its own `Display`.
    fn told(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        // Bounded, in case a buggy error's chain is cyclic.
        const MAX_DEPTH: usize = 64;
        let inner: &(dyn StdError + 'static) = &*self.inner;
        std::iter::successors(Some(inner), |&link| {
            if leaves_out_its_cause(link) {
                link.source()
            } else {
                None
            }
        })
        .take(MAX_DEPTH)
    }

    /// Formats this error and every source its `Display` does not tell, on one line, each
    /// link once: for a log line. See [`DisplayChain`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_core::{AttemptOutcome, Attempts, BoxError, Error, ErrorKind, Retried};
    ///
    /// // What a hyper-style client error looks like: a message, and the io error as source.
    /// #[derive(Debug)]
    /// struct Connect(std::io::Error);
    /// impl std::fmt::Display for Connect {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("tcp connect error")
    ///     }
    /// }
    /// impl std::error::Error for Connect {
    ///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
    ///         Some(&self.0)
    ///     }
    /// }
    ///
    /// let mut attempts = Attempts::new();
    /// let refused = ErrorKind::Network { may_have_reached_server: false };
    /// attempts.record_retry(AttemptOutcome::Error(refused), Duration::from_millis(100));
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// let err = Error::new(Retried::new(attempts, Box::new(Connect(refused))));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "network error (the request was not sent): gave up after 2 attempts: tcp connect error"
    /// );
    /// assert_eq!(
    ///     err.chain().to_string(),
    ///     "network error (the request was not sent): gave up after 2 attempts: \
    ///      tcp connect error: connection refused"
    /// );
    /// ```
    pub fn chain(&self) -> DisplayChain<'_> {
        DisplayChain::new(self)
    }
}

/// Whether `error` is one of towline's wrappers that keep a cause as `source()` and leave it
/// out of their own `Display` (so that a chain printed link by link says each thing once).
fn leaves_out_its_cause(error: &(dyn StdError + 'static)) -> bool {
    error.is::<Retried>()
        || error.is::<RetryBudgetExhausted>()
        || error.is::<DeadlineExceeded>()
        || error.is::<RateLimited>()
        || error.is::<AuthError>()
        || error.is::<CredentialsRefreshed>()
}

// `Display` tells the inner error and the causes towline's wrappers leave out (see `told`);
// `source()` is the source of the last link told, so a chain printed link by link (std's
// convention: an error whose `Display` includes its cause does not return it as its source)
// says each thing once.
impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.told().last().and_then(StdError::source)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::time::Duration;

    use http::StatusCode;

    use super::*;
    use crate::ApiFormat;
    use crate::classify::tests::Wrapper;
    use crate::{AttemptOutcome, Deadline, Elapsed, HintSource, RateLimitReason, TimeoutPhase};

    const SENT: ErrorKind = ErrorKind::Network {
        may_have_reached_server: true,
    };

    fn kind(error: impl Into<BoxError>) -> ErrorKind {
        classify(&error.into())
    }

    /// The chain printed link by link, as a reader walking `source()` sees it.
    fn links(err: &Error) -> Vec<String> {
        let mut links = vec![err.to_string()];
        let mut source = err.source();
        while let Some(e) = source {
            links.push(e.to_string());
            source = e.source();
        }
        links
    }

    /// A record of `retries` retries after 503s.
    fn retried(retries: usize) -> Attempts {
        let mut attempts = Attempts::new();
        for _ in 0..retries {
            attempts.record_retry(
                AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE),
                Duration::from_millis(100),
            );
        }
        attempts
    }

    #[test]
    fn a_retried_error_says_what_finally_happened() {
        let last = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ApiFormat::Unrecognized);
        let err = Error::new(Retried::new(retried(3), Box::new(last)));
        assert_eq!(
            err.to_string(),
            "gave up after 4 attempts: 503 Service Unavailable (unrecognized, unavailable)"
        );
        // Said once: the 503 is not a source again.
        assert!(err.source().is_none());
        assert_eq!(err.chain().to_string(), err.to_string());
    }

    #[tokio::test(start_paused = true)]
    async fn wrappers_all_the_way_down_are_told_to_the_cause() {
        let cut = Elapsed::new(Duration::from_secs(1), TimeoutPhase::Head);
        let deadline = DeadlineExceeded::new(Deadline::after(Duration::ZERO))
            .with_source(Box::new(Retried::new(retried(2), Box::new(cut))));
        let err = Error::new(deadline);
        assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
        assert_eq!(
            err.to_string(),
            "the call's deadline passed: gave up after 3 attempts: \
             response head not received within 1s"
        );
        assert!(err.source().is_none());
    }

    #[test]
    fn network_errors_say_whether_the_request_was_sent() {
        let err = Error::new(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert!(
            err.to_string()
                .starts_with("network error (the request was not sent): ")
        );
    }

    #[test]
    fn each_link_of_a_printed_chain_says_its_part_once() {
        let err = Error::new(RetryBudgetExhausted::new(Box::new(Elapsed::new(
            Duration::from_secs(2),
            TimeoutPhase::Head,
        ))));
        assert_eq!(
            links(&err),
            ["retry budget exhausted: response head not received within 2s"]
        );
        // A cause with a source of its own: the source is the next link, said once.
        let err = Error::new(Retried::new(
            retried(1),
            Box::new(Wrapper(Box::new(io::Error::from(
                io::ErrorKind::ConnectionRefused,
            )))),
        ));
        assert_eq!(
            links(&err),
            [
                "network error (the request was not sent): gave up after 2 attempts: wrapper",
                "connection refused"
            ]
        );
        assert_eq!(
            err.chain().to_string(),
            "network error (the request was not sent): gave up after 2 attempts: wrapper: \
             connection refused"
        );
    }

    #[test]
    fn accessors_reach_through_wrappers() {
        let mut api = ApiError::new(StatusCode::TOO_MANY_REQUESTS, ApiFormat::Attraqt);
        api.retry_hint = Some(RetryHint::new(
            Duration::from_secs(3),
            HintSource::RetryAfter,
        ));
        let err = Error::from(BoxError::from(RetryBudgetExhausted::new(Box::new(api))));
        assert_eq!(err.kind(), ErrorKind::RetryBudgetExhausted);
        assert_eq!(err.retry_hint().unwrap().wait(), Duration::from_secs(3));
        assert_eq!(err.api().unwrap().format, ApiFormat::Attraqt);
        assert!(err.redirected().is_none());
        assert!(err.auth_reason().is_none());

        let auth = AuthError::new(AuthReason::TwoFactorRequired);
        let err = Error::new(auth);
        assert_eq!(err.auth_reason(), Some(AuthReason::TwoFactorRequired));
        assert_eq!(
            err.to_string(),
            "authentication failed: two-factor authentication required"
        );
        // Transparent: the inner error's source, not the inner error again.
        assert!(err.source().is_none());
    }

    #[test]
    fn converting_twice_keeps_the_first_classification() {
        let err = Error::from(BoxError::from(io::Error::from(
            io::ErrorKind::ConnectionReset,
        )));
        let again = Error::from(BoxError::from(err));
        assert_eq!(again.kind(), SENT);
        assert!(again.find::<io::Error>().is_some());
        // A towline Error nested deeper is recognised too.
        let nested = Wrapper(Box::new(again));
        assert_eq!(kind(nested), SENT);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_carries_its_hint() {
        let hint = RetryHint::new(Duration::from_secs(600), HintSource::XWaitSeconds);
        let until = hint.ends_at(tokio::time::Instant::now());
        let err = Error::new(
            RateLimited::new(until, RateLimitReason::WaitTooLong).with_hint(hint.clone()),
        );
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_hint(), Some(&hint));
        assert_eq!(err.find::<RateLimited>().unwrap().until(), until);
    }
}
