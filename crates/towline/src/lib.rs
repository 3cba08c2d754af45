//! towline: resilience middleware for outbound HTTP, as composable tower layers.
//!
//! This facade will re-export every layer crate behind features, offer a `prelude`, a
//! `ServiceBuilderExt`, the standard pipeline and per-vendor presets (issue 8). Today it
//! re-exports the shared vocabulary, [`towline_core`].
//!
//! ```
//! use towline::core::{Error, ErrorKind};
//!
//! let err = Error::from(towline::core::BoxError::from("boom"));
//! assert_eq!(err.kind(), ErrorKind::Other);
//! ```

pub use towline_core as core;
