//! One timer per call where one suffices.
//!
//! `DeadlineLayer` over `TimeoutLayer` would register two timers for every call that has to
//! wait: the attempt's (say 10 s) and the call's deadline (say 30 s), each a lock of the
//! runtime's timer wheel to insert and another to remove. While the attempt's timer is armed
//! and fires first, the deadline's adds nothing: the attempt's wakes the task first, and the
//! deadline looks again then. So a timer of this crate left armed when its poll returns
//! `Pending` reports its instant here, and a deadline polling the layers below [`watch`]es
//! for a report no later than its own instant, from a timer that wakes the same task. Only
//! then does it leave its own timer unarmed; on every other poll it arms it as before.
//!
//! A report lasts one poll of the deadline: the next poll watches afresh. A timer dropped
//! during the poll that saw its report withdraws it ([`withdraw`]), so a deadline never
//! counts on a timer that is gone.

use std::cell::Cell;
use std::task::{RawWakerVTable, Waker};

use tokio::time::Instant;

thread_local! {
    /// What the deadline polling on this thread has seen so far: `None` when none is polling.
    static WATCH: Cell<Option<Option<Armed>>> = const { Cell::new(None) };
}

/// An armed timer: when it fires, and the waker it will wake (compared by identity).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Armed {
    at: Instant,
    data: *const (),
    vtable: *const RawWakerVTable,
}

impl Armed {
    fn new(at: Instant, waker: &Waker) -> Self {
        Armed {
            at,
            data: waker.data(),
            vtable: waker.vtable(),
        }
    }

    /// Whether this timer wakes the task `waker` belongs to no later than `at`.
    pub(crate) fn covers(&self, at: Instant, waker: &Waker) -> bool {
        self.at <= at
            && std::ptr::eq(self.data, waker.data())
            && std::ptr::eq(self.vtable, waker.vtable())
    }
}

/// Runs `poll` (a deadline polling the layers below) and returns the earliest timer reported
/// during it. The report is passed on to an enclosing deadline's watch, if any.
pub(crate) fn watch<T>(poll: impl FnOnce() -> T) -> (T, Option<Armed>) {
    // Restores the enclosing watch even if `poll` panics.
    struct Restore(Option<Option<Armed>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let seen = WATCH.replace(self.0);
            if let (Some(_), Some(Some(armed))) = (self.0, seen) {
                report_armed(armed);
            }
        }
    }
    let restore = Restore(WATCH.replace(Some(None)));
    let output = poll();
    let seen = WATCH.get().flatten();
    drop(restore);
    (output, seen)
}

/// A timer firing at `at` was polled with `waker` and is pending: armed, it will wake it.
pub(crate) fn report(at: Instant, waker: &Waker) {
    report_armed(Armed::new(at, waker));
}

fn report_armed(armed: Armed) {
    if let Some(seen) = WATCH.get()
        && seen.is_none_or(|earliest| armed.at < earliest.at)
    {
        WATCH.set(Some(Some(armed)));
    }
}

/// A timer firing at `at` is dropped: if it is the one reported in the current watch, the
/// report no longer holds.
pub(crate) fn withdraw(at: Instant) {
    if let Some(Some(earliest)) = WATCH.get()
        && earliest.at == at
    {
        WATCH.set(Some(None));
    }
}
