//! [`AttemptSpanLayer`]: one OpenTelemetry HTTP client span per request sent.

use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};
use towline_core::{BoxError, CallContext};
use tracing::Span;
use tracing::field::Empty;

use crate::future::ResponseFuture;
use crate::names;
use crate::outcome::method_name;
use crate::url::{RedactedUrl, port};

/// A [`Layer`] that wraps each attempt in a client span named and attributed by the
/// OpenTelemetry HTTP client conventions: exported under the method's name, with
/// `http.request.method`, `server.address`, `server.port`, `url.full` (credentials and query
/// values redacted), `http.request.resend_count` from the second attempt on (read from the
/// [`CallContext`] the retry layer writes), and, when the head is in,
/// `http.response.status_code` or `error.type`.
///
/// Put it below the retry layer, so that it sees every attempt: in the `Pipeline` it sits
/// between the retry layer and the layers that shape each attempt. The span closes when the
/// response head arrives (the response body is the caller's to read).
///
/// With no `tracing` subscriber, or none that enables `towline::attempt` at INFO, a call
/// costs one check of the span's interest and makes no span.
///
/// ```
/// use http::{Request, Response};
/// use tower::{BoxError, ServiceBuilder, ServiceExt};
/// use towline_telemetry::AttemptSpanLayer;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let client = ServiceBuilder::new()
///     .layer(AttemptSpanLayer::new())
///     .service_fn(|_: Request<()>| async { Ok::<_, BoxError>(Response::new(())) });
/// let response = client.oneshot(Request::new(())).await.unwrap();
/// assert_eq!(response.status(), 200);
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AttemptSpanLayer {
    _private: (),
}

impl AttemptSpanLayer {
    /// The layer.
    pub fn new() -> Self {
        AttemptSpanLayer::default()
    }
}

impl<S> Layer<S> for AttemptSpanLayer {
    type Service = AttemptSpan<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AttemptSpan { inner }
    }
}

/// The service of [`AttemptSpanLayer`]. See the layer for an example.
#[derive(Clone, Debug)]
pub struct AttemptSpan<S> {
    inner: S,
}

impl<S> AttemptSpan<S> {
    towline_core::inner_service_accessors!();
}

impl<S, B, ResBody> Service<Request<B>> for AttemptSpan<S>
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
        let span = attempt_span(&request);
        let entered = span.enter();
        let inner = self.inner.call(request);
        drop(entered);
        ResponseFuture::new(inner, span)
    }
}

fn attempt_span<B>(request: &Request<B>) -> Span {
    let method = method_name(request.method());
    let uri = request.uri();
    let span = tracing::info_span!(
        target: "towline::attempt",
        "towline.attempt",
        otel.name = method,
        otel.kind = "client",
        otel.status_code = Empty,
        http.request.method = method,
        http.request.method_original = Empty,
        server.address = uri.host().unwrap_or(""),
        server.port = port(uri).map(i64::from),
        url.full = %RedactedUrl(uri),
        http.request.resend_count = Empty,
        http.response.status_code = Empty,
        error.type = Empty,
    );
    if span.is_disabled() {
        return span;
    }
    if method == "_OTHER" {
        span.record(names::METHOD_ORIGINAL, request.method().as_str());
    }
    let attempt = CallContext::from_extensions(request.extensions()).map_or(1, |c| c.attempt());
    if attempt > 1 {
        span.record(names::RESEND_COUNT, i64::from(attempt - 1));
    }
    span
}
