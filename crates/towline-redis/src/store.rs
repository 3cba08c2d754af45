//! [`RedisStore`]: gates and quotas in Redis, shared by every replica that uses the same key.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use towline_core::BoxError;
use towline_ratelimit::{GateStore, InMemoryStore, Quota, Reservation, Slot, StoreFuture};

use crate::connection::Redis;
use crate::lease::{Leases, Leasing, Permit};
use crate::listing;
use crate::mirror::{self, Mirror};
use crate::policy::{Health, OnFailure};
use crate::scripts;

/// Marks the reservations of the local fallback store, so that each is released where it
/// was made (the local store's ids are nanoseconds, far below this bit).
const LOCAL: u64 = 1 << 63;

/// "Never" in microseconds (about 30 years, the rate-limit layer's own far future): every
/// longer duration counts as this, so no sum overflows on either side.
const FAR_MICROS: u64 = 86_400 * 365 * 30 * 1_000_000;

/// A [`GateStore`] in Redis: every replica of a service that points at the same Redis (and
/// prefix) honours one gate and one quota per key.
///
/// - **Gates**: `<prefix>gate:<key>`, a key whose TTL is the time left. Closing is a script
///   that only ever extends the TTL, so a stale replica cannot reopen a gate early; waits are
///   relative, measured by the Redis server's clock, so replicas' clock skew moves nothing.
/// - **Quotas**: `<prefix>quota:<key>`, a sliding-window log (a sorted set of slot instants,
///   from `TIME` inside the script) and `<prefix>quota:<key>:seq`; one script reserves a slot
///   atomically, so no window of `per` ever holds more than `calls` slots across replicas.
///   A slot whose call is cancelled is removed by a task (`release` never blocks).
/// - **Expiry**: every key carries a TTL (a gate until it opens, a log one window past its
///   last slot), so nothing grows without bound.
/// - **Failure**: every operation is bounded by the connection's
///   [`op_timeout`](Redis::op_timeout); what happens then is the [`OnFailure`] policy, and
///   recovery is automatic (the connection reconnects; the next operation that answers
///   shares again).
///
/// A check of an open gate costs no round trip while the pub/sub mirror is live (one `PTTL`
/// otherwise); a quota reservation costs one (the script), or none for most calls with
/// [`leasing`](RedisStore::leasing) on. Closing a gate and reserving a slot run in tasks of
/// their own, so a gate closes, a lease lands and a dropped caller's slot is given back even
/// if the caller is dropped while Redis answers.
///
/// ```no_run
/// use std::num::NonZeroU32;
/// use std::time::Duration;
/// use towline_ratelimit::{Quota, RateLimitLayer};
/// use towline_redis::{OnFailure, Redis, RedisStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let redis = Redis::open("redis://127.0.0.1:6379/").unwrap().prefix("shop:");
/// let store = RedisStore::new(redis, OnFailure::Open { replicas: NonZeroU32::new(8).unwrap() });
/// let layer = RateLimitLayer::new()
///     .store(store)
///     .quota(Quota::new(1000, Duration::from_secs(300)));
/// # let _ = layer;
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    redis: Redis,
    policy: OnFailure,
    /// The state used while failing open; gates are closed here too, always.
    local: Arc<InMemoryStore>,
    health: Health,
    /// The closed gates, kept by pub/sub: open gates are checked here, without a round trip.
    mirror: Arc<Mirror>,
    /// Quota slots leased for this replica's next calls.
    leases: Leases,
    /// Dropped with the store: ends the mirror's task.
    _stop: oneshot::Sender<()>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("redis", &self.inner.redis)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Gates and quotas in `redis`, with `policy` while it does not answer.
    pub fn new(redis: Redis, policy: OnFailure) -> Self {
        let mirror = Arc::new(Mirror::default());
        let local = Arc::new(InMemoryStore::default());
        let (stop, stopped) = oneshot::channel();
        redis.spawn(mirror::keep(
            mirror.clone(),
            local.clone(),
            redis.clone(),
            stopped,
        ));
        RedisStore {
            inner: Arc::new(Inner {
                redis,
                policy,
                local,
                health: Health::default(),
                mirror,
                leases: Leases::default(),
                _stop: stop,
            }),
        }
    }

    /// Whether gate lookups are answered by the pub/sub mirror now (no round trip), rather
    /// than by Redis: once subscribed and while the subscription answers its heartbeat.
    ///
    /// ```no_run
    /// # use towline_redis::{OnFailure, Redis, RedisStore};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let store = RedisStore::new(Redis::open("redis://127.0.0.1/").unwrap(), OnFailure::Closed);
    /// let _mirrored: bool = store.is_mirrored();
    /// # }
    /// ```
    pub fn is_mirrored(&self) -> bool {
        self.inner.mirror.is_live()
    }

    /// Leases quota slots several at a time (see [`Leasing`]): for this store and its
    /// clones. Without it, each paced call reserves its slot in one round trip.
    ///
    /// ```no_run
    /// # use std::num::NonZeroU32;
    /// # use std::time::Duration;
    /// # use towline_redis::{Leasing, OnFailure, Redis, RedisStore};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let leasing = Leasing::new(NonZeroU32::new(8).unwrap(), Duration::from_millis(100));
    /// let store = RedisStore::new(Redis::open("redis://127.0.0.1/").unwrap(), OnFailure::Closed)
    ///     .leasing(leasing);
    /// # let _ = store;
    /// # }
    /// ```
    pub fn leasing(self, leasing: Leasing) -> Self {
        self.inner.leases.set(leasing);
        self
    }

    /// The policy while Redis does not answer.
    pub fn policy(&self) -> OnFailure {
        self.inner.policy
    }
}

