//! The typed error model: [`Error`], [`ErrorKind`] and [`classify`].

use std::error::Error as StdError;
use std::fmt;
use std::io;

use crate::api::ApiError;
use crate::circuit::CircuitOpen;
use crate::extensions::Attempts;
use crate::failures::{
    AuthError, AuthReason, BodyTooLarge, DeadlineExceeded, Elapsed, RateLimited, Redirected,
    Retried, RetryBudgetExhausted,
};
use crate::hint::RetryHint;

/// The error type every towline layer returns: tower's convention, so layers stack over any
/// inner service's error. The concrete errors inside are typed; [`Error::from`] sorts them out.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong, in the few outcomes a caller acts on.
///
/// ```
/// use towline_core::{BoxError, ErrorKind, classify};
///
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// assert_eq!(
///     classify(&BoxError::from(refused)),
///     ErrorKind::Network { may_have_reached_server: false }
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The transport failed.
    Network {
        /// `false` only when the request certainly never left: the connection was never
        /// established (refused, DNS, TLS handshake) or the request was dropped before being
        /// written. Only then is it safe to re-send a non-idempotent request.
        may_have_reached_server: bool,
    },
    /// A per-attempt time limit passed ([`Elapsed`], tower's or tokio's `Elapsed`, a socket
    /// timeout).
    Timeout,
    /// The whole call's deadline passed ([`DeadlineExceeded`]).
    DeadlineExceeded,
    /// The server answered with a redirect that was not followed ([`Redirected`]).
    Redirected,
    /// The server described an error in its body ([`ApiError`]; see [`Error::api`]).
    Api,
    /// The server asked for a wait the call could not honour ([`RateLimited`]).
    RateLimited,
    /// Authentication failed and could not be fixed by a refresh ([`AuthError`]).
    Auth,
    /// The retry budget stopped a retry ([`RetryBudgetExhausted`]); the last error is its source.
    RetryBudgetExhausted,
    /// A body passed a size limit ([`BodyTooLarge`], `http_body_util::LengthLimitError`).
    BodyTooLarge,
    /// A circuit breaker refused the call without sending it ([`CircuitOpen`]).
    CircuitOpen,
    /// Anything else (a bug, a user error, an unknown inner error).
    Other,
}

impl ErrorKind {
    /// Whether the request certainly never reached the server: only then is it safe to send a
    /// non-idempotent request again. Every other kind (a timeout, an API error, an unknown
    /// error) answers `false`, because the server may have processed the request.
    ///
    /// ```
    /// use towline_core::ErrorKind;
    ///
    /// assert!(ErrorKind::Network { may_have_reached_server: false }.certainly_not_sent());
    /// assert!(!ErrorKind::Network { may_have_reached_server: true }.certainly_not_sent());
    /// assert!(!ErrorKind::Timeout.certainly_not_sent());
    /// assert!(!ErrorKind::Other.certainly_not_sent());
    /// ```
    pub fn certainly_not_sent(self) -> bool {
        matches!(
            self,
            ErrorKind::Network {
                may_have_reached_server: false
            } | ErrorKind::CircuitOpen
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Network {
                may_have_reached_server: true,
            } => "network error (the request may have reached the server)",
            ErrorKind::Network {
                may_have_reached_server: false,
            } => "network error (the request was not sent)",
            ErrorKind::Timeout => "timeout",
            ErrorKind::DeadlineExceeded => "deadline exceeded",
            ErrorKind::Redirected => "redirected",
            ErrorKind::Api => "api error",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Auth => "auth error",
            ErrorKind::RetryBudgetExhausted => "retry budget exhausted",
            ErrorKind::BodyTooLarge => "body too large",
            ErrorKind::CircuitOpen => "circuit open",
            ErrorKind::Other => "other error",
        })
    }
}

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

    /// The record of the call's attempts, when the retry layer retried it.
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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            // The one judgement the inner error cannot state itself: was the request sent?
            ErrorKind::Network { .. } => write!(f, "{}: {}", self.kind, self.inner),
            _ => fmt::Display::fmt(&self.inner, f),
        }
    }
}

// `Error` is a classified view of the inner error: it displays the inner error (prefixed by
// the kind for network errors), and its source is the inner error's source, so a chain printed link by link says each thing
// once.
impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source()
    }
}

