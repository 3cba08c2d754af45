//! [`RetryBudget`]: retries may add only a fraction of the traffic, so an outage cannot
//! multiply the load.
//!
//! Calls are counted lock-free in [`SLOTS`] time slots per window, each one atomic word that
//! carries the slot's number beside its count, so a call is one `fetch_add` and a stale slot is
//! recognised without a sweeper. Retries are counted under a mutex (see
//! [`RetryBudget::withdraw`] for why), in finer buckets so the floor is not lost to rounding.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Call-counting slots per window: Finagle's (and tower's) ten.
const SLOTS: u64 = 10;
/// Retry-counting buckets per window: fine enough that a client retrying at the floor rate
/// (10 a second by default) has at most one retry per bucket.
const BUCKETS: u64 = 200;
/// The ratio and the floor are kept in millionths of a retry, so the check is integer math.
const MICROS: u128 = 1_000_000;

/// A slot word: the slot's number (time since the budget began, in slots) above its count.
/// A slot lasts at least 100 ms and time saturates at `u64::MAX` ns, so the number fits in 38
/// bits and never wraps.
const COUNT_BITS: u32 = 26;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// Beyond this many calls in one slot, further calls are not counted (fewer retries, never
/// more). Far above what one cache line can take in a slot; the headroom above it absorbs
/// the increments of threads that find the slot full and take theirs back.
const COUNT_CAP: u64 = 1 << (COUNT_BITS - 1);

/// A retry budget shared by every clone of a retry layer: retries may add only `ratio` of the
/// calls, plus a floor of `min_per_sec`, over a sliding `window` (Finagle's and Linkerd's
/// retry budget).
///
/// Each call deposits; each retry withdraws. The promise, kept exactly: a retry at instant
/// `t` is allowed only if, counting it,
///
/// ```text
/// retries in (t - window, t]  <=  ratio × calls in (t - window, t]  +  min_per_sec × window
/// ```
///
/// whatever threads call in whatever order (the check and the withdrawal are one step).
/// Where it errs, it errs towards fewer retries, by at most:
///
/// - calls are counted in ten slots of `window / 10` (Finagle's), so a call funds retries for
///   at least `window - window / 10` after it, and at most `window`;
/// - a retry is counted in buckets of `window / 200`, so it takes its place in the budget for
///   at least `window` and at most `window + window / 200`;
/// - `ratio` is taken to the nearest millionth, `window` to the microsecond (down) for the
///   floor; beyond about 33 million calls in one slot, calls are not counted.
///
/// So a quiet client can make `min_per_sec × window` retries at once, and keep retrying at
/// `min_per_sec` a second (exactly, when its retries are at least `window / 200` apart or come
/// in bursts). Time is tokio's, so the budget runs under a paused clock in tests.
///
/// ```
/// use std::time::Duration;
/// use towline_retry::RetryBudget;
///
/// let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.2).unwrap();
/// for _ in 0..10 {
///     budget.deposit();
/// }
/// assert!(budget.withdraw());
/// assert!(budget.withdraw());
/// assert!(!budget.withdraw(), "10 calls at 20 % allow 2 retries");
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    shared: Arc<Shared>,
}

/// A budget setting out of range.
///
/// ```
/// use std::time::Duration;
/// use towline_retry::{InvalidBudget, RetryBudget};
///
/// let err = RetryBudget::new(Duration::from_secs(120), 10, 0.2).unwrap_err();
/// assert_eq!(err, InvalidBudget::Window);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidBudget {
    /// The window is not between 1 and 60 seconds.
    Window,
    /// The ratio is not a number between 0 and 1000.
    Ratio,
    /// The floor is too large.
    Floor,
}

impl fmt::Display for InvalidBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidBudget::Window => "the budget window must be between 1 and 60 seconds",
            InvalidBudget::Ratio => "the retry ratio must be a number between 0 and 1000",
            InvalidBudget::Floor => "the retries-per-second floor is too large",
        })
    }
}

impl std::error::Error for InvalidBudget {}

