//! [`InMemoryStore`]: gates and quota logs in this process, each forgotten once it expires.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::Quota;
use crate::store::{GateStore, Reservation, Slot, StoreFuture};
use crate::time::after;

/// The default bound on the keys an [`InMemoryStore`] keeps: 10 000. A key costs about a
/// hundred bytes plus its quota log (16 bytes a call: Open2b's 1000-call window is 16 kB), so
/// the bound keeps even a store full of busy paced keys within a few hundred MB, while
/// leaving room for one key per tenant of a large client.
pub const DEFAULT_MAX_KEYS: usize = 10_000;

/// How many expired entries one call removes at most: enough that expired entries go faster
/// than one-off keys arrive, few enough that no call pays for a backlog.
const SWEEP_PER_CALL: usize = 32;

/// How many stale expiry entries a full store looks past to find the entry expiring soonest.
const EVICT_TRIES: usize = 16;

/// A [`GateStore`] in this process's memory: the default.
///
/// Checking an open gate costs one atomic load while no gate anywhere is closed, and one map
/// lookup under a lock otherwise, whatever the number of keys. Entries are kept in the order
/// they expire: each call removes up to a few dozen expired ones (a gate that opened, a quota
/// log whose window passed), and the map gives memory back as it empties, so a burst of
/// one-off keys is cleared by the calls that follow it, or at once by [`sweep`](Self::sweep).
///
/// **At the bound** ([`with_max_keys`](Self::with_max_keys), [`DEFAULT_MAX_KEYS`]), a new key
/// first makes expired entries go; if none has expired, the entry that would expire soonest
/// is forgotten, with a `tracing` warning (without the key, which may be a secret): its gate
/// reopens, or its quota log restarts, early. That entry is the one whose loss shortens a
/// protection the least.
///
/// ```
/// use std::time::Duration;
/// use towline_ratelimit::{GateStore, InMemoryStore};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let store = InMemoryStore::with_max_keys(1000);
/// store.close("api.example", Duration::from_secs(5)).await.unwrap();
/// assert_eq!(store.len(), 1);
/// tokio::time::advance(Duration::from_secs(5)).await;
/// store.sweep();
/// assert!(store.is_empty());
/// # }
/// ```
pub struct InMemoryStore {
    /// How many entries have a gate (maybe opened, not yet swept): zero is the fast path.
    gates: AtomicUsize,
    max_keys: usize,
    /// Reservation ids are slot instants counted from here.
    epoch: Instant,
    entries: Mutex<Entries>,
}

// By hand: the keys may be secrets (an API key used as the key).
impl fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryStore")
            .field("keys", &self.len())
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl Default for InMemoryStore {
    fn default() -> Self {
        Self::with_max_keys(DEFAULT_MAX_KEYS)
    }
}

#[derive(Default)]
struct Entries {
    map: HashMap<Arc<str>, Entry>,
    /// One item per entry, by when it expires (or earlier: an extended gate is put back when
    /// its old time comes); items of removed entries are skipped by their id.
    expiry: BinaryHeap<Reverse<(Instant, u64, Arc<str>)>>,
    next_id: u64,
    gates: usize,
}

struct Entry {
    id: u64,
    gate: Option<Instant>,
    log: VecDeque<Instant>,
    per: Duration,
}

impl Entry {
    /// When nothing in this entry limits a call any more.
    fn expires(&self) -> Option<Instant> {
        let log = self.log.back().map(|last| after(*last, self.per));
        self.gate.max(log)
    }

    fn is_live(&self, now: Instant) -> bool {
        self.expires().is_some_and(|at| at > now)
    }
}

impl InMemoryStore {
    /// An empty store keeping at most [`DEFAULT_MAX_KEYS`] keys.
    ///
    /// ```
    /// let store = towline_ratelimit::InMemoryStore::new();
    /// assert!(store.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store keeping at most `max_keys` keys (at least 1). See the type for what
    /// happens at the bound.
    ///
    /// ```
    /// let store = towline_ratelimit::InMemoryStore::with_max_keys(100_000);
    /// # let _ = store;
    /// ```
    pub fn with_max_keys(max_keys: usize) -> Self {
        InMemoryStore {
            gates: AtomicUsize::new(0),
            max_keys: max_keys.max(1),
            epoch: Instant::now(),
            entries: Mutex::default(),
        }
    }

