//! `CircuitBreakerLayer`: when a server keeps failing, stop calling it for a while.
//!
//! Retrying into a chronic failure multiplies the load on a sick server and makes every caller
//! wait out its deadline. This layer keeps a circuit per key (the authority, or your
//! function), shared by every clone of the layer:
//!
//! - **closed**: calls go; outcomes are counted over a sliding window. It opens when at least
//!   [`DEFAULT_MIN_THROUGHPUT`] calls were counted and at least [`DEFAULT_FAILURE_RATIO`] of
//!   them failed over [`DEFAULT_SAMPLING_WINDOW`] (the defaults of Polly and of Microsoft's
//!   standard HTTP resilience handler), or, optionally, after N failures in a row;
//! - **open**: calls fail at once with [`CircuitOpen`](towline_core::CircuitOpen) (its own
//!   [`ErrorKind`](towline_core::ErrorKind::CircuitOpen)), not sent, for the break
//!   ([`DEFAULT_BREAK`]);
//! - **half-open**: after the break, a few probe calls go ([`DEFAULT_PROBES`]); if they
//!   succeed the circuit closes, if one fails it opens again for twice as long, up to
//!   [`DEFAULT_MAX_BREAK`].
//!
//! A failure is what towline's retry layer treats as the server's fault, read from core's
//! typed model: network errors, timeouts, 500, 502, 503, 504. A 4xx is an answer (a success for
//! the circuit); a 429 (or a 503 with a wait hint) counts nothing, nor does a call whose future
//! was dropped. [`Circuits`] shows each key's state and forces a circuit open or closed.
//!
//! Each transition emits one event `towline.circuit.state` (target `towline::breaker`; WARN
//! when the circuit opens, INFO otherwise) with `towline.circuit.key` (the authority, or
//! `<redacted>` for a `key_by` key), `towline.circuit.from`, `towline.circuit.to` (`closed`,
//! `open`, `half_open`, `forced_open`) and, on opening, `towline.circuit.break_ms`.
//!
//! Placed below the retry layer, an open circuit ends the call at once: the retry layer does
//! not retry a [`CircuitOpen`](towline_core::CircuitOpen).
//!
//! ```
//! use std::time::Duration;
//! use http::{Request, Response};
//! use tower::{BoxError, Layer, ServiceExt, service_fn};
//! use towline_breaker::{CircuitBreakerLayer, CircuitState, Settings};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let layer = CircuitBreakerLayer::with_settings(Settings::new().consecutive_failures(3)).unwrap();
//! let service = layer.layer(service_fn(|_req: Request<()>| async {
//!     Err::<Response<()>, BoxError>(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into())
//! }));
//! for _ in 0..3 {
//!     let request = Request::get("http://down.example/").body(()).unwrap();
//!     assert!(service.clone().oneshot(request).await.is_err());
//! }
//! assert!(matches!(
//!     layer.circuits().state("down.example"),
//!     Some(CircuitState::Open { .. })
//! ));
//! # }
//! ```

mod circuit;
mod future;
mod handle;
mod judge;
mod layer;
mod registry;
mod service;
mod settings;
mod state;
mod time;

pub use future::ResponseFuture;
pub use handle::Circuits;
pub use layer::CircuitBreakerLayer;
pub use registry::DEFAULT_MAX_KEYS;
pub use service::CircuitBreaker;
pub use settings::{
    DEFAULT_BREAK, DEFAULT_FAILURE_RATIO, DEFAULT_MAX_BREAK, DEFAULT_MIN_THROUGHPUT,
    DEFAULT_PROBES, DEFAULT_SAMPLING_WINDOW, InvalidSettings, MIN_SAMPLING_WINDOW, Settings,
};
pub use state::CircuitState;