/// What every clone shares.
struct Shared {
    origin: Instant,
    window: Duration,
    min_per_sec: u32,
    ratio: f32,
    window_ns: u64,
    slot_ns: u64,
    bucket_ns: u64,
    ratio_micros: u64,
    floor_micros: u64,
    calls: Calls,
    retries: Mutex<Retries>,
}

impl Shared {
    /// Nanoseconds since the budget began, saturating (584 years).
    fn now_ns(&self) -> u64 {
        let elapsed = Instant::now().saturating_duration_since(self.origin);
        // Not `as_nanos`: u64 math is cheaper than u128 on the path of every call.
        elapsed
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(elapsed.subsec_nanos()))
    }
}

impl RetryBudget {
    /// A budget over `window` (1 to 60 s, as Finagle and tower allow) allowing `ratio` retries
    /// per call (0 to 1000) plus `min_per_sec` retries per second (below `i32::MAX`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_retry::{InvalidBudget, RetryBudget};
    ///
    /// let quiet = RetryBudget::new(Duration::from_secs(10), 1, 0.0)?;
    /// assert!((0..10).all(|_| quiet.withdraw()), "1 a second over 10 s");
    /// assert!(!quiet.withdraw());
    /// assert_eq!(
    ///     RetryBudget::new(Duration::MAX, 1, 0.1).unwrap_err(),
    ///     InvalidBudget::Window
    /// );
    /// # Ok::<(), InvalidBudget>(())
    /// ```
    pub fn new(window: Duration, min_per_sec: u32, ratio: f32) -> Result<Self, InvalidBudget> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&window) {
            return Err(InvalidBudget::Window);
        }
        if !(0.0..=1000.0).contains(&ratio) {
            // Also rejects NaN.
            return Err(InvalidBudget::Ratio);
        }
        if min_per_sec >= i32::MAX as u32 {
            return Err(InvalidBudget::Floor);
        }
        // In range by the checks above: at most 6e10 ns, 1e9 micro-retries per call, and
        // 2^31 × 6e7 micro-retries of floor.
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        let window_us = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
        Ok(RetryBudget {
            shared: Arc::new(Shared {
                origin: Instant::now(),
                window,
                min_per_sec,
                ratio,
                window_ns,
                slot_ns: window_ns / SLOTS,
                bucket_ns: window_ns / BUCKETS,
                ratio_micros: (f64::from(ratio) * 1e6).round() as u64,
                floor_micros: u64::from(min_per_sec).saturating_mul(window_us),
                calls: Calls::default(),
                retries: Mutex::new(Retries::default()),
            }),
        })
    }

    /// Counts a call: one atomic add, no lock.
    ///
    /// ```
    /// # use towline_retry::RetryBudget;
    /// let budget = RetryBudget::default();
    /// budget.deposit();
    /// ```
    pub fn deposit(&self) {
        let shared = &*self.shared;
        shared.calls.add(shared.now_ns() / shared.slot_ns);
    }

    /// Takes a retry from the budget; `false` when the retry would break the bound (see
    /// [`RetryBudget`]).
    ///
    /// Retries take a mutex, held for the few loads and adds of the check: the check reads
    /// every slot and the count of retries in the window, and only an exclusive step makes
    /// "check, then count the retry" one step against other retries (a compare-and-swap on one
    /// word cannot guard the others). Calls never take it, and a retry goes on to wait for its
    /// backoff, which dwarfs the lock.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use towline_retry::RetryBudget;
    /// let budget = RetryBudget::new(Duration::from_secs(10), 0, 1.0).unwrap();
    /// assert!(!budget.withdraw(), "no calls, no floor: no retry");
    /// budget.deposit();
    /// assert!(budget.withdraw());
    /// ```
    pub fn withdraw(&self) -> bool {
        let shared = &*self.shared;
        let mut retries = shared
            .retries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // The slots are read before the clock: every call they count happened before `now`,
        // so no retry is funded by a call that came after it.
        let words = shared.calls.load();
        let now = shared.now_ns().max(retries.last_ns);
        let calls = Calls::sum(&words, now / shared.slot_ns);
        retries.last_ns = now;
        retries.expire(now.checked_sub(shared.window_ns));
        let allowance =
            u128::from(calls) * u128::from(shared.ratio_micros) + u128::from(shared.floor_micros);
        if (u128::from(retries.total) + 1) * MICROS > allowance {
            return false;
        }
        retries.record(now / shared.bucket_ns, now);
        true
    }
}

