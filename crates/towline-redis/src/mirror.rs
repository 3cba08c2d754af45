//! A mirror of the closed gates in this process, kept by pub/sub: an open gate is checked
//! without a round trip to Redis.
//!
//! Closing (and reopening) a gate publishes it, from inside the script that changes it, on
//! `<prefix>gates`. A task per store subscribes, then lists the gates already closed (so
//! nothing published before it subscribed is missed), and from then on the mirror answers
//! gate lookups. It is trusted only while its connection is proven alive: a heartbeat `PING`
//! every [`HEARTBEAT`]; when the connection ends or a ping fails, lookups go to Redis again
//! until the task has subscribed and listed the gates anew.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio::time::Instant;
use towline_ratelimit::{GateStore, InMemoryStore};

use crate::connection::Redis;

/// How often the subscription proves it is alive: a silently broken connection is trusted
/// for at most this long plus one operation limit.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(500);

/// The wait before subscribing again after a failure.
const RESUBSCRIBE: Duration = Duration::from_millis(100);

/// "Never", as the rate-limit layer counts it: about 30 years.
const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);

#[derive(Debug, Default)]
pub(crate) struct Mirror {
    /// Whether the subscription is alive and the listing done: only then are lookups local.
    live: AtomicBool,
    /// How many gates the map holds (expired ones not yet removed included).
    gates: AtomicUsize,
    map: Mutex<HashMap<String, Instant>>,
}

impl Mirror {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether lookups may be answered here.
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    /// Live, and no gate closed anywhere.
    pub(crate) fn is_idle(&self) -> bool {
        self.is_live() && self.gates.load(Ordering::Acquire) == 0
    }

    /// How long the gate of `key` stays closed, by this mirror (forgetting expired gates).
    pub(crate) fn closed_for(&self, key: &str) -> Option<Duration> {
        if self.gates.load(Ordering::Acquire) == 0 {
            return None;
        }
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, until| *until > now);
        self.gates.store(map.len(), Ordering::Release);
        map.get(key).map(|until| *until - now)
    }

    /// A gate closed for `left` from now (only ever extended), or reopened (`None`).
    fn apply(&self, key: &str, left: Option<Duration>) {
        let mut map = self.lock();
        match left {
            Some(left) => {
                let now = Instant::now();
                let until = now.checked_add(left.min(FAR)).unwrap_or(now);
                let entry = map.entry(key.to_owned()).or_insert(until);
                *entry = (*entry).max(until);
            }
            None => {
                map.remove(key);
            }
        }
        self.gates.store(map.len(), Ordering::Release);
    }

    /// Reads one message: `<ms left> <key>`; `0` reopens (answering the key reopened).
    fn message<'a>(&self, payload: &'a str) -> Option<&'a str> {
        let (ms, key) = payload.split_once(' ')?;
        match ms.parse::<u64>() {
            Ok(0) => {
                self.apply(key, None);
                return Some(key);
            }
            Ok(ms) => self.apply(key, Some(Duration::from_millis(ms))),
            Err(_) => {}
        }
        None
    }
}

/// The channel gates are published on.
pub(crate) fn channel(redis: &Redis) -> String {
    redis.key("gates", "").trim_end_matches(':').to_owned()
}

/// Keeps `mirror` until `stop` fires (its store dropped).
///
/// A reopened gate is reopened in `local` too: this replica's own copy of the gates it
/// closed must not keep it shut after an operator opened it elsewhere.
pub(crate) async fn keep(
    mirror: Arc<Mirror>,
    local: Arc<InMemoryStore>,
    redis: Redis,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            () = follow(&mirror, &local, &redis) => {}
        }
        mirror.live.store(false, Ordering::Release);
        tokio::select! {
            _ = &mut stop => return,
            () = tokio::time::sleep(RESUBSCRIBE) => {}
        }
    }
}

/// One subscription, for as long as it lives.
async fn follow(mirror: &Mirror, local: &InMemoryStore, redis: &Redis) {
    let Ok(pubsub) = redis.pubsub().await else {
        return;
    };
    let (mut sink, mut stream) = pubsub.split();
    let limit = redis.limit();
    let subscribed = tokio::time::timeout(limit, sink.subscribe(channel(redis))).await;
    if !matches!(subscribed, Ok(Ok(()))) {
        return;
    }
    // Gates closed before the subscription: listed after it, so none falls in between.
    let Ok(gates) = crate::listing::list_gates(redis).await else {
        return;
    };
    for (key, left) in gates {
        mirror.apply(&key, Some(left));
    }
    mirror.live.store(true, Ordering::Release);
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(message) => {
                    if let Ok(payload) = message.get_payload::<String>()
                        && let Some(reopened) = mirror.message(&payload)
                    {
                        drop(local.reopen(reopened));
                    }
                }
                None => return,
            },
            _ = heartbeat.tick() => {
                let pong = tokio::time::timeout(limit, sink.ping::<redis::Value>()).await;
                if !matches!(pong, Ok(Ok(_))) {
                    return;
                }
            }
        }
    }
}
