//! The response future of [`TokenRefresh`](crate::TokenRefresh).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::Service;
use towline_core::{
    ApiError, ApiErrorKind, AttemptOutcome, Attempts, AuthError, AuthReason, BoxError,
    CredentialsRefreshed, Deadline, DeadlineExceeded, Replayable, Resend, Retried, replay_request,
};

use crate::cache::{Cache, Current};

/// Waiting for the cache's token: the fetch itself belongs to the cache, so dropping this
/// only stops this call from waiting.
type TokenWait = Pin<Box<dyn Future<Output = Result<Arc<Current>, BoxError>> + Send>>;

/// Waits for a token newer than generation `stale` (any usable one for `None`), no longer
/// than the call's `deadline`.
fn wait_for_token(cache: &Arc<Cache>, stale: Option<u64>, deadline: Option<Deadline>) -> TokenWait {
    let token = cache.clone().refresh(stale);
    match deadline {
        None => Box::pin(token),
        Some(deadline) => Box::pin(async move {
            match tokio::time::timeout_at(deadline.instant(), token).await {
                Ok(token) => token,
                Err(_) => Err(Box::new(DeadlineExceeded::new(deadline)) as BoxError),
            }
        }),
    }
}

/// A request to send once the service is ready, with the service to send it through.
struct Pending<S, B> {
    service: S,
    request: Request<B>,
    /// Whether this is the call's first send through this layer (not its own resend).
    first: bool,
    /// On this layer's own resend, what the first send returned (the 401), to record.
    resent_after: Option<AttemptOutcome>,
}

/// Who sends the attempt in flight again if a refresh is needed.
enum Replay<S, B> {
    /// This layer, with its own copy (when no layer above promised to resend). Boxed: inline,
    /// the copy would sit beside the inner future in `Calling`, and every future above this
    /// one would be a request and a service larger.
    Own(Box<Pending<S, B>>),
    /// The layer above that promised it ([`Resend::OnRefresh`]).
    ByCaller,
    /// Nobody: this attempt already follows a refresh, or its body cannot be sent again.
    Spent,
}

/// What follows a refresh after a 401.
enum AfterRefresh<S, B> {
    /// Send our own copy with the new token.
    Send(Box<Pending<S, B>>),
    /// End the attempt with [`CredentialsRefreshed`]; the layer above sends it again. The
    /// error is what the call ends with if it does not.
    AskCaller(BoxError),
}

