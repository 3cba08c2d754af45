//! [`ResponseFuture`]: a call sent through its circuit, or refused by it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;
use towline_core::{BoxError, CircuitOpen};

use crate::circuit::{Circuit, Verdict};
use crate::judge;

pin_project! {
    /// The response future of [`CircuitBreaker`](crate::CircuitBreaker).
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateReplace]
    enum State<F> {
        // A request with no key, or one past the key bound: not watched.
        Passing {
            #[pin]
            future: F,
        },
        // Sent; its outcome counts for its circuit.
        Calling {
            #[pin]
            future: F,
            ticket: Ticket,
        },
        // The circuit refused it: not sent.
        Refused {
            error: CircuitOpen,
        },
        Done,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn passing(future: F) -> Self {
        ResponseFuture {
            state: State::Passing { future },
        }
    }

    pub(crate) fn calling(future: F, ticket: Ticket) -> Self {
        ResponseFuture {
            state: State::Calling { future, ticket },
        }
    }

    pub(crate) fn refused(error: CircuitOpen) -> Self {
        ResponseFuture {
            state: State::Refused { error },
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Passing { .. } => "Passing",
            State::Calling { .. } => "Calling",
            State::Refused { .. } => "Refused",
            State::Done => "Done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<B>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        match state.as_mut().project() {
            StateProj::Passing { future } => {
                let output = ready!(future.poll(cx)).map_err(Into::into);
                state.set(State::Done);
                Poll::Ready(output)
            }
            StateProj::Calling { future, ticket } => {
                let output = ready!(future.poll(cx)).map_err(Into::into);
                // Judged on the response head: what the body does later is the caller's.
                let verdict = match &output {
                    Ok(response) => judge::response(response.status(), response.headers()),
                    Err(error) => judge::error(error),
                };
                ticket.settle(verdict);
                // Dropped in place: moving the state out would copy the inner future.
                state.set(State::Done);
                Poll::Ready(output)
            }
            StateProj::Refused { .. } => match state.project_replace(State::Done) {
                StateReplace::Refused { error } => Poll::Ready(Err(Box::new(error))),
                _ => unreachable!("the state was Refused"),
            },
            StateProj::Done => panic!("circuit breaker ResponseFuture polled after completion"),
        }
    }
}

/// A call's place in its circuit: its outcome is counted once, by [`settle`](Self::settle);
/// dropped unsettled (the caller gave up), it counts nothing and gives back its probe place.
pub(crate) struct Ticket {
    circuit: Arc<Circuit>,
    generation: u64,
    probe: bool,
}

impl Ticket {
    pub(crate) fn new(circuit: Arc<Circuit>, generation: u64, probe: bool) -> Self {
        Ticket {
            circuit,
            generation,
            probe,
        }
    }

    /// Counts the call's outcome; the ticket is then spent (dropping it gives nothing back).
    fn settle(&mut self, verdict: Verdict) {
        self.circuit.record(self.generation, self.probe, verdict);
        // Its place is settled: nothing to give back on drop.
        self.probe = false;
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.probe {
            self.circuit.cancel_probe(self.generation);
        }
    }
}
