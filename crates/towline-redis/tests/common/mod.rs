//! What the Redis tests share: a server of their own, stores on it, a raw connection.
#![allow(dead_code, unreachable_pub)]

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use towline_redis::{OnFailure, Redis, RedisStore};
pub use towline_testkit::RedisServer;

/// A prefix of its own per store family, so tests on one server never meet.
pub fn prefix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("t{}:", N.fetch_add(1, Ordering::Relaxed))
}

pub fn redis(server: &RedisServer, prefix: &str) -> Redis {
    Redis::open(&server.url()).unwrap().prefix(prefix)
}

pub fn open(replicas: u32) -> OnFailure {
    OnFailure::Open {
        replicas: NonZeroU32::new(replicas).unwrap(),
    }
}

pub fn store(server: &RedisServer, prefix: &str, policy: OnFailure) -> RedisStore {
    RedisStore::new(redis(server, prefix), policy)
}

/// A plain connection, to look at what the stores wrote.
pub async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Waits (real time, bounded) until `check` holds.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 2 s: {what}");
}

/// Commands Redis has processed so far.
pub async fn commands(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(raw)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("total_commands_processed:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap()
}
