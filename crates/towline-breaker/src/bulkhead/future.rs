//! [`BulkheadFuture`]: a call in flight in its key's compartment, waiting for a place, or
//! refused.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::Service;
use towline_core::{BoxError, BulkheadFull};

use super::compartment::{Compartment, Place, Queued};

/// The wait for a place: boxed, and made only when a call has to wait.
type Wait = Pin<Box<dyn Future<Output = Result<Place, Arc<Compartment>>> + Send>>;

pin_project! {
    /// The response future of [`Bulkhead`](crate::Bulkhead).
    pub struct BulkheadFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future, S, Request<B>>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateReplace]
    enum State<F, S, R> {
        // A request with no key, or one past the key bound: not limited.
        Passing {
            #[pin]
            future: F,
        },
        // Sent, holding its place until the response head.
        Calling {
            #[pin]
            future: F,
            place: Place,
        },
        // In its key's queue, with the ready service and the request, not sent yet.
        Waiting {
            wait: Wait,
            started: Instant,
            service: S,
            request: R,
        },
        // Refused: not sent.
        Refused {
            error: BulkheadFull,
        },
        Done,
    }
}

impl<S, B> BulkheadFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn passing(future: S::Future) -> Self {
        BulkheadFuture {
            state: State::Passing { future },
        }
    }

    pub(crate) fn calling(future: S::Future, place: Place) -> Self {
        BulkheadFuture {
            state: State::Calling { future, place },
        }
    }

    pub(crate) fn refused(error: BulkheadFull) -> Self {
        BulkheadFuture {
            state: State::Refused { error },
        }
    }

    pub(crate) fn waiting(
        queued: Queued,
        until: Option<Instant>,
        started: Instant,
        service: S,
        request: Request<B>,
    ) -> Self {
        BulkheadFuture {
            state: State::Waiting {
                wait: Box::pin(queued.wait(until)),
                started,
                service,
                request,
            },
        }
    }
}

impl<S, B> fmt::Debug for BulkheadFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Passing { .. } => "Passing",
            State::Calling { .. } => "Calling",
            State::Waiting { .. } => "Waiting",
            State::Refused { .. } => "Refused",
            State::Done => "Done",
        };
        f.debug_struct("BulkheadFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, B, ResBody> Future for BulkheadFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Passing { future } => {
                    let output = ready!(future.poll(cx)).map_err(Into::into);
                    state.set(State::Done);
                    return Poll::Ready(output);
                }
                StateProj::Calling { future, .. } => {
                    let output = ready!(future.poll(cx)).map_err(Into::into);
                    // The place is given back with the response head (see the layer's docs).
                    state.set(State::Done);
                    return Poll::Ready(output);
                }
                StateProj::Waiting { wait, started, .. } => {
                    let waited = ready!(wait.as_mut().poll(cx));
                    let started = *started;
                    let StateReplace::Waiting {
                        mut service,
                        request,
                        ..
                    } = state.as_mut().project_replace(State::Done)
                    else {
                        unreachable!("the state was Waiting")
                    };
                    match waited {
                        Ok(place) => {
                            let future = service.call(request);
                            state.set(State::Calling { future, place });
                        }
                        Err(compartment) => {
                            let error = compartment.refusal(started.elapsed());
                            return Poll::Ready(Err(Box::new(error)));
                        }
                    }
                }
                StateProj::Refused { .. } => match state.project_replace(State::Done) {
                    StateReplace::Refused { error } => return Poll::Ready(Err(Box::new(error))),
                    _ => unreachable!("the state was Refused"),
                },
                StateProj::Done => panic!("bulkhead BulkheadFuture polled after completion"),
            }
        }
    }
}
