//! [`ApiError`]: an error the server described in its response body, as one typed model.
//!
//! The model lives in core so every layer (retry, rate-limit, auth) can act on a decoded body
//! without depending on the decoder; `towline-envelope` fills it in from each vendor's format.

use std::fmt;

use bytes::Bytes;
use http::StatusCode;

use crate::failures::AuthReason;
use crate::hint::RetryHint;
use crate::members::Members;

/// Which error-body format an [`ApiError`] was decoded from: one of the vendor formats
/// `towline-envelope` decodes, a user's own, or none.
///
/// `towline-envelope` re-exports this type as `Format` and chooses its decoders with it
/// (`Decoder::only(Format::Open2b)`).
///
/// ```
/// use towline_core::ApiFormat;
///
/// assert_eq!(ApiFormat::Ixon.to_string(), "IXON APIv2");
/// assert_eq!(ApiFormat::Custom("acme").to_string(), "acme");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiFormat {
    /// IXON Cloud APIv2: `{"type":"Error","data":[{"message","propertyName"}],"status":"error"}`.
    Ixon,
    /// Attraqt Items API (google.rpc.Status): `{"code":<number>,"message","details":[]}`.
    Attraqt,
    /// Open2b: `{"status":"error","error":{"field","type","description"}}`, sent with HTTP 200.
    Open2b,
    /// Telecom X: `{"error":{"code","status","message","path"?,"check"?,"inner"?}}`.
    TelecomX,
    /// RFC 9457 problem details (`application/problem+json`):
    /// `{"type","title","status","detail","instance", ...}`.
    Problem,
    /// Google APIs: `{"error":{"code","message","status","details":[{"@type",...}]}}`.
    Google,
    /// Stripe: `{"error":{"type","code","message","param"}}`.
    Stripe,
    /// GitHub REST: `{"message","documentation_url","errors":[...]}`.
    GitHub,
    /// JSON:API: `{"errors":[{"status":"422","code","title","detail","source"}]}`.
    JsonApi,
    /// A user-defined format, by name.
    Custom(&'static str),
    /// No format matched: only the status (and the raw body) are known.
    Unrecognized,
}

impl ApiFormat {
    /// Every vendor format (neither [`Custom`](ApiFormat::Custom) nor
    /// [`Unrecognized`](ApiFormat::Unrecognized)), in the order `towline-envelope`'s
    /// auto-detection tries them.
    ///
    /// The order puts the most specific shapes first: Open2b and IXON both say
    /// `"status":"error"` but differ in their other keys; Telecom X, Google and Stripe all wrap
    /// an `error` object and differ in its field types; a problem (top-level `title`/`detail`)
    /// may carry an `errors` list, so it comes before GitHub and JSON:API; Attraqt's bare
    /// `{code, message}` is the least specific and comes last.
    ///
    /// ```
    /// use towline_core::ApiFormat;
    ///
    /// assert_eq!(ApiFormat::ALL[0], ApiFormat::Open2b);
    /// assert!(!ApiFormat::ALL.contains(&ApiFormat::Unrecognized));
    /// ```
    pub const ALL: [ApiFormat; 9] = [
        ApiFormat::Open2b,
        ApiFormat::Ixon,
        ApiFormat::TelecomX,
        ApiFormat::Google,
        ApiFormat::Stripe,
        ApiFormat::Problem,
        ApiFormat::GitHub,
        ApiFormat::JsonApi,
        ApiFormat::Attraqt,
    ];

    /// Whether this format can report an error inside a successful (2xx) response, so that
    /// success bodies must be inspected: Open2b sends every error as HTTP 200. `false` for
    /// [`Custom`](ApiFormat::Custom) (a user's format says so itself) and
    /// [`Unrecognized`](ApiFormat::Unrecognized).
    ///
    /// ```
    /// use towline_core::ApiFormat;
    ///
    /// assert!(ApiFormat::Open2b.has_in_band_errors());
    /// assert!(!ApiFormat::Problem.has_in_band_errors());
    /// ```
    pub const fn has_in_band_errors(self) -> bool {
        matches!(self, ApiFormat::Open2b)
    }
}

