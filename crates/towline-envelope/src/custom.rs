//! [`ErrorFormat`]: a user's own error-body format, tried before the built-in ones.

use http::StatusCode;
use serde_json::Value;
use towline_core::ApiError;

/// A user's own error-body format: a few lines to plug it into [`Decoder`](crate::Decoder) and
/// [`ErrorBodyLayer`](crate::ErrorBodyLayer).
///
/// Return `None` when the body does not have your shape, so other formats can be tried.
///
/// ```
/// use http::StatusCode;
/// use serde_json::Value;
/// use towline_core::{ApiCode, ApiError, ApiFormat};
/// use towline_envelope::{Decoder, ErrorFormat};
///
/// /// Acme sends `{"fault": {"id": 17, "text": "..."}}`.
/// struct Acme;
///
/// impl ErrorFormat for Acme {
///     fn name(&self) -> &'static str {
///         "acme"
///     }
///
///     fn decode(&self, status: StatusCode, body: &Value) -> Option<ApiError> {
///         let fault = body.get("fault")?;
///         let mut err = ApiError::new(status, ApiFormat::Custom(self.name()));
///         err.code = fault.get("id")?.as_i64().map(ApiCode::Number);
///         err.message = fault.get("text")?.as_str().map(str::to_owned);
///         Some(err)
///     }
/// }
///
/// let decoder = Decoder::new().with_format(Acme);
/// let body = br#"{"fault": {"id": 17, "text": "quota exceeded"}}"#;
/// let err = decoder
///     .decode(StatusCode::BAD_REQUEST, &http::HeaderMap::new(), &body[..])
///     .unwrap();
/// assert_eq!(err.format, ApiFormat::Custom("acme"));
/// assert_eq!(err.code, Some(ApiCode::Number(17)));
/// assert_eq!(err.message.as_deref(), Some("quota exceeded"));
/// ```
pub trait ErrorFormat: Send + Sync + 'static {
    /// The format's name, recorded as [`ApiFormat::Custom`](towline_core::ApiFormat::Custom).
    fn name(&self) -> &'static str;

    /// Decodes a parsed JSON body of a response with `status`, or `None` if it is not this
    /// format.
    fn decode(&self, status: StatusCode, body: &Value) -> Option<ApiError>;

    /// Whether this format reports errors inside successful (2xx) responses. If it does,
    /// [`decode`](ErrorFormat::decode) is also called on small JSON success bodies and must
    /// return `None` for a real success. Defaults to `false`.
    fn has_in_band_errors(&self) -> bool {
        false
    }
}
