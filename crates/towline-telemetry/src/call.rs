//! [`CallSpanLayer`]: one span around a whole call, its attempts and its waits.

use http::{Extensions, Method, Uri};
use tower::Layer;
use tracing::Span;
use tracing::field::Empty;

use crate::outcome::method_name;
use crate::service::Spanned;
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
        Spanned::new(inner, call_span)
    }
}

/// The service of [`CallSpanLayer`]. See the layer for an example.
pub type CallSpan<S> = Spanned<S>;

fn call_span(method: &Method, uri: &Uri, _: &Extensions) -> Span {
    let method = method_name(method);
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