impl fmt::Display for ApiFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiFormat::Ixon => "IXON APIv2",
            ApiFormat::Attraqt => "Attraqt",
            ApiFormat::Open2b => "Open2b",
            ApiFormat::TelecomX => "Telecom X",
            ApiFormat::Problem => "problem+json",
            ApiFormat::Google => "Google API",
            ApiFormat::Stripe => "Stripe",
            ApiFormat::GitHub => "GitHub",
            ApiFormat::JsonApi => "JSON:API",
            ApiFormat::Custom(name) => name,
            ApiFormat::Unrecognized => "unrecognized",
        })
    }
}

/// A vendor's own error code: some send numbers, some strings.
///
/// ```
/// use towline_core::ApiCode;
///
/// assert_eq!(ApiCode::from(5).to_string(), "5");
/// assert_eq!(ApiCode::from("expired").to_string(), "expired");
/// assert_eq!(ApiCode::from("expired"), "expired");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ApiCode {
    /// A numeric code (Attraqt's gRPC codes, Google's `code`).
    Number(i64),
    /// A textual code (Telecom X's `expired`, Stripe's `card_declined`).
    Text(String),
}

impl From<i64> for ApiCode {
    fn from(code: i64) -> Self {
        ApiCode::Number(code)
    }
}

impl From<&str> for ApiCode {
    fn from(code: &str) -> Self {
        ApiCode::Text(code.to_owned())
    }
}

impl From<String> for ApiCode {
    fn from(code: String) -> Self {
        ApiCode::Text(code)
    }
}

impl PartialEq<&str> for ApiCode {
    fn eq(&self, other: &&str) -> bool {
        matches!(self, ApiCode::Text(text) if text == other)
    }
}

impl PartialEq<i64> for ApiCode {
    fn eq(&self, other: &i64) -> bool {
        matches!(self, ApiCode::Number(n) if n == other)
    }
}

impl fmt::Display for ApiCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiCode::Number(n) => write!(f, "{n}"),
            ApiCode::Text(text) => f.write_str(text),
        }
    }
}

/// What part of the request an error is about.
///
/// ```
/// use towline_core::Target;
///
/// assert_eq!(Target::Header("Api-Company".into()).to_string(), "header Api-Company");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// A field of the request body or a property (`address.zip`, `propertyName`).
    Field(String),
    /// A request header (`Authorization`).
    Header(String),
    /// A JSON pointer into the request body (RFC 6901, JSON:API `source.pointer`).
    Pointer(String),
    /// A query or path parameter (Stripe `param`, JSON:API `source.parameter`).
    Parameter(String),
    /// The API method or endpoint.
    Method(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Field(name) => write!(f, "field {name}"),
            Target::Header(name) => write!(f, "header {name}"),
            Target::Pointer(pointer) => write!(f, "pointer {pointer}"),
            Target::Parameter(name) => write!(f, "parameter {name}"),
            Target::Method(name) => write!(f, "method {name}"),
        }
    }
}

/// What an [`ApiError`] means for the caller.
///
/// ```
/// use http::StatusCode;
/// use towline_core::{ApiErrorKind, AuthReason};
///
/// assert_eq!(ApiErrorKind::from_status(StatusCode::TOO_MANY_REQUESTS), ApiErrorKind::RateLimited);
/// assert_eq!(
///     ApiErrorKind::from_status(StatusCode::UNAUTHORIZED),
///     ApiErrorKind::Auth(AuthReason::Unknown)
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// The credentials were refused, for this reason (401, or a vendor's auth message).
    Auth(AuthReason),
    /// Authenticated but not allowed (403): fix the roles, do not retry.
    Forbidden,
    /// The resource does not exist (404, 410).
    NotFound,
    /// The request conflicts with the resource's state (409).
    Conflict,
    /// The request is invalid (400, 422, a vendor's validation error).
    Validation,
    /// Too many requests: a 429, or a response its format or headers mark as a rate limit
    /// (GitHub's 403 with `x-ratelimit-remaining: 0` or `retry-after`, Google's legacy 403
    /// `rateLimitExceeded`, Stripe's 400 `rate_limit`). Retry after the server's wait.
    RateLimited,
    /// A payment was declined (Stripe's `card_error`, usually with HTTP 402 and a
    /// `decline_code`): the request was valid, the card or account said no. Do not retry
    /// without a change from the customer.
    PaymentDeclined,
    /// The service is temporarily unavailable (503).
    Unavailable,
    /// The server failed (other 5xx).
    Server,
    /// Anything else.
    Other,
}

