use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Layer, Service};
use towline_core::{AttemptLimit, BoxError, CallContext, Elapsed, TimeoutPhase};

use crate::body::{LazySleep, Limit, TimeoutBody, race};

/// A per-attempt time limit: the response head within `head`, and optionally no stall longer
/// than a body limit between two body frames. See the crate docs for an example.
///
/// ```
/// use std::time::Duration;
/// use towline_timeout::TimeoutLayer;
///
/// let layer = TimeoutLayer::new(Duration::from_secs(10)).body_timeout(Duration::from_secs(30));
/// # let _ = layer;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TimeoutLayer {
    head: Duration,
    body: Option<Duration>,
}

impl TimeoutLayer {
    /// The response head must arrive within `head` of the call; the body has no limit.
    pub fn new(head: Duration) -> Self {
        TimeoutLayer { head, body: None }
    }

    /// The body must never stall longer than `idle` between two frames (or before the first):
    /// a server that sends the head and then hangs yields an [`Elapsed`] error from the body.
    pub fn body_timeout(mut self, idle: Duration) -> Self {
        self.body = Some(idle);
        self
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout {
            inner,
            layer: *self,
        }
    }
}

/// The service of [`TimeoutLayer`]. See the crate docs for an example.
#[derive(Clone, Debug)]
pub struct Timeout<S> {
    inner: S,
    layer: TimeoutLayer,
}

impl<S> Timeout<S> {
    /// Wraps `inner` with a head limit of `head` and no body limit.
    pub fn new(inner: S, head: Duration) -> Self {
        TimeoutLayer::new(head).layer(inner)
    }

    towline_core::inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Timeout<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<TimeoutBody<ResBody>>;
    type Error = BoxError;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Waiting for readiness is not part of the attempt: a pool or a rate limit may hold it.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The attempt's clock starts at the call, as tower's `Timeout`'s does; the timer is
        // made only if the answer is not there at the first poll.
        // (`AttemptLimit` saturates where `Instant + Duration::MAX` would panic.)
        let limit = AttemptLimit::starting_at(Instant::now(), self.layer.head);
        // Said to the layers below in the call's context, if it has one (inserting the
        // first extension would allocate on every call): an error body read below can then
        // end in the body phase itself, where this layer's timer could only say "head".
        if let Some(context) = request.extensions_mut().get_mut::<CallContext>() {
            context.set_attempt_limit(Some(limit));
        }
        TimeoutFuture {
            inner: self.inner.call(request),
            sleep: LazySleep::until(limit.until()),
            layer: self.layer,
        }
    }
}

pin_project! {
    /// The response future of [`Timeout`].
    #[derive(Debug)]
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: LazySleep,
        layer: TimeoutLayer,
    }
}

impl<F, B, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<TimeoutBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let limit = match this.layer.body {
            Some(idle) => Limit::Idle(idle),
            None => Limit::None,
        };
        let head = this.layer.head;
        race(this.inner, this.sleep, cx, limit, || {
            Box::new(Elapsed::new(head, TimeoutPhase::Head))
        })
    }
}
