use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tower::{Layer, Service};
use towline_core::{BoxError, CallContext, Deadline, DeadlineExceeded};

use crate::body::{LazySleep, Limit, TimeoutBody, race};

/// One time budget for the whole call: every retry, wait and attempt below spends from it.
///
/// On each request the deadline is now + `budget`, unless the request already carries an
/// earlier one (a caller's tighter deadline wins, set with [`Deadline::tighten`]). The layer
/// sets it in the request's [`CallContext`], where the layers below read it with
/// [`Deadline::in_force`], whatever task they run in. The call fails with
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
/// Deadline::after(Duration::from_secs(2)).tighten(request.extensions_mut());
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
}

impl DeadlineLayer {
    /// Each call must end within `budget` of its start, response body included.
    pub fn new(budget: Duration) -> Self {
        DeadlineLayer {
            budget,
            cover_body: true,
        }
    }

    /// The deadline covers the response head only; the body may take as long as it takes.
    pub fn head_only(mut self) -> Self {
        self.cover_body = false;
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
        let deadline = request
            .extensions_mut()
            .get_or_insert_with(|| CallContext::starting_at(now))
            .tighten_deadline(ours);
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
                inner: self.inner.call(request),
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
                race(inner, sleep, cx, limit, || {
                    Box::new(DeadlineExceeded::new(deadline))
                })
            }
        }
    }
}
