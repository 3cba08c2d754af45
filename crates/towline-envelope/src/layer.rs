//! [`ErrorBodyLayer`]: non-success responses (and in-band errors) become `Err(ApiError)`.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::response::Parts;
use tower::Layer;
use towline_core::ApiError;

use crate::decoder::{Builtins, Decoder};
use crate::service::ErrorBody;

/// The default cap on the body bytes read: 64 KiB.
///
/// Error bodies are small (the vendor examples are a few hundred bytes; a Google error with
/// details a few KiB); 64 KiB keeps every real one whole while bounding what a hostile or
/// broken server can make us hold. It is also hyper's default read buffer size.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

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

/// The layer's settings, copied into each service and each response future.
///
/// Services are cloned and futures made on every call (`service.clone().oneshot(..)`), so an
/// `Arc` here would cost two atomic read-modify-writes per copy. A decoder of built-in formats
/// with default hints (every preset's) is just its `Builtins`, so those settings are plain
/// values; only a decoder with custom formats or hints is shared.
#[derive(Clone)]
pub(crate) enum Settings {
    Inline {
        builtins: Builtins,
        inspect_success: bool,
        max_body: usize,
    },
    Shared(Arc<Config>),
}

/// The settings of a decoder that cannot be inline.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    decoder: Decoder,
    max_body: usize,
    inspect_success: bool,
}

impl Settings {
    fn new(decoder: Decoder) -> Self {
        let inspect_success = decoder.has_in_band_errors();
        match decoder.builtins_only() {
            Some(builtins) => Settings::Inline {
                builtins,
                inspect_success,
                max_body: DEFAULT_MAX_BODY,
            },
            None => Settings::Shared(Arc::new(Config {
                decoder,
                max_body: DEFAULT_MAX_BODY,
                inspect_success,
            })),
        }
    }

    pub(crate) fn max_body(&self) -> usize {
        match self {
            Settings::Inline { max_body, .. } => *max_body,
            Settings::Shared(config) => config.max_body,
        }
    }

    pub(crate) fn inspect_success(&self) -> bool {
        match self {
            Settings::Inline {
                inspect_success, ..
            } => *inspect_success,
            Settings::Shared(config) => config.inspect_success,
        }
    }

    /// Runs `f` with the decoder. Rebuilding a built-in decoder allocates nothing.
    fn with_decoder<T>(&self, f: impl FnOnce(&Decoder) -> T) -> T {
        match self {
            Settings::Inline { builtins, .. } => f(&Decoder::from_builtins(*builtins)),
            Settings::Shared(config) => f(&config.decoder),
        }
    }

    /// Decodes the (possibly cut) body of a response with an error status.
    pub(crate) fn decode_error(&self, parts: &Parts, body: Bytes) -> ApiError {
        self.with_decoder(|d| {
            d.decode_error_status(parts.status, &parts.headers, body, SystemTime::now())
        })
    }

    /// The in-band error in the whole body of a success, if there is one.
    pub(crate) fn decode_in_band(&self, parts: &Parts, body: Bytes) -> Option<ApiError> {
        self.with_decoder(|d| d.decode(parts.status, &parts.headers, body))
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.with_decoder(|decoder| {
            f.debug_struct("Config")
                .field("decoder", decoder)
                .field("max_body", &self.max_body())
                .field("inspect_success", &self.inspect_success())
                .finish()
        })
    }
}

impl Default for ErrorBodyLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ErrorBodyLayer {
    /// Auto-detects every built-in format; reads at most [`DEFAULT_MAX_BODY`] bytes; does not
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
        match &mut self.config {
            Settings::Inline { max_body, .. } => *max_body = bytes,
            // Builders run before the layer is shared; clone the config if it already is.
            Settings::Shared(config) => Arc::make_mut(config).max_body = bytes,
        }
        self
    }

    /// Whether to inspect JSON success bodies (up to the cap) for in-band errors. On by default
    /// only for a decoder whose chosen format needs it ([`Decoder::has_in_band_errors`]).
    pub fn inspect_success(mut self, inspect: bool) -> Self {
        match &mut self.config {
            Settings::Inline {
                inspect_success, ..
            } => *inspect_success = inspect,
            Settings::Shared(config) => Arc::make_mut(config).inspect_success = inspect,
        }
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