    /// How many keys have an entry (a gate, a quota log), expired ones not yet removed
    /// included.
    ///
    /// ```
    /// assert_eq!(towline_ratelimit::InMemoryStore::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether no key has an entry.
    ///
    /// ```
    /// assert!(towline_ratelimit::InMemoryStore::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every expired entry now (calls do it a few at a time); e.g. from a periodic
    /// task after a burst of one-off keys.
    ///
    /// ```
    /// let store = towline_ratelimit::InMemoryStore::new();
    /// store.sweep();
    /// ```
    pub fn sweep(&self) {
        let mut entries = self.lock();
        entries.sweep(Instant::now(), usize::MAX);
        self.publish(&entries);
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks, removes a few expired entries, and runs `f`.
    fn with<T>(&self, f: impl FnOnce(&mut Entries, Instant) -> T) -> T {
        let now = Instant::now();
        let mut entries = self.lock();
        entries.sweep(now, SWEEP_PER_CALL);
        let answer = f(&mut entries, now);
        self.publish(&entries);
        answer
    }

    fn publish(&self, entries: &Entries) {
        self.gates.store(entries.gates, Ordering::Release);
    }

    fn id_of(&self, slot: Instant) -> u64 {
        u64::try_from(slot.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }
}

impl Entries {
    /// Removes up to `budget` expired entries, and gives memory back once the map is sparse.
    fn sweep(&mut self, now: Instant, budget: usize) {
        for _ in 0..budget {
            match self.expiry.peek() {
                Some(Reverse((at, _, _))) if *at <= now => {}
                _ => break,
            }
            let Some(Reverse((_, id, key))) = self.expiry.pop() else {
                break;
            };
            let Some(entry) = self.map.get(&key).filter(|e| e.id == id) else {
                continue;
            };
            match entry.expires() {
                Some(at) if at > now => self.expiry.push(Reverse((at, id, key))),
                _ => self.remove(&key),
            }
        }
        if self.map.capacity() > 64 && self.map.len() * 4 < self.map.capacity() {
            self.map.shrink_to(self.map.len() * 2);
        }
        if self.expiry.capacity() > 64 && self.expiry.len() * 4 < self.expiry.capacity() {
            self.expiry.shrink_to(self.expiry.len() * 2);
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.map.remove(key)
            && entry.gate.is_some()
        {
            self.gates -= 1;
        }
    }

    /// The entry of `key`, made (room first, at the bound) if there is none.
    fn entry(&mut self, key: &str, now: Instant, max_keys: usize) -> &mut Entry {
        if !self.map.contains_key(key) {
            if self.map.len() >= max_keys {
                self.evict(now);
            }
            let key: Arc<str> = Arc::from(key);
            let id = self.next_id;
            self.next_id += 1;
            // Expires at once unless filled: the caller fills it now.
            self.expiry.push(Reverse((now, id, key.clone())));
            self.map.insert(
                key.clone(),
                Entry {
                    id,
                    gate: None,
                    log: VecDeque::new(),
                    per: Duration::ZERO,
                },
            );
            return self.map.get_mut(&key).expect("inserted just above");
        }
        self.map.get_mut(key).expect("looked up just above")
    }

    /// Forgets the entry that expires soonest (an expired one if any), to make room.
    fn evict(&mut self, now: Instant) {
        for tries in 0.. {
            let Some(Reverse((at, id, key))) = self.expiry.pop() else {
                return;
            };
            let Some(entry) = self.map.get(&key).filter(|e| e.id == id) else {
                continue;
            };
            // An item put in before its gate was extended: the entry may not be the soonest.
            match entry.expires() {
                Some(expires) if expires > at && tries < EVICT_TRIES => {
                    self.expiry.push(Reverse((expires, id, key)));
                    continue;
                }
                _ => {}
            }
            if entry.is_live(now) {
                let gate_open_in = entry.gate.map(|g| g.saturating_duration_since(now));
                tracing::warn!(
                    gate_open_in_ms = gate_open_in.map(|d| d.as_millis() as u64),
                    quota_calls_kept = entry.log.len(),
                    "rate-limit store full: forgot the entry expiring soonest"
                );
            }
            self.remove(&key);
            return;
        }
    }
}

impl GateStore for InMemoryStore {
    fn is_idle(&self) -> bool {
        self.gates.load(Ordering::Acquire) == 0
    }

    fn closed_for(&self, key: &str) -> StoreFuture<Option<Duration>> {
        if self.is_idle() {
            return StoreFuture::ready(None);
        }
        StoreFuture::ready(self.with(|entries, now| {
            let entry = entries.map.get_mut(key)?;
            match entry.gate {
                Some(until) if until > now => Some(until - now),
                Some(_) => {
                    entry.gate = None;
                    entries.gates -= 1;
                    None
                }
                None => None,
            }
        }))
    }

    fn close(&self, key: &str, wait: Duration) -> StoreFuture<()> {
        self.with(|entries, now| {
            let until = after(now, wait);
            let entry = entries.entry(key, now, self.max_keys);
            let opened = entry.gate.is_none();
            entry.gate = entry.gate.max(Some(until));
            if opened {
                entries.gates += 1;
            }
        });
        StoreFuture::ready(())
    }

    fn reserve(
        &self,
        key: &str,
        quota: Quota,
        not_before: Duration,
        latest: Duration,
    ) -> StoreFuture<Slot> {
        StoreFuture::ready(self.with(|entries, now| {
            let entry = entries.entry(key, now, self.max_keys);
            let per = quota.per();
            entry.per = per;
            let log = &mut entry.log;
            // Calls that left more than a window ago cannot limit a call from now on.
            while log.front().is_some_and(|at| after(*at, per) <= now) {
                log.pop_front();
            }
            let calls = quota.calls() as usize;
            // A sliding-window log: the new call goes once the call `calls` places before it
            // is a full window old, and never before the last one scheduled (first come,
            // first served).
            let mut slot = after(now, not_before);
            if log.len() >= calls {
                slot = slot.max(after(log[log.len() - calls], per));
            }
            if let Some(last) = log.back() {
                slot = slot.max(*last);
            }
            if slot > after(now, latest) {
                return Slot::Full {
                    earliest: slot - now,
                };
            }
            log.push_back(slot);
            Slot::Reserved(Reservation::new(slot - now, self.id_of(slot)))
        }))
    }

    fn release(&self, key: &str, reservation: Reservation) {
        let mut entries = self.lock();
        let Some(entry) = entries.map.get_mut(key) else {
            return;
        };
        let id = reservation.id();
        let at = entry.log.partition_point(|slot| self.id_of(*slot) < id);
        if entry
            .log
            .get(at)
            .is_some_and(|slot| self.id_of(*slot) == id)
        {
            entry.log.remove(at);
        }
    }

    fn closed_gates(&self) -> StoreFuture<Vec<(String, Duration)>> {
        StoreFuture::ready(self.with(|entries, now| {
            entries
                .map
                .iter()
                .filter_map(|(key, entry)| {
                    let until = entry.gate.filter(|until| *until > now)?;
                    Some((key.to_string(), until - now))
                })
                .collect()
        }))
    }

    fn reopen(&self, key: &str) -> StoreFuture<bool> {
        StoreFuture::ready(self.with(|entries, now| {
            let Some(entry) = entries.map.get_mut(key) else {
                return false;
            };
            let Some(until) = entry.gate.take() else {
                return false;
            };
            entries.gates -= 1;
            until > now
        }))
    }
}

#[cfg(test)]
mod tests;
