//! `TokenRefreshLayer`: attaches a bearer token (or API key) from a `TokenSource`, refreshes it
//! before it expires, and on a refreshable 401 refreshes once (single-flight across all
//! concurrent requests) and replays the request once. Other auth failures end with
//! [`towline_core::AuthError`] and its [`towline_core::AuthReason`].
//!
//! **Status:** not built yet (issue 7).
