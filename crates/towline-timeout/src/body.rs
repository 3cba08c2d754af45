use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};
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
    /// It is `Unpin` when `B` is: the timer is boxed, and allocated only the first time the
    /// body has to wait, so a body whose frames are always ready never allocates it.
    #[derive(Debug)]
    pub struct TimeoutBody<B> {
        #[pin]
        inner: B,
        timer: Option<Pin<Box<Sleep>>>,
        armed: bool,
        // Set once the limit passed: the body then ends, after its one error.
        expired: bool,
        limit: Limit,
    }
}

impl<B> TimeoutBody<B> {
    pub(crate) fn new(inner: B, limit: Limit) -> Self {
        TimeoutBody {
            inner,
            timer: None,
            armed: false,
            expired: false,
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
        let this = self.project();
        if *this.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            if let Limit::Idle(_) = this.limit {
                // A frame arrived: the idle clock starts again the next time we wait.
                *this.armed = false;
            }
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        // Pending: arm the timer only now, so a body that always has data never touches it.
        let error: BoxError = match *this.limit {
            Limit::None => return Poll::Pending,
            Limit::Idle(limit) => {
                // `Deadline::after` saturates where `Instant + Duration::MAX` would panic.
                let at = || Deadline::after(limit).instant();
                ready!(poll_timer(this.timer, this.armed, at, cx));
                Box::new(Elapsed::new(limit, TimeoutPhase::Body))
            }
            Limit::Until(deadline) => {
                ready!(poll_timer(
                    this.timer,
                    this.armed,
                    || deadline.instant(),
                    cx
                ));
                Box::new(DeadlineExceeded::new(deadline))
            }
        };
        *this.expired = true;
        Poll::Ready(Some(Err(error)))
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Polls the timer, first arming it for `at()` if it is not armed (reusing its allocation).
fn poll_timer(
    timer: &mut Option<Pin<Box<Sleep>>>,
    armed: &mut bool,
    at: impl FnOnce() -> Instant,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let timer = match timer {
        Some(timer) => {
            if !*armed {
                timer.as_mut().reset(at());
            }
            timer
        }
        None => timer.insert(Box::pin(sleep_until(at()))),
    };
    *armed = true;
    timer.as_mut().poll(cx)
}

pin_project! {
    /// A timer for a fixed instant that makes its `Sleep` only when first polled: an inner
    /// future that answers at once never touches the runtime's timer (nor clones its handle).
    #[derive(Debug)]
    pub(crate) struct LazySleep {
        at: Instant,
        #[pin]
        sleep: Option<Sleep>,
    }
}

impl LazySleep {
    pub(crate) fn until(at: Instant) -> Self {
        LazySleep { at, sleep: None }
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if this.sleep.is_none() {
            this.sleep.set(Some(sleep_until(*this.at)));
        }
        match this.sleep.as_pin_mut() {
            Some(sleep) => sleep.poll(cx),
            None => Poll::Pending,
        }
    }
}

/// Polls `inner`; when it answers, wraps its body with `limit`; otherwise polls `timer` and,
/// when it fires, fails with `expired()`. The inner future goes first, so an answer ready at
/// the deadline still counts.
pub(crate) fn race<F, B, E>(
    inner: Pin<&mut F>,
    timer: Pin<&mut LazySleep>,
    cx: &mut Context<'_>,
    limit: Limit,
    expired: impl FnOnce() -> BoxError,
) -> Poll<Result<http::Response<TimeoutBody<B>>, BoxError>>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    E: Into<BoxError>,
{
    if let Poll::Ready(result) = inner.poll(cx) {
        return Poll::Ready(
            result
                .map(|response| response.map(|body| TimeoutBody::new(body, limit)))
                .map_err(Into::into),
        );
    }
    ready!(timer.poll(cx));
    Poll::Ready(Err(expired()))
}
