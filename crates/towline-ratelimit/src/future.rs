//! [`ResponseFuture`]: a call sent at once, or held at its gate until it may go.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{HeaderMap, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tokio::time::{Sleep, sleep_until};
use tower::Service;
use towline_core::{ApiError, BoxError, Deadline, HintReader, RetryHint, marks_rate_limit};

use crate::admit::{Admit, Admitted, SlotGuard};
use crate::config::Config;
use crate::key::Key;
use crate::store::StoreFuture;
use crate::time::after;

pin_project! {
    /// The response future of [`RateLimit`](crate::RateLimit).
    pub struct ResponseFuture<S, B, R>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future, S, B, R>,
        config: Arc<Config>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateReplace]
    enum State<F, S, B, R> {
        // A request with no key: nothing to gate, nothing to close.
        Passing {
            #[pin]
            future: F,
        },
        // Sent; its response may close the gate of `key`.
        Calling {
            #[pin]
            future: F,
            key: Key,
        },
        // The response is in; a remote store is still closing the gate it asked for.
        Closing {
            close: StoreFuture<()>,
            response: Result<Response<R>, BoxError>,
        },
        // Held at a gate or for a quota slot. Boxed: only held requests pay for it, and the
        // future stays small on the fast path.
        Held {
            held: Box<Held<S, B>>,
        },
        // Refused before it was sent.
        Refused {
            error: BoxError,
        },
        Done,
    }
}

/// A request held at its gate, with the service clone that will send it.
pub(crate) struct Held<S, B> {
    service: S,
    request: Request<B>,
    key: Key,
    deadline: Option<Deadline>,
    phase: Phase,
}

pub(crate) enum Phase {
    /// Looking up the gate and the quota (a remote store, or looking again after a wait).
    Admitting(Admit),
    Sleeping {
        sleep: Pin<Box<Sleep>>,
        slot: Option<SlotGuard>,
    },
    /// Free to go once the service clone is ready.
    Readying { slot: Option<SlotGuard> },
}

impl<S, B> Held<S, B> {
    /// `request` held, at `phase`, with the `service` clone that will send it.
    pub(crate) fn new(
        service: S,
        request: Request<B>,
        key: Key,
        deadline: Option<Deadline>,
        phase: Phase,
    ) -> Self {
        Held {
            service,
            request,
            key,
            deadline,
            phase,
        }
    }

    /// Waits until the request may go and the service is ready, or why it may not.
    fn poll_go(&mut self, cx: &mut Context<'_>, config: &Config) -> Poll<Result<(), BoxError>>
    where
        S: Service<Request<B>>,
        S::Error: Into<BoxError>,
    {
        loop {
            match &mut self.phase {
                Phase::Admitting(admit) => {
                    let admitted = ready!(admit.poll(cx, config, &self.key))?;
                    self.phase = Phase::after(admitted);
                }
                Phase::Sleeping { sleep, slot } => {
                    ready!(sleep.as_mut().poll(cx));
                    // The gate may have closed again meanwhile (another 429): look again.
                    let admit = Admit::new(config, &self.key, self.deadline, slot.take());
                    self.phase = Phase::Admitting(admit);
                }
                Phase::Readying { .. } => {
                    return self.service.poll_ready(cx).map_err(Into::into);
                }
            }
        }
    }

    /// Sends the request, once [`poll_go`](Self::poll_go) said so.
    fn send(self) -> (S::Future, Key)
    where
        S: Service<Request<B>>,
    {
        let Held {
            mut service,
            request,
            key,
            phase,
            ..
        } = self;
        if let Phase::Readying { slot: Some(slot) } = phase {
            slot.keep();
        }
        (service.call(request), key)
    }
}

impl Phase {
    /// Waiting for the store's answers.
    pub(crate) fn admitting(admit: Admit) -> Self {
        Phase::Admitting(admit)
    }

