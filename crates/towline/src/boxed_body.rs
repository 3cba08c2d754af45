//! [`BoxedBody`]: the client's decompressed response body, boxed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::Service;

/// Puts the response body of `S` in a box (`Pin<Box<B>>`: still a body, with the same data and
/// error types, `Send` and `Sync` as `B`, and `Unpin`): in the [`Pipeline`](crate::Pipeline),
/// the layer just above decompression. It exists to name the pipeline's type
/// ([`Standard`](crate::Standard)); there is no layer for it.
///
/// Decompression keeps its decoders' state in the body (over 300 bytes), and every layer above
/// moves the response on its way up: boxed once, they move a pointer, for one allocation per
/// response. The layers above wrap the boxed body further (the error-body decoder, the body's
/// idle timeout).
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::{BodyExt, Full};
/// use tower::{ServiceExt, service_fn};
/// use towline::BoxedBody;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let client = service_fn(|_: Request<()>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
/// });
/// let response = BoxedBody::new(client).oneshot(Request::new(())).await.unwrap();
/// let body: std::pin::Pin<Box<Full<Bytes>>> = response.into_body();
/// assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct BoxedBody<S> {
    inner: S,
}

impl<S> BoxedBody<S> {
    /// Boxes the response bodies of `inner`. See the type's docs for an example.
    pub fn new(inner: S) -> Self {
        BoxedBody { inner }
    }
}

impl<S, B, ResBody> Service<Request<B>> for BoxedBody<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<Pin<Box<ResBody>>>;
    type Error = S::Error;
    type Future = BoxedBodyFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        BoxedBodyFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`BoxedBody`]: the inner service's, its body boxed when the
    /// response comes. See [`BoxedBody`] for an example.
    #[derive(Debug)]
    pub struct BoxedBodyFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, ResBody, E> Future for BoxedBodyFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<Pin<Box<ResBody>>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .inner
            .poll(cx)
            .map_ok(|response| response.map(Box::pin))
    }
}
