//! Hedged requests: [`HedgeLayer`] sends a second copy of a slow idempotent request and keeps
//! the first answer. See [`HedgeLayer`] for the rules.

mod future;
mod latency;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::{DEFAULT_MIN_SAMPLES, DEFAULT_WINDOW, HedgeLayer, InvalidHedge};
pub use service::Hedge;