    /// Admitted: waiting out `admitted.wait`, or ready to go.
    pub(crate) fn after(admitted: Admitted) -> Self {
        let slot = admitted.slot;
        if admitted.wait.is_zero() {
            return Phase::Readying { slot };
        }
        tracing::event!(
            name: "towline.gate.wait",
            target: "towline::ratelimit",
            tracing::Level::INFO,
            towline.gate.reason = if admitted.gate_closed { "closed" } else { "quota" },
            towline.gate.wait_ms = i64::try_from(admitted.wait.as_millis()).unwrap_or(i64::MAX),
            "held at the rate-limit gate"
        );
        let sleep = Box::pin(sleep_until(after(admitted.at, admitted.wait)));
        Phase::Sleeping { sleep, slot }
    }
}

impl<S, B, R> ResponseFuture<S, B, R>
where
    S: Service<Request<B>>,
{
    fn new(state: State<S::Future, S, B, R>, config: Arc<Config>) -> Self {
        ResponseFuture { state, config }
    }

    pub(crate) fn passing(future: S::Future, config: Arc<Config>) -> Self {
        Self::new(State::Passing { future }, config)
    }

    pub(crate) fn calling(future: S::Future, key: Key, config: Arc<Config>) -> Self {
        Self::new(State::Calling { future, key }, config)
    }

    pub(crate) fn held(held: Held<S, B>, config: Arc<Config>) -> Self {
        let held = Box::new(held);
        Self::new(State::Held { held }, config)
    }

    pub(crate) fn refused(error: BoxError, config: Arc<Config>) -> Self {
        Self::new(State::Refused { error }, config)
    }
}

impl<S, B, R> fmt::Debug for ResponseFuture<S, B, R>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Passing { .. } => "passing",
            State::Calling { .. } => "calling",
            State::Closing { .. } => "closing",
            State::Held { .. } => "held",
            State::Refused { .. } => "refused",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<S, B, R> Future for ResponseFuture<S, B, R>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<R>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Passing { future } => {
                    let result = ready!(future.poll(cx)).map_err(Into::into);
                    this.state.set(State::Done);
                    return Poll::Ready(result);
                }
                StateProj::Calling { future, key } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into);
                    let Some(close) = close_on_hint(this.config, key, &response) else {
                        this.state.set(State::Done);
                        return Poll::Ready(response);
                    };
                    match close.now() {
                        Ok(closed) => {
                            this.state.set(State::Done);
                            log_close_error(closed);
                            return Poll::Ready(response);
                        }
                        Err(close) => this.state.set(State::Closing { close, response }),
                    }
                }
                StateProj::Closing { close, .. } => {
                    log_close_error(ready!(Pin::new(close).poll(cx)));
                    let StateReplace::Closing { response, .. } =
                        this.state.as_mut().project_replace(State::Done)
                    else {
                        unreachable!("in the closing state")
                    };
                    return Poll::Ready(response);
                }
                StateProj::Held { held } => {
                    if let Err(error) = ready!(held.poll_go(cx, this.config)) {
                        // Dropping the held request gives back its quota slot, if it had one.
                        this.state.set(State::Done);
                        return Poll::Ready(Err(error));
                    }
                    let StateReplace::Held { held } =
                        this.state.as_mut().project_replace(State::Done)
                    else {
                        unreachable!("in the held state")
                    };
                    let (future, key) = (*held).send();
                    this.state.set(State::Calling { future, key });
                }
                StateProj::Refused { .. } => {
                    let StateReplace::Refused { error } =
                        this.state.as_mut().project_replace(State::Done)
                    else {
                        unreachable!("in the refused state")
                    };
                    return Poll::Ready(Err(error));
                }
                StateProj::Done => panic!("rate-limit response future polled after completion"),
            }
        }
    }
}

/// Closes the gate of `key` if the response asked to wait: for the hinted wait, at most
/// `max_close`.
fn close_on_hint<T>(
    config: &Config,
    key: &Key,
    response: &Result<Response<T>, BoxError>,
) -> Option<StoreFuture<()>> {
    let hint = wait_hint(&config.hints, response)?;
    let wait = hint.wait().min(config.max_close);
    if wait.is_zero() {
        return None;
    }
    if wait > config.max_wait {
        // Every call to this key fails at once until the gate opens: worth an operator's eye.
        // The key is left out: it may be a secret.
        tracing::warn!(
            close_ms = wait.as_millis() as u64,
            max_wait_ms = config.max_wait.as_millis() as u64,
            requested_ms = hint.requested().as_millis() as u64,
            source = %hint.source(),
            "rate-limit gate closed for longer than callers may wait"
        );
    } else {
        tracing::debug!(
            wait_ms = wait.as_millis() as u64,
            source = %hint.source(),
            "rate-limit gate closed"
        );
    }
    Some(config.store.close(key.as_str(), wait))
}

