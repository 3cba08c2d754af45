//! [`AttemptSpanLayer`]: one OpenTelemetry HTTP client span per request sent.

use http::{Extensions, Method, Uri};
use tower::Layer;
use towline_core::CallContext;
use tracing::Span;
use tracing::field::Empty;

use crate::names;
use crate::outcome::method_name;
use crate::service::Spanned;
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
        Spanned::new(inner, attempt_span)
    }
}

/// The service of [`AttemptSpanLayer`]. See the layer for an example.
pub type AttemptSpan<S> = Spanned<S>;

fn attempt_span(request_method: &Method, uri: &Uri, extensions: &Extensions) -> Span {
    let method = method_name(request_method);
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
        span.record(names::METHOD_ORIGINAL, request_method.as_str());
    }
    let attempt = CallContext::from_extensions(extensions).map_or(1, |c| c.attempt());
    if attempt > 1 {
        span.record(names::RESEND_COUNT, i64::from(attempt - 1));
    }
    span
}