impl ApiErrorKind {
    /// The kind a status implies when the body says nothing more precise. A 402 is
    /// [`Other`](ApiErrorKind::Other): only a format can say a payment was declined.
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => ApiErrorKind::Auth(AuthReason::Unknown),
            403 => ApiErrorKind::Forbidden,
            404 | 410 => ApiErrorKind::NotFound,
            409 => ApiErrorKind::Conflict,
            400 | 422 => ApiErrorKind::Validation,
            429 => ApiErrorKind::RateLimited,
            503 => ApiErrorKind::Unavailable,
            500..=599 => ApiErrorKind::Server,
            _ => ApiErrorKind::Other,
        }
    }
}

impl fmt::Display for ApiErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiErrorKind::Auth(reason) => write!(f, "auth ({reason})"),
            ApiErrorKind::Forbidden => f.write_str("forbidden"),
            ApiErrorKind::NotFound => f.write_str("not found"),
            ApiErrorKind::Conflict => f.write_str("conflict"),
            ApiErrorKind::Validation => f.write_str("validation"),
            ApiErrorKind::RateLimited => f.write_str("rate limited"),
            ApiErrorKind::PaymentDeclined => f.write_str("payment declined"),
            ApiErrorKind::Unavailable => f.write_str("unavailable"),
            ApiErrorKind::Server => f.write_str("server error"),
            ApiErrorKind::Other => f.write_str("other"),
        }
    }
}

/// An error the server described in its response: the HTTP status plus what the body said.
///
/// Beside the display [`code`](ApiError::code) and [`message`](ApiError::message), the
/// machine-readable fields have typed places: [`reason`](ApiError::reason) (Google's
/// `ErrorInfo.reason`, Stripe's `decline_code`), [`doc_url`](ApiError::doc_url) and
/// [`instance`](ApiError::instance); anything else the body said is one
/// [`members`](ApiError::members) lookup away.
///
/// Built by an error-body decoder (`towline-envelope`) and carried inside a
/// [`BoxError`](crate::BoxError); [`Error::api`](crate::Error::api) gets it back.
/// The fields are public to read and to fill in; `#[non_exhaustive]` keeps new fields from
/// breaking decoders, so build one with [`ApiError::new`].
///
/// ```
/// use http::StatusCode;
/// use towline_core::{ApiError, ApiErrorKind, ApiFormat, AuthReason, Target};
///
/// let mut err = ApiError::new(StatusCode::UNAUTHORIZED, ApiFormat::Ixon);
/// err.message = Some("Invalid value".into());
/// err.target = Some(Target::Header("Authorization".into()));
/// err.kind = ApiErrorKind::Auth(AuthReason::InvalidToken);
/// assert_eq!(
///     err.to_string(),
///     "401 Unauthorized (IXON APIv2, auth (token invalid)): Invalid value [header Authorization]"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status of the response (200 for Open2b's in-band errors).
    pub status: StatusCode,
    /// The body format that matched.
    pub format: ApiFormat,
    /// The vendor's own error code, kept apart from the HTTP status.
    pub code: Option<ApiCode>,
    /// The human-readable message.
    pub message: Option<String>,
    /// What part of the request the error is about.
    pub target: Option<Target>,
    /// The machine-readable reason, when the format has one apart from its display code:
    /// Google's `ErrorInfo.reason` (AIP-193, `"RATE_LIMIT_EXCEEDED"`) or legacy
    /// `errors[].reason` (`"userRateLimitExceeded"`), Stripe's `decline_code`.
    pub reason: Option<String>,
    /// A link to documentation about this error: GitHub's `documentation_url`, Stripe's
    /// `doc_url`, a problem's `type` URI, JSON:API's `links.about`, Google's `Help` link.
    pub doc_url: Option<String>,
    /// What identifies this occurrence of the error: a problem's `instance` (RFC 9457 §3.1.5),
    /// a JSON:API error's `id`.
    pub instance: Option<String>,
    /// The JSON object the error was decoded from, for any other member.
    pub members: Members,
    /// Nested errors (IXON's `data`, Telecom X's `inner`, JSON:API's `errors`, ...), each with
    /// the parent's status unless the body gave its own.
    pub details: Vec<ApiError>,
    /// How many nested errors the body listed past those in [`details`](ApiError::details): a
    /// decoder keeps the first ones of each list (towline-envelope keeps 100), so that a body
    /// of many tiny errors cannot make an error hundreds of times its size. The rest are still
    /// in [`body`](ApiError::body).
    pub details_omitted: usize,
    /// What the error means for the caller.
    pub kind: ApiErrorKind,
    /// A wait the server asked for, from headers or body.
    pub retry_hint: Option<RetryHint>,
    /// The raw body, up to the decoder's cap.
    pub body: Bytes,
    /// Whether the body was longer than the cap and [`body`](ApiError::body) is a prefix.
    pub body_truncated: bool,
}