impl Inner {
    /// Redis's answer, or (failing open) the local store's, or (failing closed) the error.
    async fn answer<T>(
        &self,
        shared: Result<T, BoxError>,
        local: impl FnOnce(&InMemoryStore) -> StoreFuture<T>,
    ) -> Result<T, BoxError> {
        match shared {
            Ok(value) => {
                self.health.answered();
                Ok(value)
            }
            Err(error) => {
                self.health.failed(self.policy, &*error);
                match self.policy {
                    OnFailure::Open { .. } => local(&self.local).await,
                    OnFailure::Closed => Err(error),
                }
            }
        }
    }
}

impl Inner {
    /// Gives `reservation` back where it was made: the local fallback store or Redis.
    fn release(self: &Arc<Self>, key: &str, reservation: Reservation) {
        let id = reservation.id();
        if id & LOCAL != 0 {
            let local = Reservation::new(reservation.wait(), id & !LOCAL);
            self.local.release(key, local);
        } else {
            self.release_shared(key, vec![id]);
        }
    }

    /// Removes the slots `ids` of `key`'s log. Queued to a task: called from a destructor, it
    /// must not wait for Redis. A release that fails leaves the slots to expire with their
    /// window.
    fn release_shared(self: &Arc<Self>, key: &str, ids: Vec<u64>) {
        let inner = self.clone();
        let log = inner.redis.key("quota", key);
        self.redis.spawn(async move {
            let released = inner
                .redis
                .run("release a quota slot", |mut c| async move {
                    redis::cmd("ZREM")
                        .arg(log)
                        .arg(&ids[..])
                        .query_async::<i64>(&mut c)
                        .await
                })
                .await;
            if let Err(error) = released {
                tracing::debug!(%error, "redis store: a quota slot was not released");
            }
        });
    }
}

impl GateStore for RedisStore {
    fn is_idle(&self) -> bool {
        self.inner.mirror.is_idle() && self.inner.local.is_idle()
    }

