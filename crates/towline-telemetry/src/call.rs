//! [`CallSpanLayer`]: one span around a whole call, its attempts and its waits.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};
use towline_core::BoxError;
use tracing::Span;
use tracing::field::Empty;

use crate::future::ResponseFuture;
use crate::outcome::method_name;
use crate::url::port;

/// A [`Layer`] that wraps each call in a span (`towline.call`, kind internal) that the
/// attempts' client spans, the retry and wait events and the token refreshes nest in. It
/// records `http.request.method`, `server.address`, `server.port` and, when the call ends, the
/// final `http.response.status_code` or `error.type` and `towline.attempts`, the number of
/// requests sent.
///
/// Put it outermost, above the deadline and the retry layer (the `Pipeline` does).
///
/// ```
/// use http::{Request, Response};
/// use tower::{BoxError, ServiceBuilder, ServiceExt};
/// use towline_telemetry::{AttemptSpanLayer, CallSpanLayer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let client = ServiceBuilder::new()
///     .layer(CallSpanLayer::new())
///     // ... the deadline and the retry layer ...
///     .layer(AttemptSpanLayer::new())
///     .service_fn(|_: Request<()>| async { Ok::<_, BoxError>(Response::new(())) });
/// let response = client.oneshot(Request::new(())).await.unwrap();
/// assert_eq!(response.status(), 200);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CallSpanLayer {
    _private: (),
}

impl CallSpanLayer {
    /// The layer.
    pub fn new() -> Self {
        CallSpanLayer::default()
    }
}

impl<S> Layer<S> for CallSpanLayer {
    type Service = CallSpan<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallSpan { inner }
    }
}

/// The service of [`CallSpanLayer`]. See the layer for an example.
#[derive(Clone, Debug)]
pub struct CallSpan<S> {
    inner: S,
}

impl<S> CallSpan<S> {
    towline_core::inner_service_accessors!();
}

impl<S, B, ResBody> Service<Request<B>> for CallSpan<S>
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
        let span = call_span(&request);
        let entered = span.enter();
        let inner = self.inner.call(request);
        drop(entered);
        ResponseFuture::new(inner, span)
    }
}

fn call_span<B>(request: &Request<B>) -> Span {
    let method = method_name(request.method());
    let uri = request.uri();
    tracing::info_span!(
        target: "towline::call",
        "towline.call",
        otel.kind = "internal",
        otel.status_code = Empty,
        http.request.method = method,
        server.address = uri.host().unwrap_or(""),
        server.port = port(uri).map(i64::from),
        http.response.status_code = Empty,
        error.type = Empty,
        towline.attempts = Empty,
    )
}