impl ApiError {
    /// An error with `status` decoded as `format`, its kind from the status, nothing else known.
    pub fn new(status: StatusCode, format: ApiFormat) -> Self {
        ApiError {
            status,
            format,
            code: None,
            message: None,
            target: None,
            reason: None,
            doc_url: None,
            instance: None,
            members: Members::default(),
            details: Vec::new(),
            details_omitted: 0,
            kind: ApiErrorKind::from_status(status),
            retry_hint: None,
            body: Bytes::new(),
            body_truncated: false,
        }
    }

    /// Whether the server asked for a wait: a rate limit (of any status, see
    /// [`ApiErrorKind::RateLimited`]), a 429, or an unavailable service (503). Only these get
    /// a [`retry_hint`](ApiError::retry_hint) from the response headers, and only these close
    /// a rate-limit gate.
    ///
    /// ```
    /// use http::StatusCode;
    /// use towline_core::{ApiError, ApiErrorKind, ApiFormat};
    ///
    /// let mut err = ApiError::new(StatusCode::FORBIDDEN, ApiFormat::GitHub);
    /// assert!(!err.asks_to_wait());
    /// err.kind = ApiErrorKind::RateLimited;
    /// assert!(err.asks_to_wait());
    /// ```
    pub fn asks_to_wait(&self) -> bool {
        matches!(
            self.kind,
            ApiErrorKind::RateLimited | ApiErrorKind::Unavailable
        ) || matches!(self.status.as_u16(), 429 | 503)
    }

    /// Attaches `body` to [`members`](ApiError::members) of this error and of all its details
    /// (recursively), read with `parse` on first use. Decoders call it once per response.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::StatusCode;
    /// use serde_json::json;
    /// use towline_core::{ApiError, ApiFormat};
    ///
    /// let mut err = ApiError::new(StatusCode::BAD_REQUEST, ApiFormat::Custom("acme"));
    /// err.attach_members(Bytes::from_static(br#"{"trace":"abc"}"#), |b| serde_json::from_slice(b).ok());
    /// assert_eq!(err.members.get("trace"), Some(&json!("abc")));
    /// ```
    pub fn attach_members(&mut self, body: Bytes, parse: fn(&[u8]) -> Option<serde_json::Value>) {
        self.members.attach(body, parse);
        fn share(details: &mut [ApiError], root: &Members) {
            for detail in details {
                detail.members.share_source(root);
                share(&mut detail.details, root);
            }
        }
        share(&mut self.details, &self.members);
    }

    /// The auth reason, when this error (or one of its details) is about credentials.
    ///
    /// ```
    /// use http::StatusCode;
    /// use towline_core::{ApiError, ApiErrorKind, ApiFormat, AuthReason};
    ///
    /// let mut err = ApiError::new(StatusCode::UNAUTHORIZED, ApiFormat::Ixon);
    /// let mut detail = ApiError::new(StatusCode::UNAUTHORIZED, ApiFormat::Ixon);
    /// detail.kind = ApiErrorKind::Auth(AuthReason::TwoFactorRequired);
    /// err.details.push(detail);
    /// assert_eq!(err.auth_reason(), Some(AuthReason::TwoFactorRequired));
    /// ```
    pub fn auth_reason(&self) -> Option<AuthReason> {
        let specific = |e: &ApiError| match e.kind {
            ApiErrorKind::Auth(reason) if reason != AuthReason::Unknown => Some(reason),
            _ => None,
        };
        specific(self)
            .or_else(|| self.details.iter().find_map(specific))
            .or(match self.kind {
                ApiErrorKind::Auth(reason) => Some(reason),
                _ => None,
            })
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {})", self.status, self.format, self.kind)?;
        if let Some(code) = &self.code {
            write!(f, " code {code}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        if let Some(target) = &self.target {
            write!(f, " [{target}]")?;
        }
        let more = self.details.len().saturating_add(self.details_omitted);
        if more > 0 {
            write!(f, " (+{more} more)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}
