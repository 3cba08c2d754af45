//! A per-key concurrency limit (a bulkhead): see [`BulkheadLayer`](crate::BulkheadLayer).

mod compartment;
mod future;
mod layer;
mod service;

pub use future::BulkheadFuture;
pub use layer::BulkheadLayer;
pub use service::Bulkhead;
