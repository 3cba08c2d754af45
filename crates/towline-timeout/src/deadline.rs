use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Layer, Service};
use towline_core::{BoxError, Deadline, DeadlineExceeded};

use crate::body::{LazySleep, Limit, TimeoutBody, race};
use crate::clock;

/// One time budget for the whole call: every retry, wait and attempt below spends from it.
///
/// On each request the deadline is now + `budget`, unless the request already carries an
/// earlier [`Deadline`] extension or runs in the scope of an earlier deadline (a caller's
/// tighter deadline wins). The layers below see it through [`Deadline::in_force`]: the layer
/// calls and polls them in the deadline's [`scope`](Deadline::scope), which costs no
/// allocation; [`in_extensions`](DeadlineLayer::in_extensions) also sets it on the request,
/// for layers below that run in another task. The call fails with
/// [`DeadlineExceeded`] when the deadline passes, whatever the layers below are doing; a
/// request whose deadline has already passed is not sent at all. By default the response body
/// must be complete by the deadline too; [`head_only`](DeadlineLayer::head_only) lifts that for
/// streaming downloads.
///
/// ```
/// use std::time::Duration;
/// use http::{Request, Response};
/// use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
/// use towline_core::{Deadline, Error, ErrorKind};
/// use towline_timeout::DeadlineLayer;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let mut client = ServiceBuilder::new()
///     .layer(DeadlineLayer::new(Duration::from_secs(60)))
///     .service_fn(|req: Request<()>| async move {
///         // Layers below see the deadline and can plan around it.
///         let deadline = Deadline::in_force(req.extensions()).unwrap();
///         tokio::time::sleep(deadline.remaining() + Duration::from_secs(1)).await;
///         Ok::<_, BoxError>(Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
///     });
///
/// // The caller's own, tighter deadline wins over the layer's 60 s.
/// let mut request = Request::new(());
/// request.extensions_mut().insert(Deadline::after(Duration::from_secs(2)));
/// let started = tokio::time::Instant::now();
/// let err = client.ready().await.unwrap().call(request).await.unwrap_err();
/// assert_eq!(Error::from(err).kind(), ErrorKind::DeadlineExceeded);
/// assert_eq!(started.elapsed(), Duration::from_secs(2));
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer {
    budget: Duration,
    cover_body: bool,
    in_extensions: bool,
}

impl DeadlineLayer {
    /// Each call must end within `budget` of its start, response body included.
    pub fn new(budget: Duration) -> Self {
        DeadlineLayer {
            budget,
            cover_body: true,
            in_extensions: false,
        }
    }

    /// The deadline covers the response head only; the body may take as long as it takes.
    pub fn head_only(mut self) -> Self {
        self.cover_body = false;
        self
    }

    /// Also sets the [`Deadline`] extension on each request, for layers below that a task
    /// boundary (a `tower::buffer::Buffer`, a spawned call) keeps out of the deadline's scope.
    /// It costs an allocation per call (the extension map), which the scope alone does not.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_timeout::DeadlineLayer;
    ///
    /// let layer = DeadlineLayer::new(Duration::from_secs(30)).in_extensions();
    /// # let _ = layer;
    /// ```
    pub fn in_extensions(mut self) -> Self {
        self.in_extensions = true;
        self
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = WithDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WithDeadline {
            inner,
            layer: *self,
        }
    }
}

/// The service of [`DeadlineLayer`]. See [`DeadlineLayer`] for an example.
#[derive(Clone, Debug)]
pub struct WithDeadline<S> {
    inner: S,
    layer: DeadlineLayer,
}

impl<S> WithDeadline<S> {
    /// Wraps `inner` with a budget of `budget` per call, body included.
    pub fn new(inner: S, budget: Duration) -> Self {
        DeadlineLayer::new(budget).layer(inner)
    }

    towline_core::inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for WithDeadline<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<TimeoutBody<ResBody>>;
    type Error = BoxError;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let now = Instant::now();
        let ours = Deadline::after_start(now, self.layer.budget);
        let deadline = match Deadline::in_force(request.extensions()) {
            Some(earlier) if earlier < ours => earlier,
            _ => ours,
        };
        if self.layer.in_extensions {
            deadline.tighten(request.extensions_mut());
        }
        // Only a caller's earlier deadline (or a zero budget) can have passed already; skip
        // a second clock read for the common case.
        let expired = if deadline == ours {
            self.layer.budget.is_zero()
        } else {
            deadline.is_expired()
        };
        if expired {
            // Never start an attempt that cannot finish. Tower allows skipping `call` after
            // `poll_ready`: whatever readiness the inner service reserved stays with it for
            // the next call.
            return DeadlineFuture {
                state: State::Expired { deadline },
            };
        }
        DeadlineFuture {
            state: State::Running {
                inner: deadline.scope(|| clock::calling_at(now, || self.inner.call(request))),
                sleep: LazySleep::until(deadline.instant()),
                deadline,
                cover_body: self.layer.cover_body,
            },
        }
    }
}

pin_project! {
    /// The response future of [`WithDeadline`].
    #[derive(Debug)]
    pub struct DeadlineFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    #[derive(Debug)]
    enum State<F> {
        Running {
            #[pin]
            inner: F,
            #[pin]
            sleep: LazySleep,
            deadline: Deadline,
            cover_body: bool,
        },
        Expired {
            deadline: Deadline,
        },
    }
}

impl<F, B, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<TimeoutBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Expired { deadline } => {
                Poll::Ready(Err(Box::new(DeadlineExceeded::new(*deadline))))
            }
            StateProj::Running {
                inner,
                sleep,
                deadline,
                cover_body,
            } => {
                let limit = if *cover_body {
                    Limit::Until(*deadline)
                } else {
                    Limit::None
                };
                let deadline = *deadline;
                deadline.scope(|| {
                    race(inner, sleep, cx, limit, || {
                        Box::new(DeadlineExceeded::new(deadline))
                    })
                })
            }
        }
    }
}
