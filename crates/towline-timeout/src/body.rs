use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Sleep, sleep, sleep_until};
use towline_core::{BoxError, Deadline, DeadlineExceeded, Elapsed, TimeoutPhase};

/// What a [`TimeoutBody`] enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Limit {
    /// Nothing: frames pass as they come.
    None,
    /// At most this long between two frames (and before the first).
    Idle(Duration),
    /// The whole body by this deadline.
    Until(Deadline),
}

pin_project! {
    /// A response body with a time limit: an idle limit between frames (from
    /// [`TimeoutLayer::body_timeout`](crate::TimeoutLayer::body_timeout), failing with
    /// [`Elapsed`]), or the call's deadline (from [`DeadlineLayer`](crate::DeadlineLayer),
    /// failing with [`DeadlineExceeded`]), or none.
    ///
    /// Errors are `BoxError`s; the inner body's own errors pass through unchanged inside.
    #[derive(Debug)]
    pub struct TimeoutBody<B> {
        #[pin]
        inner: B,
        #[pin]
        sleep: Option<Sleep>,
        limit: Limit,
    }
}

impl<B> TimeoutBody<B> {
    pub(crate) fn new(inner: B, limit: Limit) -> Self {
        TimeoutBody {
            inner,
            sleep: None,
            limit,
        }
    }

    /// The wrapped body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// The wrapped body, owned (the limit no longer applies).
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B> Body for TimeoutBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            if let Limit::Idle(_) = this.limit {
                // A frame arrived: the idle clock starts again at the next poll.
                this.sleep.set(None);
            }
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        // Pending: arm the timer only now, so a body that always has data never touches it.
        let error: BoxError = match *this.limit {
            Limit::None => return Poll::Pending,
            Limit::Idle(limit) => {
                ready!(poll_timer(this.sleep, cx, || sleep(limit)));
                Box::new(Elapsed::new(limit, TimeoutPhase::Body))
            }
            Limit::Until(deadline) => {
                ready!(poll_timer(this.sleep, cx, || sleep_until(
                    deadline.instant()
                )));
                Box::new(DeadlineExceeded::new(deadline))
            }
        };
        Poll::Ready(Some(Err(error)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Polls the timer in `slot`, arming it with `arm` first if it is not running.
fn poll_timer(
    mut slot: Pin<&mut Option<Sleep>>,
    cx: &mut Context<'_>,
    arm: impl FnOnce() -> Sleep,
) -> Poll<()> {
    if slot.is_none() {
        slot.set(Some(arm()));
    }
    match slot.as_pin_mut() {
        Some(timer) => timer.poll(cx),
        None => Poll::Pending,
    }
}
