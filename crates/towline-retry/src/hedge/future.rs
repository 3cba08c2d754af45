//! The response future of [`Hedge`](super::Hedge).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};
use tower::Service;
use towline_core::{
    AttemptOutcome, Attempts, BoxError, CallContext, ErrorKind, Replayable, Resend, Retried,
};

use super::layer::{Delay, Shared};
use crate::template::Template;

/// What a hedge needs: the copy to send, which attempt it is, and when it goes out.
pub(crate) struct Plan<B> {
    pub(crate) template: Template<B>,
    pub(crate) attempt: u32,
    pub(crate) resend: Resend,
    /// How long after the first attempt the hedge goes out, and the instant that is.
    pub(crate) delay: Duration,
    pub(crate) at: Instant,
}

/// Where the hedge of a call stands. The states that hold a request and a service are boxed:
/// inline, they would make the future of every call larger, hedged or not, and each layer
/// above copies it.
enum Hedging<S, B, F> {
    /// Waiting for the delay.
    Armed(Box<Armed<S, B>>),
    /// The delay passed and the budget paid: waiting for the service to be ready.
    Readying(Box<Readying<S, B>>),
    /// The hedged copy is in flight. Boxed: only a hedge pays for the second future.
    Sent { future: Pin<Box<F>> },
    /// The hedged copy failed; the first attempt is still awaited.
    Failed,
    /// No hedge for this call (or none any more): not eligible, no budget, no copy.
    Off,
}

/// A hedge waiting for its delay; the timer is made only when the first attempt has to wait.
struct Armed<S, B> {
    plan: Plan<B>,
    service: S,
    timer: Option<Pin<Box<Sleep>>>,
}

/// A hedge waiting for the service to be ready.
struct Readying<S, B> {
    request: Request<B>,
    service: S,
    delay: Duration,
}

