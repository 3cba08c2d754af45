//! The response future of [`Retry`](crate::Retry).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::time::{Sleep, sleep};
use tower::Service;
use towline_core::{Attempts, BoxError, CallContext, Replayable, Resend};

use crate::classify::{Classify, Outcome};
use crate::decide::{
    Call, Step, StopReason, decide, finish, record, resend_after_refresh, stop, wrap,
};
use crate::layer::Shared;
use crate::template::Template;

pin_project! {
    /// The response future of [`Retry`](crate::Retry).
    pub struct ResponseFuture<S, B, C>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future, Request<B>>,
        service: S,
        shared: Arc<Shared<C>>,
        // The request as first sent, to make each later attempt from.
        template: Option<Template<B>>,
        attempts: Attempts,
        // What the rules need to know of the call itself.
        call: Call,
        previous_delay: Option<Duration>,
    }
}

impl<S, B, C> fmt::Debug for ResponseFuture<S, B, C>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, R> {
        // An attempt is in flight, with what this layer promised the layers below about it.
        Calling {
            #[pin]
            future: F,
            promised: Resend,
        },
        // Sleeping the delay before the next attempt. Boxed: only retries pay for a timer,
        // and the future stays small on the success path.
        Waiting {
            sleep: Pin<Box<Sleep>>,
            next: Option<R>,
        },
        // Waiting for the service to be ready for the next attempt.
        Readying {
            next: Option<R>,
        },
        // The outcome was returned.
        Done,
    }
}

/// What this layer promised the layers below about the attempt `request` is.
fn promised<B>(request: &Request<B>) -> Resend {
    CallContext::from_extensions(request.extensions()).map_or(Resend::No, CallContext::resend)
}

impl<S, B, C> ResponseFuture<S, B, C>
where
    S: Service<Request<B>>,
{
    /// Sends the first attempt.
    pub(crate) fn new(
        mut service: S,
        request: Request<B>,
        shared: Arc<Shared<C>>,
        template: Option<Template<B>>,
        call: Call,
    ) -> Self {
        let promised = promised(&request);
        ResponseFuture {
            state: State::Calling {
                future: service.call(request),
                promised,
            },
            service,
            shared,
            template,
            attempts: Attempts::new(),
            call,
            previous_delay: None,
        }
    }
}

impl<S, B, C, ResBody> Future for ResponseFuture<S, B, C>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    B: Replayable,
    C: Classify,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future, promised } => {
                    let promised = *promised;
                    let mut result = ready!(future.poll(cx)).map_err(Into::into);
                    if let Err(error) = result {
                        let template = this.template.as_ref();
                        match resend_after_refresh(error, promised, template, this.attempts) {
                            Ok(next) => {
                                tracing::event!(
                                    name: "towline.retry",
                                    target: "towline::retry",
                                    tracing::Level::INFO,
                                    towline.retry.reason = "credentials_refreshed",
                                    towline.retry.delay_ms = 0i64,
                                    http.request.resend_count = this.attempts.count() as i64,
                                    "resending after a credentials refresh"
                                );
                                this.state.set(State::Readying { next: Some(next) });
                                continue;
                            }
                            Err(error) => result = Err(error),
                        }
                    }
                    let outcome = match &result {
                        Ok(response) => Outcome::Response {
                            status: response.status(),
                            headers: response.headers(),
                        },
                        Err(error) => Outcome::Error(&**error),
                    };
                    let verdict = this.shared.policy.classifier.classify(outcome);
                    let template = this.template.as_ref();
                    let step = decide(
                        this.shared,
                        verdict,
                        *this.call,
                        this.attempts,
                        *this.previous_delay,
                        |attempt| template?.attempt(attempt, Resend::OnRefresh),
                    );
                    match step {
                        // A response stopped by the budget comes back as it is, its
                        // `Attempts` marked; an error is wrapped in `RetryBudgetExhausted`.
                        Step::Finish | Step::Stop(StopReason::Budget) if result.is_ok() => {
                            this.state.set(State::Done);
                            return Poll::Ready(finish(result, this.attempts));
                        }
                        Step::Finish => {
                            this.state.set(State::Done);
                            return Poll::Ready(finish(result, this.attempts));
                        }
                        Step::Stop(reason) => {
                            this.state.set(State::Done);
                            let error = stop(reason, result);
                            return Poll::Ready(Err(wrap(error, this.attempts)));
                        }
                        Step::Retry {
                            delay,
                            backoff,
                            next,
                        } => {
                            let recorded = record(match &result {
                                Ok(response) => Outcome::Response {
                                    status: response.status(),
                                    headers: response.headers(),
                                },
                                Err(error) => Outcome::Error(&**error),
                            });
                            tracing::event!(
                                name: "towline.retry",
                                target: "towline::retry",
                                tracing::Level::INFO,
                                towline.retry.reason = recorded.name(),
                                towline.retry.delay_ms =
                                    i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
                                http.request.resend_count = this.attempts.count() as i64,
                                "retrying"
                            );
                            this.attempts.record_retry(recorded, delay);
                            *this.previous_delay = Some(backoff);
                            // The failed attempt's response (and body) is dropped here.
                            drop(result);
                            let next = Some(next);
                            if delay.is_zero() {
                                this.state.set(State::Readying { next });
                            } else {
                                this.state.set(State::Waiting {
                                    sleep: Box::pin(sleep(delay)),
                                    next,
                                });
                            }
                        }
                    }
                }
                StateProj::Waiting { sleep, next } => {
                    ready!(sleep.as_mut().poll(cx));
                    let next = next.take();
                    this.state.set(State::Readying { next });
                }
                StateProj::Readying { next } => {
                    if let Err(error) = ready!(this.service.poll_ready(cx)) {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(wrap(error.into(), this.attempts)));
                    }
                    let request = next.take().expect("retry future polled after completion");
                    let promised = promised(&request);
                    let future = this.service.call(request);
                    this.state.set(State::Calling { future, promised });
                }
                StateProj::Done => panic!("retry future polled after completion"),
            }
        }
    }
}
