//! Sorting any error into an [`ErrorKind`]: [`classify`], [`ErrorKind::of`], and the walk of a
//! chain of sources that [`find`] and the accessors of [`Error`] share.

use std::error::Error as StdError;
use std::io;

use crate::api::ApiError;
use crate::error::{BoxError, Error};
use crate::failures::{
    AuthError, BodyTooLarge, DeadlineExceeded, Elapsed, RateLimited, Redirected,
    RetryBudgetExhausted,
};
use crate::kind::ErrorKind;

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
        return Kind(error.kind());
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
    if error.is::<crate::CircuitOpen>() {
        return Kind(ErrorKind::CircuitOpen);
    }
    if error.is::<crate::BulkheadFull>() {
        return Kind(ErrorKind::BulkheadFull);
    }
    if error.is::<crate::StoreUnavailable>() {
        return Kind(ErrorKind::StoreUnavailable);
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
pub(crate) mod tests {
    use std::fmt;

    use super::*;
    use crate::{ApiFormat, AuthReason, Deadline, RateLimitReason, TimeoutPhase};
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

    /// A wrapper of another crate, unknown to towline, with its cause as source (the error
    /// tests use it too).
    #[derive(Debug)]
    pub(crate) struct Wrapper(pub(crate) BoxError);
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
    fn the_outermost_look_inside_judgement_is_kept() {
        // An io error of unknown kind wrapping a plain message: sent (it is an io error).
        let inner = io::Error::other("boom");
        let outer = Wrapper(Box::new(inner));
        assert_eq!(kind(outer), SENT);
        assert!(!SENT.certainly_not_sent());
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
}
