//! Decode vendor error bodies into [`towline_core::ApiError`]: IXON APIv2, Attraqt, Open2b
//! (including its in-band errors inside HTTP 200), Telecom X, RFC 9457 problem+json, Google
//! APIs, Stripe, GitHub, JSON:API and the user's own format; and `ErrorBodyLayer`, which turns
//! non-success responses into typed errors with a bounded body read.
//!
//! **Status:** not built yet (issue 3); the `ApiError` model it fills lives in `towline-core`.