/// A store that failed to close a gate does not fail the call: the response is still the
/// server's, and the next 429 will try again.
fn log_close_error(closed: Result<(), BoxError>) {
    if let Err(error) = closed {
        tracing::warn!(%error, "rate-limit store failed to close a gate");
    }
}

/// The wait a response that asks for one asked for: a 429 or 503, or a response marked as a
/// rate limit (by its headers, [`marks_rate_limit`], or by its decoded body's kind, see
/// [`ApiError::asks_to_wait`]: GitHub's 403, Google's legacy 403 `rateLimitExceeded`, Stripe's
/// 400 `rate_limit`); from its headers or its decoded body.
fn wait_hint<T>(hints: &HintReader, result: &Result<Response<T>, BoxError>) -> Option<RetryHint> {
    match result {
        Ok(response) => asks_to_wait(response.status(), response.headers(), hints),
        Err(error) => {
            let api = towline_core::find::<ApiError>(&**error)?;
            if !api.asks_to_wait() {
                return None;
            }
            api.retry_hint.clone()
        }
    }
}

fn asks_to_wait(status: StatusCode, headers: &HeaderMap, hints: &HintReader) -> Option<RetryHint> {
    if !(matches!(status.as_u16(), 429 | 503) || marks_rate_limit(status, headers)) {
        return None;
    }
    hints.read(headers)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::{HeaderValue, Response, StatusCode};
    use towline_core::{
        ApiError, ApiErrorKind, ApiFormat, BoxError, HintReader, HintSource, RetryHint,
    };

    use super::wait_hint;

    fn decoded(status: StatusCode, kind: ApiErrorKind) -> Result<Response<()>, BoxError> {
        let mut err = ApiError::new(status, ApiFormat::GitHub);
        err.kind = kind;
        err.retry_hint = Some(RetryHint::new(
            Duration::from_secs(60),
            HintSource::RetryAfter,
        ));
        Err(Box::new(err))
    }

    fn response(
        status: StatusCode,
        pairs: &[(&'static str, &'static str)],
    ) -> Result<Response<()>, BoxError> {
        let mut response = Response::new(());
        *response.status_mut() = status;
        for (name, value) in pairs {
            response
                .headers_mut()
                .insert(*name, HeaderValue::from_static(value));
        }
        Ok(response)
    }

    fn wait(result: &Result<Response<()>, BoxError>) -> Option<Duration> {
        wait_hint(&HintReader::new(), result).map(|hint| hint.wait())
    }

    #[test]
    fn a_decoded_rate_limit_of_any_status_closes_the_gate() {
        for status in [StatusCode::FORBIDDEN, StatusCode::BAD_REQUEST] {
            let result = decoded(status, ApiErrorKind::RateLimited);
            assert_eq!(wait(&result), Some(Duration::from_secs(60)), "{status}");
        }
    }

    #[test]
    fn a_403_response_its_headers_mark_as_a_rate_limit_closes_the_gate() {
        let result = response(StatusCode::FORBIDDEN, &[("retry-after", "60")]);
        assert_eq!(wait(&result), Some(Duration::from_secs(60)));
        let result = response(
            StatusCode::FORBIDDEN,
            &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "45")],
        );
        assert_eq!(wait(&result), Some(Duration::from_secs(45)));
    }

    #[test]
    fn a_plain_403_or_a_401_with_a_used_up_quota_leaves_the_gate_open() {
        assert_eq!(
            wait(&decoded(StatusCode::FORBIDDEN, ApiErrorKind::Forbidden)),
            None
        );
        let result = response(
            StatusCode::UNAUTHORIZED,
            &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "45")],
        );
        assert_eq!(wait(&result), None);
        let result = response(
            StatusCode::FORBIDDEN,
            &[("x-ratelimit-remaining", "12"), ("x-ratelimit-reset", "45")],
        );
        assert_eq!(wait(&result), None);
    }
}
