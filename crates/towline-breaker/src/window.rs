//! [`Window`]: a circuit's calls and failures over the sampling window, in ten buckets, kept in
//! atomics so that a success is counted without the circuit's lock.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many buckets the sampling window is kept in.
pub(crate) const BUCKETS: usize = 10;

/// A bucket's word: the low bits count, the high bits say which bucket of time (counted from
/// the layer's origin, modulo 2^40) the count is for.
const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const TAG_MASK: u64 = (1 << (64 - COUNT_BITS)) - 1;

/// Calls and failures over the sampling window, in buckets of a tenth of it.
///
/// Counts are statistics, not a protocol: a count that lands in a bucket just as it turns over
/// (or as the circuit starts afresh) may be lost or kept, which moves a ratio by one call.
#[derive(Default)]
pub(crate) struct Window {
    calls: [AtomicU64; BUCKETS],
    failures: [AtomicU64; BUCKETS],
}

impl Window {
    /// Counts a call that ended in bucket `index`.
    pub(crate) fn record(&self, index: u64, failed: bool) {
        let slot = (index % BUCKETS as u64) as usize;
        add(&self.calls[slot], index);
        if failed {
            add(&self.failures[slot], index);
        }
    }

    /// Calls and failures in the buckets of the window ending with bucket `now`.
    pub(crate) fn totals(&self, now: u64) -> (u64, u64) {
        self.live(now)
            .fold((0, 0), |(calls, failures), (index, slot)| {
                (
                    calls + count(&self.calls[slot], index),
                    failures + count(&self.failures[slot], index),
                )
            })
    }

    pub(crate) fn is_empty(&self, now: u64) -> bool {
        self.live(now)
            .all(|(index, slot)| count(&self.calls[slot], index) == 0)
    }

    /// Forgets every count (a new phase of the circuit).
    pub(crate) fn clear(&self) {
        for word in self.calls.iter().chain(&self.failures) {
            word.store(0, Ordering::Relaxed);
        }
    }

    /// The buckets of the window ending with `now`, and their slots.
    fn live(&self, now: u64) -> impl Iterator<Item = (u64, usize)> {
        (0..BUCKETS as u64)
            .filter_map(move |back| now.checked_sub(back))
            .map(|index| (index, (index % BUCKETS as u64) as usize))
    }
}

/// One more in `word` for bucket `index`: a word still holding an older bucket starts over.
fn add(word: &AtomicU64, index: u64) {
    let tag = index & TAG_MASK;
    let mut current = word.load(Ordering::Relaxed);
    loop {
        let next = if current >> COUNT_BITS == tag {
            if current & COUNT_MASK == COUNT_MASK {
                return;
            }
            current + 1
        } else {
            (tag << COUNT_BITS) | 1
        };
        match word.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(seen) => current = seen,
        }
    }
}

/// The count `word` holds for bucket `index` (zero if it holds another bucket's).
fn count(word: &AtomicU64, index: u64) -> u64 {
    let current = word.load(Ordering::Relaxed);
    if current >> COUNT_BITS == index & TAG_MASK {
        current & COUNT_MASK
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_reused_for_a_later_index_starts_empty() {
        let window = Window::default();
        window.record(3, true);
        window.record(13, false);
        assert_eq!(window.totals(13), (1, 0));
        assert!(window.is_empty(23));
    }

    #[test]
    fn the_window_holds_ten_buckets_and_clears() {
        let window = Window::default();
        for index in 0..12 {
            window.record(index, index % 2 == 0);
        }
        // Buckets 2..=11 are live at 11.
        assert_eq!(window.totals(11), (10, 5));
        window.clear();
        assert_eq!(window.totals(11), (0, 0));
    }

    #[test]
    fn a_full_bucket_saturates() {
        let window = Window::default();
        window.calls[0].store(COUNT_MASK, Ordering::Relaxed);
        window.record(0, false);
        assert_eq!(window.totals(0), (COUNT_MASK, 0));
    }
}
