//! One key's compartment: its places (a semaphore) and the calls waiting for one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use towline_core::BulkheadFull;

use crate::registry::Entry;

/// What every compartment of a layer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// The most calls of a key in flight at once (at least 1).
    pub(crate) max_concurrent: usize,
    /// The most calls of a key waiting for a place at once.
    pub(crate) max_waiting: usize,
    /// The longest a call waits for a place; `None`: until its deadline, if it has one.
    pub(crate) max_wait: Option<Duration>,
}

/// A key's compartment, shared by every call to that key.
pub(crate) struct Compartment {
    pub(crate) key: Arc<str>,
    pub(crate) limits: Arc<Limits>,
    /// One permit per free place. Permits are taken with `forget` and given back by
    /// [`Place`]'s drop, so a call holds one `Arc` (this compartment), not two.
    places: Semaphore,
    waiting: AtomicUsize,
}

impl Entry for Compartment {
    type Policy = Limits;
    const FULL: &'static str = "bulkhead full of busy keys: a new key's calls are not limited";

    fn new(key: Arc<str>, limits: Arc<Limits>) -> Self {
        Compartment {
            places: Semaphore::new(limits.max_concurrent),
            key,
            limits,
            waiting: AtomicUsize::new(0),
        }
    }

    /// Idle when no call holds it: every place taken or waited for holds the compartment's
    /// `Arc`, and under the registry's write lock no call can take a new one from the map.
    /// So a forgotten compartment has no call in flight, and the limit stays exact.
    fn is_idle(entry: &Arc<Self>, _now: Instant) -> bool {
        Arc::strong_count(entry) == 1
    }
}

impl Compartment {
    /// Calls of this key in flight now.
    pub(crate) fn in_flight(&self) -> usize {
        self.limits
            .max_concurrent
            .saturating_sub(self.places.available_permits())
    }

    /// Calls of this key waiting for a place now.
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// A place now, if one is free. A place freed while calls wait goes to the first of them
    /// (tokio's semaphore is fair), so a new call never overtakes the queue.
    pub(crate) fn try_place(self: &Arc<Self>) -> Option<Place> {
        let permit = self.places.try_acquire().ok()?;
        permit.forget();
        Some(Place(self.clone()))
    }

    /// A place in the queue, if it is not full.
    pub(crate) fn try_queue(self: &Arc<Self>) -> Option<Queued> {
        let max = self.limits.max_waiting;
        self.waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < max).then_some(waiting + 1)
            })
            .ok()?;
        Some(Queued(self.clone()))
    }

    /// The refusal of a call that waited `waited`.
    pub(crate) fn refusal(&self, waited: Duration) -> BulkheadFull {
        BulkheadFull::new(
            self.key.clone(),
            self.in_flight(),
            self.limits.max_concurrent,
            waited,
        )
    }
}

/// A call's place in flight: given back when dropped.
pub(crate) struct Place(Arc<Compartment>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.places.add_permits(1);
    }
}

/// A call's place in the queue: left when dropped (the wait ended, or the call was dropped).
pub(crate) struct Queued(Arc<Compartment>);

impl Queued {
    /// Waits for a place until `until` (if any): `Ok` with the place, or `Err` with the
    /// compartment when the time ran out. The queue is left either way, and when the future
    /// is dropped.
    pub(crate) async fn wait(self, until: Option<Instant>) -> Result<Place, Arc<Compartment>> {
        let compartment = self.0.clone();
        let acquired = {
            let acquire = async {
                // The semaphore is never closed; a closed one would refuse like a timeout.
                let permit = compartment.places.acquire().await.ok()?;
                permit.forget();
                Some(())
            };
            match until {
                Some(until) => tokio::time::timeout_at(until, acquire).await.ok().flatten(),
                None => acquire.await,
            }
        };
        drop(self);
        match acquired {
            Some(()) => Ok(Place(compartment)),
            None => Err(compartment),
        }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}
