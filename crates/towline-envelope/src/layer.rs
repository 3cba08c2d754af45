//! [`ErrorBodyLayer`]: non-success responses (and in-band errors) become `Err(ApiError)`.

use tower::Layer;

use crate::decoder::Decoder;
use crate::service::ErrorBody;
use crate::settings::Settings;

/// Turns non-success responses into `Err` carrying the decoded [`ApiError`](towline_core::ApiError).
///
/// - A 4xx or 5xx response: its body is read, up to [`max_body`](ErrorBodyLayer::max_body)
///   bytes (the rest is dropped, unread, and the error marked truncated), decoded with the
///   [`Decoder`], and returned as `Err(Box<ApiError>)`. Retry, rate-limit and auth layers
///   above act on it; `towline_core::Error::api` gives it to the user.
/// - A 2xx response passes through untouched: no buffering, no allocation. Only when the
///   decoder's chosen format reports errors inside successes (`Decoder::only(Format::Open2b)`),
///   or when asked with [`inspect_success`](ErrorBodyLayer::inspect_success), are JSON success
///   bodies no longer than the cap read first, and handed back intact (the same bytes, then
///   the rest of the body) when they are not errors.
/// - Other statuses (1xx, 3xx) pass through.
///
/// ```
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use bytes::Bytes;
/// use tower::{BoxError, ServiceBuilder, ServiceExt};
/// use towline_core::{ApiErrorKind, ApiFormat, Error, ErrorKind};
/// use towline_envelope::ErrorBodyLayer;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let service = ServiceBuilder::new()
///     .layer(ErrorBodyLayer::new())
///     .service_fn(|_req: Request<()>| async {
///         let body = r#"{"code": 5, "message": "Item not found", "details": []}"#;
///         Ok::<_, BoxError>(
///             Response::builder()
///                 .status(StatusCode::NOT_FOUND)
///                 .body(Full::new(Bytes::from(body)))
///                 .unwrap(),
///         )
///     });
///
/// let err = Error::from(service.oneshot(Request::new(())).await.unwrap_err());
/// assert_eq!(err.kind(), ErrorKind::Api);
/// let api = err.api().unwrap();
/// assert_eq!(api.format, ApiFormat::Attraqt);
/// assert_eq!(api.kind, ApiErrorKind::NotFound);
/// assert_eq!(api.message.as_deref(), Some("Item not found"));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ErrorBodyLayer {
    config: Settings,
}

impl Default for ErrorBodyLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ErrorBodyLayer {
    /// Auto-detects every built-in format; reads at most [`DEFAULT_MAX_BODY`](crate::DEFAULT_MAX_BODY) bytes; does not
    /// inspect success bodies.
    pub fn new() -> Self {
        Self::with_decoder(Decoder::new())
    }

    /// Uses `decoder`. Success bodies are inspected only if one of its formats has in-band
    /// errors ([`Decoder::has_in_band_errors`]).
    ///
    /// ```
    /// use towline_envelope::{Decoder, ErrorBodyLayer, Format};
    ///
    /// // IXON never reports errors in a 200: successes pass untouched.
    /// let layer = ErrorBodyLayer::with_decoder(Decoder::only(Format::Ixon));
    /// # let _ = layer;
    /// ```
    pub fn with_decoder(decoder: Decoder) -> Self {
        ErrorBodyLayer {
            config: Settings::new(decoder),
        }
    }

    /// Reads at most `bytes` of a body. Past the cap an error is still produced, from the
    /// prefix, with `body_truncated` set.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.config.set_max_body(bytes);
        self
    }

    /// Whether to inspect JSON success bodies (up to the cap) for in-band errors. On by default
    /// only for a decoder whose chosen format needs it ([`Decoder::has_in_band_errors`]).
    pub fn inspect_success(mut self, inspect: bool) -> Self {
        self.config.set_inspect_success(inspect);
        self
    }
}

impl<S> Layer<S> for ErrorBodyLayer {
    type Service = ErrorBody<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorBody::new(inner, self.config.clone())
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use serde_json::Value;
    use towline_core::HintReader;

    use towline_core::ApiError;

    use super::*;
    use crate::{ErrorFormat, Format};

    struct Acme;

    impl ErrorFormat for Acme {
        fn name(&self) -> &'static str {
            "acme"
        }

        fn decode(&self, _: StatusCode, _: &Value) -> Option<ApiError> {
            None
        }
    }

    fn is_inline(layer: &ErrorBodyLayer) -> bool {
        matches!(layer.config, Settings::Inline { .. })
    }

    #[test]
    fn built_in_decoders_are_carried_inline_others_shared() {
        assert!(is_inline(&ErrorBodyLayer::new()));
        assert!(is_inline(
            &ErrorBodyLayer::new().max_body(10).inspect_success(true)
        ));
        let open2b = ErrorBodyLayer::with_decoder(Decoder::only(Format::Open2b));
        assert!(is_inline(&open2b) && open2b.config.inspect_success());
        assert!(!is_inline(&ErrorBodyLayer::with_decoder(
            Decoder::new().with_format(Acme)
        )));
        let hints = ErrorBodyLayer::with_decoder(Decoder::new().hints(HintReader::new()));
        assert!(!is_inline(&hints));
        let hints = hints.max_body(10).inspect_success(true);
        assert_eq!(hints.config.max_body(), 10);
        assert!(hints.config.inspect_success());
    }
}
