//! [`CircuitState`]: what a key's circuit is doing, as a [`Circuits`](crate::Circuits) handle
//! shows it.

use tokio::time::Instant;

/// What a key's circuit is doing now.
///
/// ```
/// use towline_breaker::{CircuitBreakerLayer, CircuitState};
///
/// let layer = CircuitBreakerLayer::new();
/// layer.circuits().force_open("api.example");
/// assert_eq!(layer.circuits().state("api.example"), Some(CircuitState::ForcedOpen));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CircuitState {
    /// Calls go; the sampling window holds `calls` judged outcomes, `failures` of them failed.
    Closed {
        /// Judged calls in the sampling window.
        calls: u64,
        /// Failed calls among them.
        failures: u64,
    },
    /// Calls fail at once until `until`; the next call after it is a probe.
    Open {
        /// When the break ends.
        until: Instant,
    },
    /// Probe calls are out; other calls fail at once until one decides.
    HalfOpen {
        /// Probes sent and not yet answered.
        probes_in_flight: u32,
    },
    /// Held open by hand ([`Circuits::force_open`](crate::Circuits::force_open)) until closed
    /// by hand.
    ForcedOpen,
}
