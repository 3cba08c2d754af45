//! [`Spanned`]: the service of both span layers, which differ only in the span they make.

use std::fmt;
use std::task::{Context, Poll};

use http::{Extensions, Method, Request, Response, Uri};
use tower::Service;
use towline_core::BoxError;
use tracing::Span;

use crate::future::ResponseFuture;

/// Makes the span of one request from its method, URL and extensions.
pub(crate) type MakeSpan = fn(&Method, &Uri, &Extensions) -> Span;

/// The service of [`CallSpanLayer`](crate::CallSpanLayer) and
/// [`AttemptSpanLayer`](crate::AttemptSpanLayer): each call runs inside the span the layer
/// makes for it, and the span ends with the response head (or the error). See the layers for
/// an example.
#[derive(Clone)]
pub struct Spanned<S> {
    inner: S,
    make_span: MakeSpan,
}

impl<S> Spanned<S> {
    pub(crate) fn new(inner: S, make_span: MakeSpan) -> Self {
        Spanned { inner, make_span }
    }

    towline_core::inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for Spanned<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spanned")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<S, B, ResBody> Service<Request<B>> for Spanned<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let span = (self.make_span)(request.method(), request.uri(), request.extensions());
        let entered = span.enter();
        let inner = self.inner.call(request);
        drop(entered);
        ResponseFuture::new(inner, span)
    }
}
