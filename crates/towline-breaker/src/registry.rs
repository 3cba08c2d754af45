//! The circuits of one layer, by key: bounded, idle ones forgotten a few at a time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::time::Instant;

use crate::circuit::Circuit;
use crate::settings::Settings;
use crate::time::nanos;

/// The default bound on the keys a layer keeps a circuit for: 10 000, as the rate limit's
/// store. A circuit costs about two hundred bytes.
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// How many keys a new key looks at, oldest first, to forget the idle ones: enough that idle
/// keys go faster than one-off keys arrive, few enough that no call pays for a backlog.
const SWEEP_PER_NEW_KEY: usize = 32;

/// What every circuit of a layer reads: the settings and what is derived from them once.
pub(crate) struct Policy {
    pub(crate) settings: Settings,
    pub(crate) origin: Instant,
    pub(crate) bucket_ns: u64,
    pub(crate) ratio_ppm: u64,
    /// Whether keys may be logged (authorities, not `key_by` keys).
    pub(crate) log_keys: bool,
}

impl Policy {
    /// `settings` must have been validated.
    pub(crate) fn new(settings: Settings, log_keys: bool) -> Self {
        Policy {
            bucket_ns: (nanos(settings.sampling_window) / 10).max(1),
            ratio_ppm: settings.ratio_ppm(),
            origin: Instant::now(),
            settings,
            log_keys,
        }
    }
}

pub(crate) struct Registry {
    pub(crate) policy: Arc<Policy>,
    max_keys: usize,
    keys: RwLock<Keys>,
}

#[derive(Default)]
struct Keys {
    map: HashMap<Arc<str>, Arc<Circuit>>,
    /// Every key once, oldest first; a key looked at and kept goes to the back.
    order: VecDeque<Arc<str>>,
}

impl Registry {
    pub(crate) fn new(policy: Policy, max_keys: usize) -> Self {
        Registry {
            policy: Arc::new(policy),
            max_keys: max_keys.max(1),
            keys: RwLock::default(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Keys> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The circuit of `key`, made if there is room: `None` when the bound is reached and no
    /// key is idle (the call then goes unwatched: forgetting a busy key's history would be
    /// worse).
    pub(crate) fn circuit(&self, key: &str) -> Option<Arc<Circuit>> {
        if let Some(circuit) = self.read().map.get(key) {
            return Some(circuit.clone());
        }
        let mut keys = self.write();
        if let Some(circuit) = keys.map.get(key) {
            return Some(circuit.clone());
        }
        keys.sweep(Instant::now(), SWEEP_PER_NEW_KEY);
        if keys.map.len() >= self.max_keys {
            tracing::warn!(
                max_keys = self.max_keys,
                "circuit breaker full of busy keys: a new key's calls are not watched"
            );
            return None;
        }
        Some(keys.insert(key, &self.policy))
    }

    /// The circuit of `key` if there is one.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<Circuit>> {
        self.read().map.get(key).cloned()
    }

    /// The circuit of `key`, made whatever the bound (for an operator's explicit action).
    pub(crate) fn get_or_insert(&self, key: &str) -> Arc<Circuit> {
        let mut keys = self.write();
        match keys.map.get(key) {
            Some(circuit) => circuit.clone(),
            None => keys.insert(key, &self.policy),
        }
    }

    /// Every circuit, in no particular order.
    pub(crate) fn all(&self) -> Vec<Arc<Circuit>> {
        self.read().map.values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().map.len()
    }

    /// Forgets every idle circuit now.
    pub(crate) fn sweep(&self) {
        let mut keys = self.write();
        let all = keys.order.len();
        keys.sweep(Instant::now(), all);
    }
}

impl Keys {
    fn insert(&mut self, key: &str, policy: &Arc<Policy>) -> Arc<Circuit> {
        let key: Arc<str> = Arc::from(key);
        let circuit = Arc::new(Circuit::new(key.clone(), policy.clone()));
        self.map.insert(key.clone(), circuit.clone());
        self.order.push_back(key);
        circuit
    }

    /// Looks at up to `budget` keys, oldest first: forgets the idle ones, sends the others to
    /// the back. Calls still holding a forgotten circuit finish on it; it counts for nobody.
    fn sweep(&mut self, now: Instant, budget: usize) {
        for _ in 0..budget.min(self.order.len()) {
            let Some(key) = self.order.pop_front() else {
                break;
            };
            match self.map.get(&key) {
                Some(circuit) if circuit.is_idle(now) => {
                    self.map.remove(&key);
                }
                Some(_) => self.order.push_back(key),
                None => {}
            }
        }
        // Give memory back once the map is sparse (after a burst of one-off keys).
        if self.map.capacity() > 64 && self.map.len() < self.map.capacity() / 4 {
            self.map.shrink_to_fit();
            self.order.shrink_to_fit();
        }
    }
}
