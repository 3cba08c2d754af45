//! [`Leasing`]: quota slots taken from Redis several at a time, so that most calls reserve
//! theirs without a round trip.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use towline_ratelimit::Reservation;

/// The most slots one lease takes: 1,000.
pub const MAX_PERMITS: u32 = 1000;

/// How a [`RedisStore`](crate::RedisStore) leases quota slots: each reservation that goes to
/// Redis takes up to `permits` slots free at the same instant (the caller's and the rest for
/// the next calls of this replica), each usable for `valid_for`. The next calls take a leased
/// slot locally, with no round trip; a slot unused when its time is up is lost for its window.
///
/// The guarantee is unchanged: Redis counts a leased slot at the *latest* instant it may be
/// used, so however late in its validity a call goes, no window of `per` holds more than
/// `calls` across replicas. What leasing costs is idle capacity: the slots a replica leased
/// and did not use, and up to `valid_for` more between a window and the next. Keep
/// `valid_for` short against `per` and long against a Redis round trip (it is measured from
/// the moment the lease was asked for, so a round trip longer than `valid_for` leases
/// nothing usable, and a `valid_for` of 2 ms or less leases nothing).
///
/// ```no_run
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use towline_redis::{Leasing, OnFailure, Redis, RedisStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let redis = Redis::open("redis://127.0.0.1:6379/").unwrap();
/// // One round trip per 16 calls; a leased slot is good for 50 ms.
/// let store = RedisStore::new(redis, OnFailure::Closed)
///     .leasing(Leasing::new(NonZeroU32::new(16).unwrap(), Duration::from_millis(50)));
/// # let _ = store;
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Leasing {
    permits: NonZeroU32,
    valid_for: Duration,
}

impl Leasing {
    /// Up to `permits` slots per round trip (at most [`MAX_PERMITS`], which keeps one script
    /// run short for Redis), each usable for `valid_for`.
    ///
    /// ```
    /// # use std::num::NonZeroU32;
    /// # use std::time::Duration;
    /// use towline_redis::{Leasing, MAX_PERMITS};
    ///
    /// let leasing = Leasing::new(NonZeroU32::MAX, Duration::from_millis(50));
    /// assert_eq!(leasing.permits().get(), MAX_PERMITS);
    /// ```
    pub fn new(permits: NonZeroU32, valid_for: Duration) -> Self {
        let most = NonZeroU32::new(MAX_PERMITS).expect("not zero");
        Leasing {
            permits: permits.min(most),
            valid_for,
        }
    }

    /// How many slots one round trip takes at most.
    pub fn permits(&self) -> NonZeroU32 {
        self.permits
    }

    /// How long a leased slot is usable.
    pub fn valid_for(&self) -> Duration {
        self.valid_for
    }
}

/// One leased slot: usable for a call that goes in `from..=until` (this process's clock).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Permit {
    pub(crate) from: Instant,
    pub(crate) until: Instant,
    /// The slot's name in the Redis log (released there if its call is dropped unsent).
    pub(crate) id: u64,
}

/// The leased slots of every key, and how to lease more.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    leasing: Option<Leasing>,
    /// Per key, in the order they were leased (so by `from`); a key with none left is
    /// removed, so the map holds only keys with slots in hand.
    permits: HashMap<String, VecDeque<Permit>>,
}

impl Leases {
    pub(crate) fn set(&self, leasing: Leasing) {
        self.lock().leasing = Some(leasing);
    }

    /// The leasing in force, if any.
    pub(crate) fn leasing(&self) -> Option<Leasing> {
        self.lock().leasing
    }

    /// A leased slot of `key` for a call that may go from `not_before` until `latest` from
    /// now, if one is in hand: the first such, taken. Slots whose time is up are dropped.
    pub(crate) fn take(
        &self,
        key: &str,
        not_before: Duration,
        latest: Duration,
    ) -> Option<Reservation> {
        let mut state = self.lock();
        let permits = state.permits.get_mut(key)?;
        let now = Instant::now();
        permits.retain(|permit| permit.until > now);
        // Beyond the clock's range: no leased slot is that far off.
        let earliest = now.checked_add(not_before)?;
        let last = now.checked_add(latest);
        let goes = |permit: &Permit| permit.from.max(earliest);
        let usable = |permit: &Permit| {
            goes(permit) <= permit.until && last.is_none_or(|last| goes(permit) <= last)
        };
        let taken = permits
            .iter()
            .position(usable)
            .and_then(|index| permits.remove(index));
        if permits.is_empty() {
            state.permits.remove(key);
        }
        let permit = taken?;
        Some(Reservation::new(goes(&permit) - now, permit.id))
    }

    /// Keeps `permits` of `key` for later calls, and forgets every key's slots whose time is
    /// up (a key no call looks at again would keep them otherwise; a lease is rare enough to
    /// pay for the sweep).
    pub(crate) fn keep(&self, key: &str, permits: impl IntoIterator<Item = Permit>) {
        let mut state = self.lock();
        let now = Instant::now();
        state.permits.retain(|_, permits| {
            permits.retain(|permit| permit.until > now);
            !permits.is_empty()
        });
        let mut permits = permits.into_iter().peekable();
        if permits.peek().is_some() {
            state
                .permits
                .entry(key.to_owned())
                .or_default()
                .extend(permits);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent between statements: a panic elsewhere cannot break it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
