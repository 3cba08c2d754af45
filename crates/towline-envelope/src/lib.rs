//! Decode the error bodies of real APIs into one typed [`ApiError`](towline_core::ApiError).
//!
//! Each vendor wraps its errors in its own JSON envelope. This crate knows the common ones and
//! turns each into the model of `towline-core`, so the rest of the stack (retry, rate-limit,
//! auth) and the user act on one type: the HTTP status, which format matched, the vendor's own
//! code, the message, the target (field, header, JSON pointer, method), nested errors, what it
//! means ([`ApiErrorKind`](towline_core::ApiErrorKind), with the auth reason), the retry hint
//! and the raw body (bounded).
//!
//! | [`Format`] | shape | notes |
//! |---|---|---|
//! | IXON APIv2 | `{"type":"Error","data":[{"message","propertyName"}],"status":"error"}` | success bodies share the envelope; auth messages ("Invalid value" on `Authorization`, "2FA is required", "SSO is required", ...) become distinct [`AuthReason`](towline_core::AuthReason)s |
//! | Attraqt | `{"code":<number>,"message","details":[]}` | the body code (gRPC-style) is kept apart from the HTTP status |
//! | Open2b | `{"status":"error","error":{"field","type","description"}}` | sent with HTTP **200**: in-band; non-JSON replies ("403 Forbidden, malformed key") too |
//! | Telecom X | `{"error":{"code","status","message","path"?,"check"?,"inner"?}}` | 401 codes `expired`, `credentials_invalid`, `format_error`, `invalid_token`; a stray space in a key and unquoted keys are tolerated |
//! | RFC 9457 | `application/problem+json` or a problem-shaped body | the `errors` extension list becomes details |
//! | Google APIs | `{"error":{"code","message","status","details"}}` | `RetryInfo` becomes the retry hint, `BadRequest` violations details |
//! | Stripe | `{"error":{"type","code","message","param"}}` | |
//! | GitHub | `{"message","documentation_url","errors"}` | |
//! | JSON:API | `{"errors":[{"status":"422",...}]}` | `status` is a string |
//! | your own | [`ErrorFormat`] | a trait of two methods |
//!
//! Use [`decode`] (or a configured [`Decoder`]) on a response you hold, or put
//! [`ErrorBodyLayer`] in a tower stack: non-success responses become `Err` carrying the
//! `ApiError`, with the body read capped (64 KiB by default), while successes pass untouched.
//!
//! # Decoding an IXON 401
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use towline_core::{ApiErrorKind, ApiFormat, AuthReason};
//!
//! let body = br#"{
//!     "type": "Error",
//!     "data": [{ "message": "Invalid value", "propertyName": "Authorization" }],
//!     "moreAfter": null,
//!     "status": "error"
//! }"#;
//! let err = towline_envelope::decode(StatusCode::UNAUTHORIZED, &HeaderMap::new(), &body[..]).unwrap();
//! assert_eq!(err.format, ApiFormat::Ixon);
//! assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::InvalidToken));
//! assert!(err.auth_reason().unwrap().is_refreshable());
//! ```
//!
//! # An Open2b error inside a 200
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use towline_core::{ApiCode, ApiErrorKind, Target};
//!
//! let body = br#"{"status":"error","error":{"field":"name","type":"Malformed","description":"Name is not syntactically correct"}}"#;
//! let err = towline_envelope::decode(StatusCode::OK, &HeaderMap::new(), &body[..]).unwrap();
//! assert_eq!(err.code, Some(ApiCode::from("Malformed")));
//! assert_eq!(err.kind, ApiErrorKind::Validation);
//! assert_eq!(err.target, Some(Target::Field("name".into())));
//! ```
//!
//! # Adding your own format
//!
//! See [`ErrorFormat`]: implement `name` and `decode`, then
//! `Decoder::new().with_format(YourFormat)`.

mod body;
mod capped;
mod custom;
mod cutoff;
mod decoder;
mod formats;
mod future;
mod generic;
mod json;
mod layer;
mod public;
mod service;
mod settings;
mod tree;

pub use body::ResponseBody;
pub use custom::ErrorFormat;
pub use decoder::{Decoder, MAX_DETAILS, decode};
pub use future::ResponseFuture;
pub use layer::ErrorBodyLayer;
pub use service::ErrorBody;
pub use settings::DEFAULT_MAX_BODY;
/// The built-in error-body formats are [`towline_core::ApiFormat`]'s vendors, under the name
/// this crate has always used: `Format::Open2b` and `ApiFormat::Open2b` are one value.
///
/// ```
/// use towline_core::ApiFormat;
/// use towline_envelope::Format;
///
/// assert_eq!(Format::Open2b, ApiFormat::Open2b);
/// assert!(Format::ALL.iter().all(|f| f.to_string() != "unrecognized"));
/// ```
pub use towline_core::ApiFormat as Format;
