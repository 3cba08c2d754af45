//! Where gates and quotas live: the [`GateStore`] trait and its in-memory default.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// The shared state of a rate-limit layer: when each key's gate opens, and the recent calls
/// of each paced key.
///
/// [`InMemoryStore`] keeps it in this process. A shared store (Redis, say) lets many replicas
/// that share an API key honour one gate and one quota; it translates between its own clock and
/// the [`Instant`]s here.
pub trait GateStore: Send + Sync + 'static {
    /// Whether no gate at all is closed, cheaply: lets an unpaced layer skip reading the
    /// clock and looking up the key. `false` (always look) unless a store can tell.
    fn is_idle(&self) -> bool {
        false
    }

    /// When the gate for `key` opens, if it is closed at `now`.
    fn closed_until(&self, key: &str, now: Instant) -> Option<Instant>;

    /// Closes the gate for `key` until `until`, unless it is already closed until later.
    fn close(&self, key: &str, until: Instant);

    /// Reserves the next slot for a call on `key` under a quota of `calls` per `per`: `Ok`
    /// with the instant the call may go (`now` if at once), or `Err` with that instant, without
    /// reserving it, if it would be after `latest`.
    fn reserve(
        &self,
        key: &str,
        calls: u32,
        per: Duration,
        now: Instant,
        latest: Instant,
    ) -> Result<Instant, Instant>;
}

/// A [`GateStore`] in this process's memory: the default.
///
/// Checking an open gate costs one atomic load while no gate anywhere is closed, and a map
/// lookup under a lock otherwise.
///
/// ```
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use towline_ratelimit::{GateStore, InMemoryStore};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let store = InMemoryStore::default();
/// let now = Instant::now();
/// assert_eq!(store.closed_until("api.example", now), None);
/// store.close("api.example", now + Duration::from_secs(5));
/// assert_eq!(store.closed_until("api.example", now), Some(now + Duration::from_secs(5)));
/// assert_eq!(store.closed_until("other.example", now), None);
/// # }
/// ```
#[derive(Debug, Default)]
pub struct InMemoryStore {
    /// Whether any gate may be closed: the fast path for the common case, no gate at all.
    any_closed: AtomicBool,
    gates: Mutex<HashMap<String, Instant>>,
    quotas: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl GateStore for InMemoryStore {
    fn is_idle(&self) -> bool {
        !self.any_closed.load(Ordering::Acquire)
    }

    fn closed_until(&self, key: &str, now: Instant) -> Option<Instant> {
        if !self.any_closed.load(Ordering::Acquire) {
            return None;
        }
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget gates that have opened, so the map and the fast path recover.
        gates.retain(|_, until| *until > now);
        if gates.is_empty() {
            self.any_closed.store(false, Ordering::Release);
        }
        gates.get(key).copied()
    }

    fn close(&self, key: &str, until: Instant) {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        match gates.get_mut(key) {
            Some(existing) => *existing = (*existing).max(until),
            None => {
                gates.insert(key.to_owned(), until);
            }
        }
        self.any_closed.store(true, Ordering::Release);
    }

    fn reserve(
        &self,
        key: &str,
        calls: u32,
        per: Duration,
        now: Instant,
        latest: Instant,
    ) -> Result<Instant, Instant> {
        let mut quotas = self.quotas.lock().unwrap_or_else(PoisonError::into_inner);
        let log = match quotas.get_mut(key) {
            Some(log) => log,
            None => quotas.entry(key.to_owned()).or_default(),
        };
        // Calls that left more than a window ago cannot limit a call from now on.
        while log.front().is_some_and(|at| *at + per <= now) {
            log.pop_front();
        }
        let calls = calls.max(1) as usize;
        // A sliding-window log: the new call goes once the call `calls` places before it is a
        // full window old, and never before the last one scheduled (first come, first served).
        let mut slot = now;
        if log.len() >= calls {
            slot = slot.max(log[log.len() - calls] + per);
        }
        if let Some(last) = log.back() {
            slot = slot.max(*last);
        }
        if slot > latest {
            return Err(slot);
        }
        log.push_back(slot);
        Ok(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn gates_open_on_time_and_the_fast_path_recovers() {
        let store = InMemoryStore::default();
        let now = Instant::now();
        store.close("a", now + Duration::from_secs(2));
        store.close("a", now + Duration::from_secs(1));
        assert_eq!(
            store.closed_until("a", now),
            Some(now + Duration::from_secs(2)),
            "the later one wins"
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(store.closed_until("a", Instant::now()), None);
        assert!(!store.any_closed.load(Ordering::Acquire));
    }

    #[tokio::test(start_paused = true)]
    async fn a_quota_never_lets_more_calls_into_any_window() {
        let store = InMemoryStore::default();
        let per = Duration::from_secs(10);
        let start = Instant::now();
        let far = start + Duration::from_secs(3600);
        let slots: Vec<Instant> = (0..25)
            .map(|_| store.reserve("k", 10, per, start, far).unwrap())
            .collect();
        // Ten at once, ten after one window, five after two.
        assert!(slots[..10].iter().all(|s| *s == start));
        assert!(slots[10..20].iter().all(|s| *s == start + per));
        assert!(slots[20..].iter().all(|s| *s == start + 2 * per));
        for (i, slot) in slots.iter().enumerate() {
            let in_window = slots
                .iter()
                .filter(|s| **s > *slot - per && **s <= *slot)
                .count();
            assert!(in_window <= 10, "slot {i}: {in_window} calls in one window");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reservation_past_the_latest_instant_is_refused_and_not_kept() {
        let store = InMemoryStore::default();
        let per = Duration::from_secs(60);
        let now = Instant::now();
        assert_eq!(store.reserve("k", 1, per, now, now), Ok(now));
        assert_eq!(
            store.reserve("k", 1, per, now, now + Duration::from_secs(59)),
            Err(now + per)
        );
        assert_eq!(store.reserve("k", 1, per, now, now + per), Ok(now + per));
    }
}
