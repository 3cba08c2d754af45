//! A layer's per-key state (circuits, bulkhead compartments), by key: bounded, idle entries
//! forgotten a few at a time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use http::Request;
use tokio::time::Instant;

/// The default bound on the keys a layer keeps state for (a circuit, a bulkhead compartment):
/// 10 000, as the rate limit's store. A circuit costs about two hundred bytes, a compartment
/// about a hundred.
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// A `key_by` function: the key of a request, `None` for a request the layer leaves alone.
pub(crate) type KeyFn = dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync;

/// What a registry keeps per key.
pub(crate) trait Entry: Send + Sync + Sized {
    /// What every entry of a layer reads (settings and what is derived from them once).
    type Policy;
    /// The warning logged when a new key finds the registry full of busy entries.
    const FULL: &'static str;

    fn new(key: Arc<str>, policy: Arc<Self::Policy>) -> Self;

    /// Whether `entry` may be forgotten now. Called under the registry's write lock, where no
    /// call can take a new reference to it from the map.
    fn is_idle(entry: &Arc<Self>, now: Instant) -> bool;
}

/// How many keys a new key looks at, oldest first, to forget the idle ones: enough that idle
/// keys go faster than one-off keys arrive, few enough that no call pays for a backlog.
const SWEEP_PER_NEW_KEY: usize = 32;

pub(crate) struct Registry<E: Entry> {
    pub(crate) policy: Arc<E::Policy>,
    max_keys: usize,
    keys: RwLock<Keys<E>>,
}

/// Keys are hashed with foldhash, seeded per process: a lookup on every call, where SipHash
/// cost as much as the rest of the closed circuit's bookkeeping (see BENCHMARKS.md).
type Map<E> = HashMap<Arc<str>, Arc<E>, foldhash::fast::RandomState>;

struct Keys<E> {
    map: Map<E>,
    /// Every key once, oldest first; a key looked at and kept goes to the back.
    order: VecDeque<Arc<str>>,
}

impl<E> Default for Keys<E> {
    fn default() -> Self {
        Keys {
            map: Map::default(),
            order: VecDeque::new(),
        }
    }
}

impl<E: Entry> Registry<E> {
    pub(crate) fn new(policy: E::Policy, max_keys: usize) -> Self {
        Registry {
            policy: Arc::new(policy),
            max_keys: max_keys.max(1),
            keys: RwLock::default(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Keys<E>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Keys<E>> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of a request to `uri`'s authority: `None` when it has none, or when the bound
    /// is reached and no key is idle. (The request stays where it is: moving it in and out
    /// costs a copy on every call.)
    pub(crate) fn for_authority(&self, uri: &http::Uri) -> Option<Arc<E>> {
        uri.authority()
            .and_then(|authority| self.entry(authority.as_str()))
    }

    /// The entry of the key `key_fn` gives `request`, and the request back.
    pub(crate) fn for_key<B>(
        &self,
        key_fn: &KeyFn,
        request: Request<B>,
    ) -> (Option<Arc<E>>, Request<B>) {
        let (parts, body) = request.into_parts();
        let entry = key_fn(&parts).and_then(|key| self.entry(&key));
        (entry, Request::from_parts(parts, body))
    }

    /// The entry of `key`, made if there is room: `None` when the bound is reached and no key
    /// is idle (the call then goes unwatched: forgetting a busy key's state would be worse).
    pub(crate) fn entry(&self, key: &str) -> Option<Arc<E>> {
        if let Some(entry) = self.read().map.get(key) {
            return Some(entry.clone());
        }
        let mut keys = self.write();
        if let Some(entry) = keys.map.get(key) {
            return Some(entry.clone());
        }
        keys.sweep(Instant::now(), SWEEP_PER_NEW_KEY);
        if keys.map.len() >= self.max_keys {
            tracing::warn!(max_keys = self.max_keys, "{}", E::FULL);
            return None;
        }
        Some(keys.insert(key, &self.policy))
    }

    /// The entry of `key` if there is one.
    pub(crate) fn get(&self, key: &str) -> Option<Arc<E>> {
        self.read().map.get(key).cloned()
    }

    /// The entry of `key`, made whatever the bound (for an operator's explicit action).
    pub(crate) fn get_or_insert(&self, key: &str) -> Arc<E> {
        let mut keys = self.write();
        match keys.map.get(key) {
            Some(entry) => entry.clone(),
            None => keys.insert(key, &self.policy),
        }
    }

    /// Every entry, in no particular order.
    pub(crate) fn all(&self) -> Vec<Arc<E>> {
        self.read().map.values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().map.len()
    }

    /// Forgets every idle entry now.
    pub(crate) fn sweep(&self) {
        let mut keys = self.write();
        let all = keys.order.len();
        keys.sweep(Instant::now(), all);
    }
}

impl<E: Entry> Keys<E> {
    fn insert(&mut self, key: &str, policy: &Arc<E::Policy>) -> Arc<E> {
        let key: Arc<str> = Arc::from(key);
        let entry = Arc::new(E::new(key.clone(), policy.clone()));
        self.map.insert(key.clone(), entry.clone());
        self.order.push_back(key);
        entry
    }

    /// Looks at up to `budget` keys, oldest first: forgets the idle ones, sends the others to
    /// the back. Calls still holding a forgotten entry finish on it; it counts for nobody.
    fn sweep(&mut self, now: Instant, budget: usize) {
        for _ in 0..budget.min(self.order.len()) {
            let Some(key) = self.order.pop_front() else {
                break;
            };
            match self.map.get(&key) {
                Some(entry) if E::is_idle(entry, now) => {
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