impl Default for RetryBudget {
    /// A 10 s window, 20 % of calls, and 10 retries per second: Finagle's and tower's defaults.
    fn default() -> Self {
        RetryBudget::new(Duration::from_secs(10), 10, 0.2).expect("valid default settings")
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("window", &self.shared.window)
            .field("min_per_sec", &self.shared.min_per_sec)
            .field("ratio", &self.shared.ratio)
            .finish_non_exhaustive()
    }
}

/// The calls of the last [`SLOTS`] slots, slot `n` in word `n % SLOTS`.
#[derive(Default)]
struct Calls([AtomicU64; SLOTS as usize]);

fn word(slot: u64, count: u64) -> u64 {
    (slot << COUNT_BITS) | count
}

impl Calls {
    /// Counts one call in `slot`.
    ///
    /// The add comes first and is the whole of the common case. When the word held an older
    /// slot, the add landed in stale counts that no retry counts any longer (a retry that
    /// loads them reads the clock after, in `slot` or later, where they are out of the window),
    /// so the word is restarted for `slot`. When it held a newer slot (this thread read the
    /// clock before another thread started that slot), the call counts there: later than it
    /// was made, so it leaves the window sooner.
    fn add(&self, slot: u64) {
        let cell = &self.0[(slot % SLOTS) as usize];
        let before = cell.fetch_add(1, SeqCst);
        let held = before >> COUNT_BITS;
        if held > slot || (held == slot && before & COUNT_MASK < COUNT_CAP) {
            return;
        }
        if held == slot {
            // The slot is full: take the call back.
            cell.fetch_sub(1, SeqCst);
            return;
        }
        let mut current = before + 1;
        loop {
            let next = if current >> COUNT_BITS < slot {
                word(slot, 1)
            } else if current & COUNT_MASK < COUNT_CAP {
                current + 1
            } else {
                return;
            };
            match cell.compare_exchange_weak(current, next, SeqCst, SeqCst) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// The slot words as they stand.
    fn load(&self) -> [u64; SLOTS as usize] {
        std::array::from_fn(|i| self.0[i].load(SeqCst))
    }

    /// The calls in `words` counted in `slot` and the slots before it that lie wholly inside
    /// the window. A word can hold no slot after `slot` (its writer read the clock before the
    /// word was loaded), nor a call added in error by a thread already in a later slot.
    fn sum(words: &[u64; SLOTS as usize], slot: u64) -> u64 {
        words
            .iter()
            .filter(|&&w| (w >> COUNT_BITS) <= slot && (w >> COUNT_BITS) + SLOTS > slot)
            .map(|&w| w & COUNT_MASK)
            .sum()
    }
}

/// The retries allowed in the window, by bucket, oldest first; at most [`BUCKETS`] + 2.
#[derive(Default)]
struct Retries {
    buckets: VecDeque<Bucket>,
    total: u64,
    /// The time of the latest check, so retries are recorded in order.
    last_ns: u64,
}

struct Bucket {
    index: u64,
    latest_ns: u64,
    count: u64,
}

impl Retries {
    /// Forgets the buckets whose retries all came at or before `since` (None: keeps all).
    fn expire(&mut self, since: Option<u64>) {
        let Some(since) = since else { return };
        while let Some(oldest) = self.buckets.front() {
            if oldest.latest_ns > since {
                break;
            }
            self.total = self.total.saturating_sub(oldest.count);
            self.buckets.pop_front();
        }
    }

    fn record(&mut self, index: u64, now_ns: u64) {
        match self.buckets.back_mut() {
            Some(latest) if latest.index == index => {
                latest.count = latest.count.saturating_add(1);
                latest.latest_ns = now_ns;
            }
            _ => self.buckets.push_back(Bucket {
                index,
                latest_ns: now_ns,
                count: 1,
            }),
        }
        self.total = self.total.saturating_add(1);
    }
}
