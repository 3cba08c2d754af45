//! The response future of [`Retry`](crate::Retry).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::time::{Sleep, sleep, sleep_until};
use tower::Service;
use towline_core::{
    Attempts, BoxError, CallContext, Deadline, DeadlineExceeded, Replayable, Resend,
};

use crate::classify::{Classify, Outcome};
use crate::decide::{
    self, Call, Step, StopReason, decide, record, resend_after_refresh, stop, wrap,
};
use crate::shared::Shared;
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
        // From the second request on, `cutoff` is the call's deadline: this layer ends the
        // call itself when it passes, so that the error says how many requests were sent
        // (the deadline layer above would drop this future, and its record with it).
        Calling {
            #[pin]
            future: F,
            promised: Resend,
            cutoff: Option<Pin<Box<Sleep>>>,
        },
        // Sleeping the delay before the next attempt. Boxed: only retries pay for a timer,
        // and the future stays small on the success path. The box becomes the next
        // attempt's cutoff.
        Waiting {
            sleep: Option<Pin<Box<Sleep>>>,
            next: Option<R>,
        },
        // Waiting for the service to be ready for the next attempt.
        Readying {
            next: Option<R>,
            cutoff: Option<Pin<Box<Sleep>>>,
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
    /// Sends the first attempt, under the promise `promised` its context carries.
    pub(crate) fn new(
        mut service: S,
        request: Request<B>,
        promised: Resend,
        shared: Arc<Shared<C>>,
        template: Option<Template<B>>,
        call: Call,
    ) -> Self {
        ResponseFuture {
            state: State::Calling {
                future: service.call(request),
                promised,
                cutoff: None,
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
                StateProj::Calling {
                    future,
                    promised,
                    cutoff,
                } => {
                    let promised = *promised;
                    // The attempt first: an answer ready at the deadline still counts.
                    let Poll::Ready(result) = future.poll(cx) else {
                        ready!(poll_cutoff(cutoff, cx));
                        this.state.set(State::Done);
                        return Poll::Ready(Err(past_deadline(this.call, this.attempts)));
                    };
                    let mut result = result
                        .map_err(|error| decide::take_error_hedges(error.into(), this.attempts));
                    if let Ok(response) = &mut result {
                        decide::take_response_hedges(response, this.attempts);
                    }
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
                                let cutoff = cutoff.take().or_else(|| arm(this.call, None));
                                this.state.set(State::Readying {
                                    next: Some(next),
                                    cutoff,
                                });
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
                            if let Ok(response) = &mut result {
                                decide::record_on(response, this.attempts);
                            }
                            return Poll::Ready(result);
                        }
                        Step::Finish => {
                            this.state.set(State::Done);
                            return Poll::Ready(decide::finish(result, this.attempts));
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
                                let cutoff = cutoff.take().or_else(|| arm(this.call, None));
                                this.state.set(State::Readying { next, cutoff });
                            } else {
                                // The timer of this attempt's cutoff, if any, sleeps the delay.
                                let sleep = match cutoff.take() {
                                    Some(mut timer) => {
                                        timer.as_mut().reset(deadline_after(delay));
                                        timer
                                    }
                                    None => Box::pin(sleep(delay)),
                                };
                                this.state.set(State::Waiting {
                                    sleep: Some(sleep),
                                    next,
                                });
                            }
                        }
                    }
                }
                StateProj::Waiting { sleep, next } => {
                    let timer = sleep
                        .as_mut()
                        .expect("retry future polled after completion");
                    ready!(timer.as_mut().poll(cx));
                    let next = next.take();
                    let cutoff = arm(this.call, sleep.take());
                    this.state.set(State::Readying { next, cutoff });
                }
                StateProj::Readying { next, cutoff } => {
                    let ready = match this.service.poll_ready(cx) {
                        Poll::Ready(ready) => ready,
                        Poll::Pending => {
                            ready!(poll_cutoff(cutoff, cx));
                            this.state.set(State::Done);
                            return Poll::Ready(Err(past_deadline(this.call, this.attempts)));
                        }
                    };
                    if let Err(error) = ready {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(wrap(error.into(), this.attempts)));
                    }
                    let request = next.take().expect("retry future polled after completion");
                    let promised = promised(&request);
                    let future = this.service.call(request);
                    let cutoff = cutoff.take();
                    this.state.set(State::Calling {
                        future,
                        promised,
                        cutoff,
                    });
                }
                StateProj::Done => panic!("retry future polled after completion"),
            }
        }
    }
}

/// The timer that ends the call at its deadline, for a request after the first: `timer`
/// re-armed (the delay's, reused) or a new one; none without a deadline.
fn arm(call: &Call, timer: Option<Pin<Box<Sleep>>>) -> Option<Pin<Box<Sleep>>> {
    let deadline = call.deadline?.instant();
    Some(match timer {
        Some(mut timer) => {
            timer.as_mut().reset(deadline);
            timer
        }
        None => Box::pin(sleep_until(deadline)),
    })
}

/// Polls the cutoff timer; `Pending` forever without one.
fn poll_cutoff(cutoff: &mut Option<Pin<Box<Sleep>>>, cx: &mut Context<'_>) -> Poll<()> {
    match cutoff {
        Some(timer) => timer.as_mut().poll(cx),
        None => Poll::Pending,
    }
}

/// The instant `delay` from now, saturating.
fn deadline_after(delay: Duration) -> tokio::time::Instant {
    Deadline::after(delay).instant()
}

/// The call's deadline passed while a later request was on its way: the typed error, with the
/// record of the requests sent.
fn past_deadline(call: &Call, attempts: &mut Attempts) -> BoxError {
    // Only armed with a deadline; a fallback instant keeps this total.
    let deadline = call
        .deadline
        .unwrap_or_else(|| Deadline::after(Duration::ZERO));
    wrap(Box::new(DeadlineExceeded::new(deadline)), attempts)
}