/// Sorts an error into an [`ErrorKind`] by walking its chain of sources, outermost first.
///
/// For an error that is not boxed, use [`ErrorKind::of`].
///
/// The first error it recognises decides: towline's own typed errors (so a
/// [`RetryBudgetExhausted`] wrapping a timeout is `RetryBudgetExhausted`), then the errors of
/// the stack below:
///
/// | error | kind |
/// |---|---|
/// | hyper-util legacy client, `is_connect()` | `Network { may_have_reached_server: false }` |
/// | hyper-util legacy client, no source (its own request checks) | `Other` |
/// | hyper, `is_canceled()` (handed back before it was written) | `Network { may_have_reached_server: false }` |
/// | hyper, any other non-user error (reset, closed, incomplete, parse, HTTP/2 ping timeout) | `Network { may_have_reached_server: true }` |
/// | hyper, a user error: a request body that failed mid-write | its source's kind, else `Network { may_have_reached_server: true }` |
/// | `std::io`: refused, address not available | `Network { may_have_reached_server: false }` |
/// | `std::io`: `TimedOut` | `Timeout` |
/// | `std::io`: reset, aborted, broken pipe, EOF, unreachable, other | `Network { may_have_reached_server: true }` |
/// | `tower::timeout::error::Elapsed`, `tokio::time::error::Elapsed` | `Timeout` |
///
/// A hyper-util error that is not a connect error, and a hyper user error, are looked through
/// to their source (a body error, say), keeping their own judgement when the source says
/// nothing more; an `std::io::Error` is looked through to the error it wraps. Nothing
/// recognised: `Other`, for which [`ErrorKind::certainly_not_sent`] is `false`.
///
/// ```
/// use towline_core::{BoxError, ErrorKind, classify};
///
/// let err: BoxError = Box::new(tower::timeout::error::Elapsed::new());
/// assert_eq!(classify(&err), ErrorKind::Timeout);
/// assert_eq!(classify(&BoxError::from("mystery")), ErrorKind::Other);
/// ```
pub fn classify(error: &BoxError) -> ErrorKind {
    ErrorKind::of(&**error)
}

