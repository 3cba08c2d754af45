//! `RetryLayer`: retries with exponential or constant backoff and jitter (none, full, equal,
//! decorrelated), a token-bucket retry budget shared by clones, idempotency rules for POST and
//! PATCH, server hints ([`towline_core::RetryHint`]) as the floor of the next delay, the
//! [`towline_core::Deadline`] respected, and request-body replay.
//!
//! **Status:** not built yet (issue 5).
