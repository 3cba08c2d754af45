//! `TokenRefreshLayer`: bearer tokens and API keys, attached, refreshed before they expire,
//! and refreshed once — for everyone at once — when the server says a token went stale.
//!
//! Bearer tokens expire: IXON answers 401 "Invalid value" on `Authorization`, Telecom X 401
//! `expired` after 15 minutes, Attraqt asks clients to reuse tokens until they expire and to
//! refresh on 401. Hand-rolled, this becomes a refresh storm when many requests meet the same
//! expired token. This crate does it once:
//!
//! - a [`TokenSource`] gives tokens: [`StaticToken`] (an API key such as Open2b's `X-Key`),
//!   [`from_fn`] (any async closure), [`ClientCredentials`] (OAuth 2.0, RFC 6749 §4.4, through
//!   any tower HTTP service);
//! - [`TokenRefreshLayer`] caches the token (shared by clones), attaches it as a sensitive
//!   header, refreshes it [`DEFAULT_REFRESH_MARGIN`] before expiry, and on a refreshable 401
//!   refreshes once (single-flight) and replays once; anything else ends with a typed
//!   [`AuthError`](towline_core::AuthError) and its [`AuthReason`](towline_core::AuthReason);
//! - a [`Token`] never shows its secret in `Debug`, `Display`, errors or tracing, and a value
//!   that cannot be a header (a newline, a control byte) is an [`InvalidToken`] error;
//! - each token fetch ends with one INFO event `towline.auth.refresh` (target `towline::auth`):
//!   `towline.auth.reason` (`initial`, `expiring`, `expired`, `rejected`),
//!   `towline.auth.duration_ms` and `towline.auth.outcome` (`ok` or the error's kind), in the
//!   span of the call waiting for it; never the token.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use bytes::Bytes;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use tower::{BoxError, Layer, ServiceExt, service_fn};
//! use towline_auth::{Token, TokenRefreshLayer, from_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // A token endpoint that hands out "token-1", "token-2", ...
//! let fetches = Arc::new(AtomicUsize::new(0));
//! let counted = fetches.clone();
//! let source = from_fn(move || {
//!     let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
//!     async move { Token::new(format!("token-{n}")) }
//! });
//! // An API that has already revoked the first token.
//! let api = service_fn(|req: Request<Full<Bytes>>| async move {
//!     let status = if req.headers()["authorization"] == "Bearer token-1" {
//!         StatusCode::UNAUTHORIZED
//!     } else {
//!         StatusCode::OK
//!     };
//!     Ok::<_, BoxError>(Response::builder().status(status).body(()).unwrap())
//! });
//!
//! let client = TokenRefreshLayer::new(source).layer(api);
//! let response = client.oneshot(Request::new(Full::new(Bytes::new()))).await.unwrap();
//! // The 401 was answered with one refresh and one resend.
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(fetches.load(Ordering::SeqCst), 2);
//! # }
//! ```

mod cache;
mod future;
mod layer;
mod oauth;
mod service;
mod token;

pub use future::ResponseFuture;
pub use layer::{
    DEFAULT_FETCH_TIMEOUT, DEFAULT_REFRESH_MARGIN, TokenRefreshBuilder, TokenRefreshLayer,
};
pub use oauth::ClientCredentials;
pub use service::TokenRefresh;
pub use token::{FnSource, InvalidToken, StaticToken, Token, TokenFuture, TokenSource, from_fn};
