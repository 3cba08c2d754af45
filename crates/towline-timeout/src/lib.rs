//! Two time limits for tower HTTP services:
//!
//! - `TimeoutLayer`: a per-attempt limit on the response head and, optionally, the body; fails
//!   with [`towline_core::Elapsed`].
//! - `DeadlineLayer`: one budget for the whole call; sets the [`towline_core::Deadline`]
//!   extension for inner layers and fails with [`towline_core::DeadlineExceeded`].
//!
//! **Status:** not built yet (issue 4); the error and extension types live in `towline-core`.