pin_project! {
    #[project = SlotProj]
    enum Slot<F> {
        Running { #[pin] future: F },
        Gone,
    }
}

pin_project! {
    /// The response future of [`Hedge`](super::Hedge).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        first: Slot<S::Future>,
        hedge: Hedging<S, B, S::Future>,
        // When the first attempt was sent, if its latency is sampled (percentile mode).
        sampled: Option<Instant>,
        // The error of the attempt that failed first, while the other one is awaited.
        failed: Option<BoxError>,
        shared: Arc<Shared>,
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hedge = match self.hedge {
            Hedging::Armed(_) => "armed",
            Hedging::Readying(_) => "readying",
            Hedging::Sent { .. } => "sent",
            Hedging::Failed => "failed",
            Hedging::Off => "off",
        };
        f.debug_struct("ResponseFuture")
            .field("hedge", &hedge)
            .finish_non_exhaustive()
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn new(
        first: S::Future,
        plan: Option<(Plan<B>, S)>,
        sampled: Option<Instant>,
        shared: Arc<Shared>,
    ) -> Self {
        let hedge = match plan {
            Some((plan, service)) => Hedging::Armed(Box::new(Armed {
                plan,
                service,
                timer: None,
            })),
            None => Hedging::Off,
        };
        ResponseFuture {
            first: Slot::Running { future: first },
            hedge,
            sampled,
            failed: None,
            shared,
        }
    }
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
        if let SlotProj::Running { future } = this.first.as_mut().project()
            && let Poll::Ready(result) = future.poll(cx)
        {
            this.first.set(Slot::Gone);
            match result.map_err(Into::into) {
                Ok(response) => {
                    sample(this.shared, *this.sampled);
                    return Poll::Ready(Ok(won(response, this.hedge)));
                }
                Err(error) => {
                    if !matches!(this.hedge, Hedging::Sent { .. }) {
                        // Not hedged (yet), or the hedge failed already: the call ends.
                        let hedged = matches!(this.hedge, Hedging::Failed);
                        *this.hedge = Hedging::Off;
                        return Poll::Ready(Err(match this.failed.take() {
                            Some(hedge) => failed_hedged(reported(hedge, error)),
                            None if hedged => failed_hedged(error),
                            None => error,
                        }));
                    }
                    *this.failed = Some(error);
                }
            }
        }
        loop {
            match this.hedge {
                Hedging::Armed(armed) => {
                    let at = armed.plan.at;
                    let timer = armed.timer.get_or_insert_with(|| Box::pin(sleep_until(at)));
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let Hedging::Armed(armed) = std::mem::replace(this.hedge, Hedging::Off) else {
                        unreachable!("matched above")
                    };
                    let Armed { plan, service, .. } = *armed;
                    // The body is checked before the budget is spent: a `ReplayBody` past its
                    // cap cannot be sent again.
                    let Some(request) = plan.template.attempt(plan.attempt, plan.resend) else {
                        return Poll::Pending;
                    };
                    if !this.shared.budget.withdraw() {
                        return Poll::Pending;
                    }
                    *this.hedge = Hedging::Readying(Box::new(Readying {
                        request,
                        service,
                        delay: plan.delay,
                    }));
                }
                Hedging::Readying(readying) => match readying.service.poll_ready(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(_)) => {
                        // The hedge could not go out; the first attempt still may answer.
                        *this.hedge = Hedging::Off;
                        return Poll::Pending;
                    }
                    Poll::Ready(Ok(())) => {
                        let Hedging::Readying(readying) =
                            std::mem::replace(this.hedge, Hedging::Off)
                        else {
                            unreachable!("matched above")
                        };
                        let Readying {
                            request,
                            mut service,
                            delay,
                        } = *readying;
                        tracing::event!(
                            name: "towline.hedge",
                            target: "towline::retry",
                            tracing::Level::INFO,
                            http.request.method = %request.method(),
                            towline.hedge.delay_ms =
                                i64::try_from(delay.as_millis()).unwrap_or(i64::MAX),
                            http.request.resend_count = CallContext::from_extensions(
                                request.extensions()
                            )
                            .map_or(0, |context| i64::from(context.attempt().saturating_sub(1))),
                            "hedging a slow attempt"
                        );
                        let future = Box::pin(service.call(request));
                        *this.hedge = Hedging::Sent { future };
                    }
                },
                Hedging::Sent { future } => {
                    let Poll::Ready(result) = future.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    match result.map_err(Into::into) {
                        Ok(response) => {
                            // The first attempt loses and is dropped; it ran this long at least.
                            this.first.set(Slot::Gone);
                            sample(this.shared, *this.sampled);
                            return Poll::Ready(Ok(won(response, this.hedge)));
                        }
                        // Refused below (an open circuit, a full concurrency limit, a gate):
                        // never sent, so not a hedge; the first attempt goes on alone.
                        Err(error) if is_refusal(&error) => {
                            *this.hedge = Hedging::Off;
                            if let Some(first) = this.failed.take() {
                                return Poll::Ready(Err(first));
                            }
                        }
                        Err(error) => {
                            if let Some(first) = this.failed.take() {
                                *this.hedge = Hedging::Off;
                                return Poll::Ready(Err(failed_hedged(reported(first, error))));
                            }
                            *this.failed = Some(error);
                            *this.hedge = Hedging::Failed;
                        }
                    }
                }
                Hedging::Failed | Hedging::Off => {
                    if matches!(*this.first, Slot::Gone) && this.failed.is_none() {
                        panic!("hedge future polled after completion");
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// Whether `error` is a refusal below, before the request was sent (an open circuit, a full
/// concurrency limit, a gate, a store that did not answer).
fn is_refusal(error: &BoxError) -> bool {
    matches!(
        AttemptOutcome::of_error(&**error),
        AttemptOutcome::Error(kind) if kind.certainly_not_sent() || kind == ErrorKind::RateLimited
    )
}

/// Of two failed attempts, the error the call reports: the one that failed first, unless it
/// was refused before it was sent and the other one reached the server, whose answer says
/// more.
fn reported(first: BoxError, second: BoxError) -> BoxError {
    if is_refusal(&first) && !is_refusal(&second) {
        second
    } else {
        first
    }
}

/// The error of a call whose first attempt and hedge both failed (the one that failed first),
/// with a record of the hedge: a [`Retried`] that counts one hedge and no retry, which a retry
/// layer above takes into its own record and unwraps.
fn failed_hedged(error: BoxError) -> BoxError {
    let mut attempts = Attempts::new();
    attempts.record_hedge();
    Box::new(Retried::new(attempts, error))
}

/// The winning response, with the hedge on its record if one was sent; the hedge's state
/// (and the losing attempt in it) is dropped now, not when this future is.
fn won<S, B, F, T>(mut response: Response<T>, hedge: &mut Hedging<S, B, F>) -> Response<T> {
    let hedged = matches!(hedge, Hedging::Sent { .. } | Hedging::Failed);
    *hedge = Hedging::Off;
    if hedged {
        let extensions = response.extensions_mut();
        let mut attempts = extensions.remove::<Attempts>().unwrap_or_default();
        attempts.record_hedge();
        extensions.insert(attempts);
    }
    response
}

/// Counts the first attempt's latency, if sampled.
fn sample(shared: &Shared, sampled: Option<Instant>) {
    if let (Some(started), Delay::Percentile(latencies)) = (sampled, &shared.delay) {
        latencies.record(started.elapsed());
    }
}