    fn closed_for(&self, key: &str) -> StoreFuture<Option<Duration>> {
        let mirror = &self.inner.mirror;
        if mirror.is_live() {
            // This replica's own closes count at once, before their message comes back.
            let local = now_of(self.inner.local.closed_for(key)).ok().flatten();
            return StoreFuture::ready(mirror.closed_for(key).max(local));
        }
        let inner = self.inner.clone();
        let key = key.to_owned();
        StoreFuture::new(async move {
            let gate = inner.redis.key("gate", &key);
            let shared = inner
                .redis
                .run("look up a gate", |mut c| async move {
                    redis::cmd("PTTL")
                        .arg(gate)
                        .query_async::<i64>(&mut c)
                        .await
                })
                .await
                // Rounded up: never open a gate before the instant it was closed until.
                .map(|ms| {
                    u64::try_from(ms)
                        .ok()
                        .map(|ms| Duration::from_millis(ms + 1))
                });
            inner.answer(shared, |local| local.closed_for(&key)).await
        })
    }

    fn close(&self, key: &str, wait: Duration) -> StoreFuture<()> {
        // Kept here too: while failing open, this replica still honours its own 429s.
        drop(self.inner.local.close(key, wait));
        let inner = self.inner.clone();
        let gate = inner.redis.key("gate", key);
        let (channel, name) = (mirror::channel(&inner.redis), key.to_owned());
        let millis = u64::try_from(wait.as_micros().div_ceil(1000))
            .unwrap_or(u64::MAX)
            .clamp(1, FAR_MICROS / 1000);
        let (done, closed) = oneshot::channel();
        // A task of its own: the gate closes even if the caller is dropped meanwhile.
        self.inner.redis.spawn(async move {
            let shared = inner
                .redis
                .run("close a gate", |mut c| async move {
                    scripts::CLOSE
                        .key(gate)
                        .arg(millis)
                        .arg(channel)
                        .arg(name)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
                .await
                .map(drop);
            let outcome = inner.answer(shared, |_| StoreFuture::ready(())).await;
            let _ = done.send(outcome);
        });
        StoreFuture::new(async move {
            closed
                .await
                .unwrap_or_else(|_| Err("the redis close task ended unfinished".into()))
        })
    }

    fn reserve(
        &self,
        key: &str,
        quota: Quota,
        not_before: Duration,
        latest: Duration,
    ) -> StoreFuture<Slot> {
        if let Some(leased) = self.inner.leases.take(key, not_before, latest) {
            return StoreFuture::ready(Slot::Reserved(leased));
        }
        let inner = self.inner.clone();
        let key = key.to_owned();
        let (done, reserved) = oneshot::channel();
        // A task of its own: the slots a lease takes belong to every later call of this
        // replica, and the caller's own slot is given back, even if the caller is dropped
        // while Redis answers.
        self.inner.redis.spawn(async move {
            let keys = [
                inner.redis.key("quota", &key),
                inner.redis.key("quota", &format!("{key}:seq")),
                inner.redis.key("gate", &key),
            ];
            // A validity within the margin leases nothing usable: one slot at a time.
            let leasing = inner
                .leases
                .leasing()
                .filter(|l| l.valid_for() > LATE_MARGIN);
            let slack = leasing.map_or(Duration::ZERO, |l| l.valid_for());
            let args = [
                u64::from(quota.calls()),
                micros(quota.per()),
                micros(not_before),
                micros(latest),
                leasing.map_or(1, |l| u64::from(l.permits().get())),
                micros(slack),
            ];
            let asked = Instant::now();
            let shared = inner
                .redis
                .run("reserve a quota slot", |mut c| async move {
                    scripts::RESERVE
                        .key(&keys[..])
                        .arg(&args[..])
                        .invoke_async::<Vec<u64>>(&mut c)
                        .await
                })
                .await
                .and_then(|answer| {
                    let (slot, leased, spoiled) = slots_of(&answer, asked, slack)?;
                    inner.leases.keep(&key, leased);
                    if !spoiled.is_empty() {
                        // Leased past use (the round trip took their validity): given back.
                        inner.release_shared(&key, spoiled);
                    }
                    Ok(slot)
                });
            let local_quota = inner.policy.local_quota(quota);
            let outcome = inner
                .answer(shared, |local| {
                    local_slot(local.reserve(&key, local_quota, not_before, latest))
                })
                .await;
            if let Err(Ok(Slot::Reserved(unclaimed))) = done.send(outcome) {
                inner.release(&key, unclaimed);
            }
        });
        StoreFuture::new(async move {
            reserved
                .await
                .unwrap_or_else(|_| Err("the redis reserve task ended unfinished".into()))
        })
    }

    fn release(&self, key: &str, reservation: Reservation) {
        self.inner.release(key, reservation);
    }

    fn closed_gates(&self) -> StoreFuture<Vec<(String, Duration)>> {
        let inner = self.inner.clone();
        StoreFuture::new(async move {
            let shared = listing::list_gates(&inner.redis).await;
            inner.answer(shared, |local| local.closed_gates()).await
        })
    }

    fn reopen(&self, key: &str) -> StoreFuture<bool> {
        let inner = self.inner.clone();
        let key = key.to_owned();
        StoreFuture::new(async move {
            let locally = inner.local.reopen(&key).await.unwrap_or(false);
            let gate = inner.redis.key("gate", &key);
            let channel = mirror::channel(&inner.redis);
            let shared = inner
                .redis
                .run("reopen a gate", |mut c| async move {
                    scripts::REOPEN
                        .key(gate)
                        .arg(channel)
                        .arg(key)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
                .await
                .map(|deleted| deleted > 0);
            inner.answer(shared, |_| StoreFuture::ready(locally)).await
        })
    }
}

/// The answer of a store future that is ready at once (the in-memory store's).
fn now_of<T>(mut future: StoreFuture<T>) -> Result<T, BoxError> {
    match Pin::new(&mut future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(answer) => answer,
        Poll::Pending => Err("the local store did not answer at once".into()),
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros())
        .unwrap_or(u64::MAX)
        .min(FAR_MICROS)
}

/// How much sooner than Redis counts it a leased slot's validity ends here: for a timer that
/// fires a little late and the moment between the store's answer and the call's departure.
const LATE_MARGIN: Duration = Duration::from_millis(2);

/// The reserve script's answer: the caller's [`Slot`], the slots leased beside it, and the ids
/// of leased slots already past use.
///
/// A leased slot's wait counts from the answer's arrival, so it is never used early, and its
/// validity from `asked`, before the script ran, less [`LATE_MARGIN`], so it is never used
/// late: Redis counts it until `slack` after its slot, on the server's clock.
fn slots_of(
    answer: &[u64],
    asked: Instant,
    slack: Duration,
) -> Result<(Slot, Vec<Permit>, Vec<u64>), BoxError> {
    let unexpected = || BoxError::from("the redis quota script answered something unexpected");
    match answer {
        [0, earliest] => Ok((
            Slot::Full {
                earliest: Duration::from_micros(*earliest),
            },
            Vec::new(),
            Vec::new(),
        )),
        [1, slots @ ..] if !slots.is_empty() && slots.len() % 2 == 0 => {
            let arrived = Instant::now();
            let mut slots = slots.chunks_exact(2).map(|pair| match *pair {
                [wait, id] if id & LOCAL == 0 => Ok((Duration::from_micros(wait), id)),
                _ => Err(unexpected()),
            });
            let (wait, id) = slots.next().ok_or_else(unexpected)??;
            let (mut leased, mut spoiled) = (Vec::new(), Vec::new());
            for slot in slots {
                let (wait, id) = slot?;
                let until = asked
                    .checked_add(wait.saturating_add(slack))
                    .and_then(|until| until.checked_sub(LATE_MARGIN));
                match (arrived.checked_add(wait), until) {
                    (Some(from), Some(until)) if from < until => {
                        leased.push(Permit { from, until, id });
                    }
                    _ => spoiled.push(id),
                }
            }
            Ok((Slot::Reserved(Reservation::new(wait, id)), leased, spoiled))
        }
        _ => Err(unexpected()),
    }
}

/// A slot of the local fallback store, marked so that it is released there.
fn local_slot(reserved: StoreFuture<Slot>) -> StoreFuture<Slot> {
    StoreFuture::new(async move {
        Ok(match reserved.await? {
            Slot::Reserved(r) => Slot::Reserved(Reservation::new(r.wait(), r.id() | LOCAL)),
            full => full,
        })
    })
}
