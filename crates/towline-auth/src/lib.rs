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
//!   that cannot be a header (a newline, a control byte) is an [`InvalidToken`] error.
//!
//! See [`TokenRefreshLayer`] for an example.

mod cache;
mod future;
mod layer;
mod oauth;
mod service;
mod token;

pub use future::ResponseFuture;
pub use layer::{DEFAULT_REFRESH_MARGIN, TokenRefreshBuilder, TokenRefreshLayer};
pub use oauth::ClientCredentials;
pub use service::TokenRefresh;
pub use token::{FnSource, InvalidToken, StaticToken, Token, TokenFuture, TokenSource, from_fn};
