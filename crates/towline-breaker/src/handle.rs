//! [`Circuits`]: a handle on a layer's circuits, to look at them and force them.

use std::fmt;
use std::sync::Arc;

use crate::circuit::Circuit;
use crate::registry::Registry;
use crate::state::CircuitState;

/// A handle on the circuits of one [`CircuitBreakerLayer`](crate::CircuitBreakerLayer) (shared
/// by its clones and their services): each key's state, and forcing a circuit open or closed.
///
/// ```
/// use towline_breaker::{CircuitBreakerLayer, CircuitState};
///
/// let layer = CircuitBreakerLayer::new();
/// let circuits = layer.circuits();
/// // Take a host out of rotation during its maintenance window ...
/// circuits.force_open("api.example");
/// assert_eq!(circuits.state("api.example"), Some(CircuitState::ForcedOpen));
/// // ... and put it back with fresh counts.
/// circuits.force_closed("api.example");
/// assert_eq!(
///     circuits.state("api.example"),
///     Some(CircuitState::Closed { calls: 0, failures: 0 })
/// );
/// ```
#[derive(Clone)]
pub struct Circuits {
    registry: Arc<Registry<Circuit>>,
}

impl fmt::Debug for Circuits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the keys: they may be secrets.
        f.debug_struct("Circuits")
            .field("keys", &self.len())
            .finish()
    }
}

impl Circuits {
    pub(crate) fn new(registry: Arc<Registry<Circuit>>) -> Self {
        Circuits { registry }
    }

    /// The state of `key`'s circuit, or `None` if the layer keeps none for it (never called,
    /// or forgotten while idle: it would be closed with empty counts).
    ///
    /// ```
    /// let circuits = towline_breaker::CircuitBreakerLayer::new().circuits();
    /// assert_eq!(circuits.state("never.called"), None);
    /// ```
    pub fn state(&self, key: &str) -> Option<CircuitState> {
        Some(self.registry.get(key)?.state())
    }

    /// Every key the layer keeps a circuit for, with its state, in no particular order.
    ///
    /// ```
    /// let circuits = towline_breaker::CircuitBreakerLayer::new().circuits();
    /// circuits.force_open("a.example");
    /// assert_eq!(circuits.list().len(), 1);
    /// ```
    pub fn list(&self) -> Vec<(String, CircuitState)> {
        self.registry
            .all()
            .into_iter()
            .map(|circuit| (circuit.key.to_string(), circuit.state()))
            .collect()
    }

    /// Opens `key`'s circuit and holds it open (calls fail at once, no probes) until
    /// [`force_closed`](Self::force_closed). Works past the layer's key bound.
    ///
    /// ```
    /// let circuits = towline_breaker::CircuitBreakerLayer::new().circuits();
    /// circuits.force_open("api.example");
    /// ```
    pub fn force_open(&self, key: &str) {
        self.registry.get_or_insert(key).force_open();
    }

    /// Closes `key`'s circuit now, whatever its state, with empty counts and the first break
    /// length again. `false` if the layer keeps no circuit for `key` (it is closed already).
    ///
    /// ```
    /// let circuits = towline_breaker::CircuitBreakerLayer::new().circuits();
    /// assert!(!circuits.force_closed("api.example"));
    /// ```
    pub fn force_closed(&self, key: &str) -> bool {
        match self.registry.get(key) {
            Some(circuit) => {
                circuit.force_closed();
                true
            }
            None => false,
        }
    }

    /// How many keys the layer keeps a circuit for, idle ones not yet forgotten included.
    ///
    /// ```
    /// assert_eq!(towline_breaker::CircuitBreakerLayer::new().circuits().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.registry.len()
    }

    /// Whether the layer keeps no circuit.
    ///
    /// ```
    /// assert!(towline_breaker::CircuitBreakerLayer::new().circuits().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every idle circuit now (new keys forget a few at a time): closed with nothing
    /// in its window, or open and not called for a whole window past its break.
    ///
    /// ```
    /// let circuits = towline_breaker::CircuitBreakerLayer::new().circuits();
    /// circuits.sweep();
    /// ```
    pub fn sweep(&self) {
        self.registry.sweep();
    }
}