pin_project! {
    /// The response future of [`TokenRefresh`](crate::TokenRefresh).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future, S, B>,
        cache: Arc<Cache>,
        // What the layer above promised about resending this attempt.
        resend: Resend,
        // How long this call may wait for a token.
        deadline: Option<Deadline>,
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("resend", &self.resend)
            .finish_non_exhaustive()
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, B> {
        // No usable token: waiting for the cache's, then sending.
        Fetching {
            token: TokenWait,
            pending: Option<Pending<S, B>>,
        },
        // Waiting for the service to be ready, then sending with `token`.
        Readying {
            token: Option<Arc<Current>>,
            pending: Option<Pending<S, B>>,
        },
        // An attempt is in flight with the token of `generation`; `resent_after` is set when
        // it is this layer's own resend, so that the outcome records both requests.
        Calling {
            #[pin]
            future: F,
            generation: u64,
            replay: Option<Replay<S, B>>,
            resent_after: Option<AttemptOutcome>,
        },
        // A 401 for the attempt's token: waiting for a newer one.
        Refreshing {
            token: TokenWait,
            then: Option<AfterRefresh<S, B>>,
        },
        Done,
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
    B: Replayable,
{
    /// Sends at once under a layer above that resends the attempt (or whose resend this is):
    /// no copy kept here.
    pub(crate) fn send_with(
        service: &mut S,
        mut request: Request<B>,
        header: HeaderValue,
        generation: u64,
        resend: Resend,
        cache: Arc<Cache>,
    ) -> Self {
        request
            .headers_mut()
            .insert(cache.header_name.clone(), header);
        ResponseFuture {
            state: State::Calling {
                future: service.call(request),
                generation,
                replay: Some(match resend {
                    Resend::OnRefresh => Replay::ByCaller,
                    _ => Replay::Spent,
                }),
                resent_after: None,
            },
            cache,
            resend,
            deadline: None,
        }
    }

    /// Sends at once, keeping a copy to send again after a refresh.
    pub(crate) fn send_keeping_copy(
        service: S,
        request: Request<B>,
        header: HeaderValue,
        generation: u64,
        cache: Arc<Cache>,
    ) -> Self {
        let pending = Pending {
            service,
            request,
            first: true,
            resent_after: None,
        };
        ResponseFuture {
            state: send(&cache, Resend::No, pending, header, generation),
            cache,
            resend: Resend::No,
            deadline: None,
        }
    }

    /// Waits for the cache's token, then sends.
    pub(crate) fn fetch_first(
        service: S,
        request: Request<B>,
        resend: Resend,
        deadline: Option<Deadline>,
        cache: Arc<Cache>,
    ) -> Self {
        ResponseFuture {
            state: State::Fetching {
                token: wait_for_token(&cache, None, deadline),
                pending: Some(Pending {
                    service,
                    request,
                    first: true,
                    resent_after: None,
                }),
            },
            cache,
            resend,
            deadline,
        }
    }
}

/// Sends `pending` with the token `header` of `generation`, deciding who sends it again after
/// a refresh: the layer above if it promised to, this layer with a copy on a first send,
/// nobody after a refresh.
fn send<S, B>(
    cache: &Cache,
    resend: Resend,
    pending: Pending<S, B>,
    header: HeaderValue,
    generation: u64,
) -> State<S::Future, S, B>
where
    S: Service<Request<B>>,
    B: Replayable,
{
    let Pending {
        mut service,
        mut request,
        first,
        resent_after,
    } = pending;
    let copy = match (first, resend) {
        (true, Resend::No) => replay_request(&request),
        _ => None,
    };
    request
        .headers_mut()
        .insert(cache.header_name.clone(), header);
    State::Calling {
        future: service.call(request),
        generation,
        replay: Some(match (first, resend, copy) {
            (true, Resend::OnRefresh, _) => Replay::ByCaller,
            (_, _, Some(copy)) => Replay::Own(Box::new(Pending {
                service,
                request: copy,
                first: false,
                resent_after: None,
            })),
            _ => Replay::Spent,
        }),
        resent_after,
    }
}

/// What a response or error says about the token.
enum Verdict {
    /// Not an auth failure: return it.
    Pass,
    /// Refresh and send again (once).
    Refresh,
    /// An auth failure no refresh fixes.
    Fail(AuthReason),
}

fn verdict<T>(result: &Result<Response<T>, BoxError>) -> Verdict {
    let reason = match result {
        Ok(response) if response.status() == StatusCode::UNAUTHORIZED => AuthReason::Unknown,
        Ok(_) => return Verdict::Pass,
        Err(error) => match towline_core::find::<ApiError>(&**error) {
            Some(api) => match api.auth_reason() {
                Some(reason)
                    if api.status == StatusCode::UNAUTHORIZED
                        || matches!(api.kind, ApiErrorKind::Auth(_)) =>
                {
                    reason
                }
                _ => return Verdict::Pass,
            },
            None => return Verdict::Pass,
        },
    };
    // A 401 that names no reason is most often an expired token (Attraqt: "refresh the access
    // token and retry"); one refresh tells.
    match reason {
        AuthReason::Expired | AuthReason::InvalidToken | AuthReason::Unknown => Verdict::Refresh,
        reason => Verdict::Fail(reason),
    }
}

/// The outcome of the call, with the record of both requests when this layer sent it again
/// after a refresh (`resent_after` is what the first returned): an [`Attempts`] extension on
/// the response, or [`Retried`] around the error. Only a resend pays for the record.
fn recorded<T>(
    result: Result<Response<T>, BoxError>,
    resent_after: Option<AttemptOutcome>,
) -> Result<Response<T>, BoxError> {
    let Some(first) = resent_after else {
        return result;
    };
    let mut attempts = Attempts::new();
    attempts.record_replay(first);
    match result {
        Ok(mut response) => {
            response.extensions_mut().insert(attempts);
            Ok(response)
        }
        Err(error) => Err(Box::new(Retried::new(attempts, error))),
    }
}

/// The typed error ending a call whose credentials were refused.
fn auth_error<T>(reason: AuthReason, result: Result<Response<T>, BoxError>) -> BoxError {
    let cause: BoxError = match result {
        Ok(response) => response.status().to_string().into(),
        Err(error) => error,
    };
    Box::new(AuthError::new(reason).with_source(cause))
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    B: Replayable,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Fetching { token, pending } => {
                    let current = match ready!(token.as_mut().poll(cx)) {
                        Ok(current) => current,
                        Err(error) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(error));
                        }
                    };
                    let pending = pending.take();
                    this.state.set(State::Readying {
                        token: Some(current),
                        pending,
                    });
                }
                StateProj::Readying { token, pending } => {
                    let ready = {
                        let pending = pending
                            .as_mut()
                            .expect("auth future polled after completion");
                        ready!(pending.service.poll_ready(cx))
                    };
                    if let Err(error) = ready {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(error.into()));
                    }
                    let (Some(current), Some(pending)) = (token.take(), pending.take()) else {
                        panic!("auth future polled after completion");
                    };
                    let next = send(
                        this.cache,
                        *this.resend,
                        pending,
                        current.header.clone(),
                        current.generation,
                    );
                    this.state.set(next);
                }
                StateProj::Calling {
                    future,
                    generation,
                    replay,
                    resent_after,
                } => {
                    let result = ready!(future.poll(cx)).map_err(Into::into);
                    let generation = *generation;
                    let resent_after = *resent_after;
                    let replay = match verdict(&result) {
                        Verdict::Pass => {
                            this.state.set(State::Done);
                            return Poll::Ready(recorded(result, resent_after));
                        }
                        Verdict::Fail(reason) => {
                            this.state.set(State::Done);
                            let error = auth_error(reason, result);
                            return Poll::Ready(recorded(Err(error), resent_after));
                        }
                        Verdict::Refresh => {
                            replay.take().expect("auth future polled after completion")
                        }
                    };
                    let then = match replay {
                        // A 401 right after a refresh (or a body that cannot be sent again):
                        // stop, never loop.
                        Replay::Spent => {
                            this.state.set(State::Done);
                            let error = auth_error(AuthReason::InvalidToken, result);
                            return Poll::Ready(recorded(Err(error), resent_after));
                        }
                        Replay::ByCaller => {
                            AfterRefresh::AskCaller(auth_error(AuthReason::InvalidToken, result))
                        }
                        Replay::Own(mut pending) => {
                            pending.resent_after = Some(match &result {
                                Ok(response) => AttemptOutcome::Status(response.status()),
                                Err(error) => AttemptOutcome::of_error(&**error),
                            });
                            AfterRefresh::Send(pending)
                        }
                    };
                    tracing::debug!(generation, "401: refreshing the token");
                    this.state.set(State::Refreshing {
                        token: wait_for_token(this.cache, Some(generation), *this.deadline),
                        then: Some(then),
                    });
                }
                StateProj::Refreshing { token, then } => {
                    let current = match ready!(token.as_mut().poll(cx)) {
                        Ok(current) => current,
                        Err(error) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(error));
                        }
                    };
                    match then.take().expect("auth future polled after completion") {
                        AfterRefresh::AskCaller(otherwise) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(Box::new(CredentialsRefreshed::new(
                                otherwise,
                            ))));
                        }
                        AfterRefresh::Send(pending) => {
                            this.state.set(State::Readying {
                                token: Some(current),
                                pending: Some(*pending),
                            });
                        }
                    }
                }
                StateProj::Done => panic!("auth future polled after completion"),
            }
        }
    }
}