impl ErrorKind {
    /// [`classify`] for an error that is not boxed.
    ///
    /// ```
    /// use towline_core::ErrorKind;
    ///
    /// let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
    /// assert_eq!(ErrorKind::of(&reset), ErrorKind::Network { may_have_reached_server: true });
    /// ```
    pub fn of(error: &(dyn StdError + 'static)) -> ErrorKind {
        classify_chain(error)
    }
}

fn classify_chain(error: &(dyn StdError + 'static)) -> ErrorKind {
    // A kind to fall back on when an error says "transport failed" but its sources might say
    // something more precise (a hyper-util error wrapping a user's body error, say).
    // The outermost such judgement wins: it saw the most (a hyper-util error knows whether
    // the connection was ever made; the io error inside it does not).
    let mut fallback = None;
    for error in chain(error) {
        match recognise(error) {
            Recognised::Kind(kind) => return kind,
            Recognised::LookInside(kind) => {
                fallback.get_or_insert(kind);
            }
            Recognised::Unknown => {}
        }
    }
    fallback.unwrap_or(ErrorKind::Other)
}

enum Recognised {
    /// This error decides the kind.
    Kind(ErrorKind),
    /// The kind, unless a source says more.
    LookInside(ErrorKind),
    Unknown,
}

fn recognise(error: &(dyn StdError + 'static)) -> Recognised {
    use Recognised::{Kind, LookInside, Unknown};
    const SENT: ErrorKind = ErrorKind::Network {
        may_have_reached_server: true,
    };
    const NOT_SENT: ErrorKind = ErrorKind::Network {
        may_have_reached_server: false,
    };

    if let Some(error) = error.downcast_ref::<Error>() {
        return Kind(error.kind);
    }
    if error.is::<ApiError>() {
        return Kind(ErrorKind::Api);
    }
    if error.is::<Redirected>() {
        return Kind(ErrorKind::Redirected);
    }
    if error.is::<Elapsed>()
        || error.is::<tower::timeout::error::Elapsed>()
        || error.is::<tokio::time::error::Elapsed>()
    {
        return Kind(ErrorKind::Timeout);
    }
    if error.is::<DeadlineExceeded>() {
        return Kind(ErrorKind::DeadlineExceeded);
    }
    if error.is::<RateLimited>() {
        return Kind(ErrorKind::RateLimited);
    }
    if error.is::<AuthError>() {
        return Kind(ErrorKind::Auth);
    }
    if error.is::<RetryBudgetExhausted>() {
        return Kind(ErrorKind::RetryBudgetExhausted);
    }
    if error.is::<BodyTooLarge>() || error.is::<http_body_util::LengthLimitError>() {
        return Kind(ErrorKind::BodyTooLarge);
    }
    if error.is::<CircuitOpen>() {
        return Kind(ErrorKind::CircuitOpen);
    }
    #[cfg(feature = "hyper-util")]
    if let Some(error) = error.downcast_ref::<hyper_util::client::legacy::Error>() {
        return if error.is_connect() {
            Kind(NOT_SENT)
        } else if error.source().is_some() {
            LookInside(SENT)
        } else {
            // hyper-util's own request checks (absolute URI required, unsupported version or
            // method) carry no source and fail before anything is sent: a bug, not the network.
            Kind(ErrorKind::Other)
        };
    }
    if let Some(error) = error.downcast_ref::<hyper::Error>() {
        return if error.is_canceled() {
            // hyper hands a request back canceled only when it was never written.
            Kind(NOT_SENT)
        } else if error.is_body_write_aborted() {
            Kind(SENT)
        } else if error.is_user() {
            // A request body that failed mid-write (the head is out): look at why.
            if error.source().is_some() {
                LookInside(SENT)
            } else {
                Kind(ErrorKind::Other)
            }
        } else {
            // Closed, reset, incomplete, unparsable response, or (HTTP/2) a keep-alive ping
            // that timed out: the connection died with the request possibly on it.
            Kind(SENT)
        };
    }
    if let Some(error) = error.downcast_ref::<io::Error>() {
        return match error.kind() {
            // Only possible while connecting. (Unreachable-host kinds are not: Linux reports
            // them on established connections too.)
            io::ErrorKind::ConnectionRefused | io::ErrorKind::AddrNotAvailable => Kind(NOT_SENT),
            io::ErrorKind::TimedOut => Kind(ErrorKind::Timeout),
            // Unknown kinds may wrap one of ours (a body error surfaced through a reader).
            _ if error.get_ref().is_some() => LookInside(SENT),
            _ => Kind(SENT),
        };
    }
    Unknown
}

/// The first error of type `E` in `error`'s chain of sources, `error` itself first, for an
/// error that is not (yet) a [`Error`]. `std::io::Error`s are looked into.
///
/// ```
/// use towline_core::{BoxError, RetryBudgetExhausted, find};
///
/// let err = RetryBudgetExhausted::new(Box::new(std::io::Error::other("reset")));
/// assert!(find::<std::io::Error>(&err).is_some());
/// ```
pub fn find<'a, E: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    chain(error).find_map(|e| e.downcast_ref::<E>())
}

/// `error` and its sources, outermost first. `io::Error::source` skips the error it wraps
/// (it returns the wrapped error's source), so this steps into `get_ref` instead.
pub(crate) fn chain<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    // Bounded, in case a buggy error's chain is cyclic.
    const MAX_DEPTH: usize = 64;
    std::iter::successors(Some(error), |&error| {
        match error.downcast_ref::<io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as _),
            None => error.source(),
        }
    })
    .take(MAX_DEPTH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApiFormat, Deadline, HintSource, RateLimitReason, TimeoutPhase};
    use http::StatusCode;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn kind(error: impl Into<BoxError>) -> ErrorKind {
        classify(&error.into())
    }

    const SENT: ErrorKind = ErrorKind::Network {
        may_have_reached_server: true,
    };
    const NOT_SENT: ErrorKind = ErrorKind::Network {
        may_have_reached_server: false,
    };

    #[derive(Debug)]
    struct Wrapper(BoxError);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapper")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn io_errors_by_kind() {
        use io::ErrorKind as K;
        for k in [K::ConnectionRefused, K::AddrNotAvailable] {
            assert_eq!(kind(io::Error::from(k)), NOT_SENT, "{k:?}");
        }
        for k in [
            K::ConnectionReset,
            K::ConnectionAborted,
            K::BrokenPipe,
            K::UnexpectedEof,
            K::HostUnreachable,
            K::NetworkUnreachable,
            K::Other,
        ] {
            assert_eq!(kind(io::Error::from(k)), SENT, "{k:?}");
        }
        assert_eq!(kind(io::Error::from(K::TimedOut)), ErrorKind::Timeout);
    }

    #[test]
    fn io_errors_are_looked_through_to_what_they_wrap() {
        let wrapped = io::Error::other(BodyTooLarge::new(10));
        assert_eq!(kind(wrapped), ErrorKind::BodyTooLarge);
        let wrapped = io::Error::other("plain message");
        assert_eq!(kind(wrapped), SENT);
    }

    #[test]
    fn timeouts_of_tower_tokio_and_towline() {
        assert_eq!(
            kind(tower::timeout::error::Elapsed::new()),
            ErrorKind::Timeout
        );
        assert_eq!(
            kind(Elapsed::new(Duration::from_secs(1), TimeoutPhase::Body)),
            ErrorKind::Timeout
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_elapsed_is_a_timeout() {
        let elapsed = tokio::time::timeout(Duration::from_millis(1), std::future::pending::<()>())
            .await
            .unwrap_err();
        assert_eq!(kind(elapsed), ErrorKind::Timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn each_towline_error_has_its_kind() {
        let until = tokio::time::Instant::now();
        assert_eq!(
            kind(Redirected::new(StatusCode::FOUND, None)),
            ErrorKind::Redirected
        );
        assert_eq!(
            kind(DeadlineExceeded::new(Deadline::at(until))),
            ErrorKind::DeadlineExceeded
        );
        assert_eq!(
            kind(RateLimited::new(until, RateLimitReason::PastDeadline)),
            ErrorKind::RateLimited
        );
        assert_eq!(kind(AuthError::new(AuthReason::Expired)), ErrorKind::Auth);
        assert_eq!(
            kind(RetryBudgetExhausted::new("x".into())),
            ErrorKind::RetryBudgetExhausted
        );
        assert_eq!(kind(BodyTooLarge::new(1)), ErrorKind::BodyTooLarge);
        assert_eq!(
            kind(ApiError::new(
                StatusCode::NOT_FOUND,
                ApiFormat::Unrecognized
            )),
            ErrorKind::Api
        );
    }

    #[test]
    fn length_limit_error_is_body_too_large() {
        use http_body_util::{BodyExt, Full, Limited};
        let body = Limited::new(Full::new(bytes::Bytes::from_static(b"0123456789")), 4);
        let err = futures_lite_block_on(body.collect()).unwrap_err();
        assert_eq!(classify(&err), ErrorKind::BodyTooLarge);
    }

    /// Polls a future that is ready without any runtime (a `Full` body is).
    fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(output) => output,
            std::task::Poll::Pending => unreachable!("a full body is always ready"),
        }
    }

    #[test]
    fn the_outermost_recognised_error_decides() {
        let inner = Elapsed::new(Duration::from_secs(1), TimeoutPhase::Head);
        let err = RetryBudgetExhausted::new(Box::new(inner));
        assert_eq!(kind(err), ErrorKind::RetryBudgetExhausted);

        let err = Wrapper(Box::new(Wrapper(Box::new(io::Error::from(
            io::ErrorKind::ConnectionRefused,
        )))));
        assert_eq!(kind(err), NOT_SENT);
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
    fn the_outermost_look_inside_judgement_is_kept() {
        // An io error of unknown kind wrapping a plain message: sent (it is an io error).
        let inner = io::Error::other("boom");
        let outer = Wrapper(Box::new(inner));
        assert_eq!(kind(outer), SENT);
        assert!(!SENT.certainly_not_sent());
    }

    #[test]
    fn each_link_of_a_printed_chain_says_its_part_once() {
        let err = Error::new(RetryBudgetExhausted::new(Box::new(Elapsed::new(
            Duration::from_secs(2),
            TimeoutPhase::Head,
        ))));
        let mut links = vec![err.to_string()];
        let mut source = err.source();
        while let Some(e) = source {
            links.push(e.to_string());
            source = e.source();
        }
        assert_eq!(
            links,
            [
                "retry budget exhausted",
                "response head not received within 2s"
            ]
        );
    }

    #[test]
    fn unknown_errors_are_other() {
        assert_eq!(kind("who knows"), ErrorKind::Other);
        assert_eq!(kind(Wrapper("nested mystery".into())), ErrorKind::Other);
    }

    /// An error whose `source` is itself (a buggy `Error` impl), counting how often it is asked.
    #[derive(Debug, Default)]
    struct Cyclic {
        asked: AtomicUsize,
    }

    impl fmt::Display for Cyclic {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("cyclic")
        }
    }

    impl StdError for Cyclic {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            let asked = self.asked.fetch_add(1, Ordering::Relaxed);
            // Fail instead of hanging when a walk has no bound.
            assert!(asked < 10_000, "the walk of a cyclic chain did not stop");
            Some(self)
        }
    }

    #[test]
    fn a_cyclic_chain_is_walked_at_most_64_links() {
        let err = Cyclic::default();
        assert_eq!(ErrorKind::of(&err), ErrorKind::Other);
        let asked = err.asked.load(Ordering::Relaxed);
        assert!(asked <= 64, "asked for {asked} sources");
        assert!(find::<io::Error>(&err).is_none());
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
