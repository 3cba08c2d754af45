//! `RateLimitLayer`: a gate per key (the request's authority by default) shared by all clones,
//! closed until the instant a server asked for (`Retry-After`, `X-Wait-Seconds`, ...; parsed by
//! [`towline_core::HintReader`]), with fail-fast past `max_wait` or the
//! [`towline_core::Deadline`], and optional client-side pacing to a known quota.
//!
//! **Status:** not built yet (issue 6).
