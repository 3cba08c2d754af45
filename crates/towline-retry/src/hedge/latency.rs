//! The rolling latency histogram behind [`HedgeLayer::latency_percentile`](super::HedgeLayer::latency_percentile).
//!
//! Two windows of log-linear buckets (sixteen per power of two, so a value is known to within
//! 1/16), one recorded into while the other, the last full window, gave the percentile. The
//! percentile is worked out once, when a window ends, and kept in one atomic word: a call reads
//! one word, an answer adds to two counters, and only the turn of a window takes a lock.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Duration;

use tokio::time::Instant;

/// Bits of a value kept below its leading one: 16 buckets per power of two.
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Latencies are counted in microseconds up to 2^41 µs (25 days); longer ones saturate.
const TOP_BIT: u32 = 40;
const BUCKETS: usize = (TOP_BIT as usize - SUB_BITS as usize + 2) * SUB;
/// No estimate: the last full window had too few samples.
const NONE: u64 = u64::MAX;

/// The bucket of a latency of `micros`.
fn bucket(micros: u64) -> usize {
    let v = micros.min((1 << (TOP_BIT + 1)) - 1);
    if v < SUB as u64 {
        return v as usize;
    }
    let top = 63 - v.leading_zeros();
    let shift = top - SUB_BITS;
    (top - SUB_BITS + 1) as usize * SUB + ((v >> shift) as usize & (SUB - 1))
}

/// The largest latency, in microseconds, that falls in bucket `index`.
fn upper_bound(index: usize) -> u64 {
    if index < SUB {
        return index as u64;
    }
    let shift = (index / SUB - 1) as u32;
    let low = ((SUB + index % SUB) as u64) << shift;
    low + (1u64 << shift) - 1
}

struct Window {
    counts: Box<[AtomicU32]>,
    total: AtomicU64,
}

impl Window {
    fn new() -> Self {
        Window {
            counts: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            total: AtomicU64::new(0),
        }
    }

    fn clear(&self) {
        self.counts.iter().for_each(|count| count.store(0, Relaxed));
        self.total.store(0, SeqCst);
    }

    /// The latency at `percentile` (0 to 100) in microseconds, if at least `min` were counted.
    fn percentile(&self, percentile: f64, min: u64) -> Option<u64> {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| u64::from(c.load(SeqCst)))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 || total < min {
            return None;
        }
        let rank = ((percentile / 100.0) * total as f64)
            .ceil()
            .clamp(1.0, total as f64) as u64;
        let mut seen = 0;
        counts.iter().enumerate().find_map(|(index, &count)| {
            seen += count;
            (seen >= rank).then(|| upper_bound(index))
        })
    }
}

/// Latencies of the last two windows, and the percentile of the last full one.
pub(crate) struct Latencies {
    percentile: f64,
    min_samples: u64,
    window_ns: u64,
    origin: Instant,
    windows: [Window; 2],
    /// The number of the window being recorded (time since `origin`, in windows).
    epoch: AtomicU64,
    /// The percentile of the window before, in microseconds, or [`NONE`].
    estimate: AtomicU64,
    turn: Mutex<()>,
}

impl Latencies {
    pub(crate) fn new(percentile: f64, min_samples: u64, window: Duration) -> Self {
        Latencies {
            percentile,
            min_samples,
            window_ns: u64::try_from(window.as_nanos()).unwrap_or(u64::MAX).max(1),
            origin: Instant::now(),
            windows: [Window::new(), Window::new()],
            epoch: AtomicU64::new(0),
            estimate: AtomicU64::new(NONE),
            turn: Mutex::new(()),
        }
    }

    pub(crate) fn percentile(&self) -> f64 {
        self.percentile
    }

    pub(crate) fn min_samples(&self) -> u64 {
        self.min_samples
    }

    pub(crate) fn window(&self) -> Duration {
        Duration::from_nanos(self.window_ns)
    }

    /// The number of the window `now` falls in.
    fn epoch_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX) / self.window_ns
    }

    /// Moves on to the window of `now`, working out the percentile of the one that ended.
    /// Returns the number of the window to record into.
    fn turn(&self, now: Instant) -> u64 {
        let epoch = self.epoch_at(now);
        let current = self.epoch.load(SeqCst);
        if epoch <= current {
            return current;
        }
        let _turning = self.turn.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.epoch.load(SeqCst);
        if epoch <= current {
            return current;
        }
        let ended = &self.windows[(current % 2) as usize];
        let next = &self.windows[(epoch % 2) as usize];
        let estimate = if epoch == current + 1 {
            ended.percentile(self.percentile, self.min_samples)
        } else {
            // A whole window went by without a call: what came before is out of date.
            None
        };
        self.estimate.store(estimate.unwrap_or(NONE), SeqCst);
        if epoch == current + 1 {
            next.clear();
        } else {
            self.windows.iter().for_each(Window::clear);
        }
        // An answer recorded between the clear and this store lands in the window that
        // ended: one sample lost, never a wrong one counted.
        self.epoch.store(epoch, SeqCst);
        epoch
    }

    /// Counts one latency.
    pub(crate) fn record(&self, latency: Duration) {
        let epoch = self.turn(Instant::now());
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let window = &self.windows[(epoch % 2) as usize];
        window.counts[bucket(micros)].fetch_add(1, Relaxed);
        window.total.fetch_add(1, Relaxed);
    }

    /// The hedge delay now: the percentile of the last full window, if it had enough samples.
    pub(crate) fn delay(&self) -> Option<Duration> {
        self.turn(Instant::now());
        match self.estimate.load(SeqCst) {
            NONE => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_values_within_a_sixteenth() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 30, (1 << 41) - 1, u64::MAX]) {
            let index = bucket(v);
            assert!(index < BUCKETS);
            assert!(index >= last || v > 100_000, "buckets follow the values");
            last = index;
            let upper = upper_bound(index);
            let v = v.min((1 << 41) - 1);
            assert!(upper >= v, "{v} in bucket {index} up to {upper}");
            assert!(upper - v <= v / 16, "{v}: bucket up to {upper} is too wide");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_percentile_comes_from_the_last_full_window() {
        let latencies = Latencies::new(90.0, 10, Duration::from_secs(1));
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        assert_eq!(latencies.delay(), None, "no full window yet");
        tokio::time::advance(Duration::from_secs(1)).await;
        let p90 = latencies.delay().unwrap();
        assert!(
            (Duration::from_millis(90)..=Duration::from_millis(96)).contains(&p90),
            "{p90:?}"
        );
        // The window after has no calls: once it ends, there is nothing to go on.
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(latencies.delay(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn too_few_samples_give_no_estimate() {
        let latencies = Latencies::new(50.0, 10, Duration::from_secs(1));
        for _ in 0..9 {
            latencies.record(Duration::from_millis(5));
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(latencies.delay(), None);
        for _ in 0..10 {
            latencies.record(Duration::from_millis(5));
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(latencies.delay().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_of_two_windows_forgets_everything() {
        let latencies = Latencies::new(50.0, 1, Duration::from_secs(1));
        latencies.record(Duration::from_millis(5));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(latencies.delay(), None);
    }
}
