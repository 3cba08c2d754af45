//! [`ResponseFuture`]: the inner future, polled inside its span, recording how it ended.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;
use towline_core::BoxError;
use tracing::Span;

use crate::outcome;

pin_project! {
    /// The response future of [`Spanned`](crate::Spanned), the service of both span
    /// layers. Its span closes when the response head (or the error) is in, or when the
    /// future is dropped unfinished, which it records as `error.type = "cancelled"`.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }

    impl<F> PinnedDrop for ResponseFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            if let StateProj::Running { span, .. } = this.project().state.project() {
                outcome::record_cancelled(span);
            }
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Running {
            #[pin]
            inner: F,
            span: Span,
        },
        Done,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, span: Span) -> Self {
        ResponseFuture {
            state: State::Running { inner, span },
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<B>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let result = match this.state.as_mut().project() {
            StateProj::Running { inner, span } => {
                let _entered = span.enter();
                let result = ready!(inner.poll(cx)).map_err(Into::into);
                outcome::record(span, &result);
                result
            }
            StateProj::Done => panic!("towline-telemetry ResponseFuture polled after completion"),
        };
        // Dropping the span here ends it: its duration is the wait for the response head.
        this.state.set(State::Done);
        Poll::Ready(result)
    }
}
