//! `RedisStore` against a real redis-server: the guarantees of `GateStore`, shared.

mod common;

use std::time::Duration;

use common::*;
use redis::AsyncCommands;
use towline_ratelimit::{GateStore, Quota, Slot};
use towline_redis::OnFailure;

fn wait_of(slot: Slot) -> Duration {
    match slot {
        Slot::Reserved(reservation) => reservation.wait(),
        Slot::Full { earliest } => panic!("refused, earliest in {earliest:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_closed_by_one_replica_holds_another() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let (a, b) = (
        store(&server, &prefix, open(2)),
        store(&server, &prefix, open(2)),
    );
    assert_eq!(b.closed_for("k").await.unwrap(), None);
    a.close("k", Duration::from_secs(5)).await.unwrap();
    // At once in Redis; in b's mirror (if it is live) as soon as the message comes.
    assert_eq!(b.closed_gates().await.unwrap().len(), 1);
    eventually("closed for b too", async || {
        b.closed_for("k")
            .await
            .unwrap()
            .is_some_and(|d| d > Duration::from_millis(4900) && d <= Duration::from_millis(5001))
    })
    .await;
    assert!(b.reopen("k").await.unwrap());
    eventually("open for a too", async || {
        a.closed_for("k").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_gate_only_extends_it() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let (a, stale) = (
        store(&server, &prefix, open(2)),
        store(&server, &prefix, open(2)),
    );
    a.close("k", Duration::from_secs(10)).await.unwrap();
    // A replica that saw an older, shorter hint cannot reopen the gate early.
    stale.close("k", Duration::from_millis(10)).await.unwrap();
    let closed = a.closed_for("k").await.unwrap().unwrap();
    assert!(closed > Duration::from_secs(9), "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_never_lets_more_calls_into_any_window_across_replicas() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let stores = [
        store(&server, &prefix, open(2)),
        store(&server, &prefix, open(2)),
    ];
    let per = Duration::from_secs(10);
    let quota = Quota::new(10, per);
    let far = Duration::from_secs(3600);
    let mut waits = Vec::new();
    for i in 0..25 {
        let slot = stores[i % 2]
            .reserve("k", quota, Duration::ZERO, far)
            .await
            .unwrap();
        waits.push(wait_of(slot));
    }
    // Ten now, ten one window later, five two windows later (each measured from its answer).
    let ms = |d: &Duration| d.as_millis();
    assert!(waits[..10].iter().all(|w| ms(w) < 100), "{waits:?}");
    assert!(
        waits[10..20]
            .iter()
            .all(|w| ms(w) > 9800 && ms(w) <= 10_000),
        "{waits:?}"
    );
    assert!(
        waits[20..]
            .iter()
            .all(|w| ms(w) > 19_800 && ms(w) <= 20_000),
        "{waits:?}"
    );
    // Past the longest wait: refused, and nothing reserved.
    let full = stores[0]
        .reserve("k", quota, Duration::ZERO, per)
        .await
        .unwrap();
    assert!(
        matches!(full, Slot::Full { earliest } if earliest > per),
        "{full:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_waits_out_a_gate_another_replica_closed() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let (a, b) = (
        store(&server, &prefix, open(2)),
        store(&server, &prefix, open(2)),
    );
    a.close("k", Duration::from_secs(3)).await.unwrap();
    let quota = Quota::new(100, Duration::from_secs(1));
    let wait = wait_of(
        b.reserve("k", quota, Duration::ZERO, Duration::from_secs(60))
            .await
            .unwrap(),
    );
    assert!(wait > Duration::from_millis(2900), "{wait:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_reservation_frees_its_slot_for_every_replica() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let (a, b) = (
        store(&server, &prefix, open(2)),
        store(&server, &prefix, open(2)),
    );
    let quota = Quota::new(1, Duration::from_secs(30));
    let far = Duration::from_secs(3600);
    wait_of(a.reserve("k", quota, Duration::ZERO, far).await.unwrap());
    let Slot::Reserved(second) = a.reserve("k", quota, Duration::ZERO, far).await.unwrap() else {
        panic!("refused")
    };
    assert!(second.wait() > Duration::from_secs(29));
    // From a destructor, in practice: queued, never waited for.
    a.release("k", second);
    let mut raw = raw(&server).await;
    let log = format!("{prefix}quota:k");
    eventually("the slot is released", async || {
        raw.zcard::<_, u64>(&log).await.unwrap() == 1
    })
    .await;
    let third = wait_of(b.reserve("k", quota, Duration::ZERO, far).await.unwrap());
    assert!(third > Duration::from_secs(29) && third <= Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_carries_a_ttl() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let store = store(&server, &prefix, open(1));
    store.close("gated", Duration::from_secs(5)).await.unwrap();
    let quota = Quota::new(2, Duration::from_secs(7));
    for _ in 0..3 {
        store
            .reserve("paced", quota, Duration::ZERO, Duration::from_secs(60))
            .await
            .unwrap();
    }
    let mut raw = raw(&server).await;
    let keys: Vec<String> = raw.keys(format!("{prefix}*")).await.unwrap();
    assert_eq!(keys.len(), 3, "{keys:?}");
    for key in keys {
        let ttl: i64 = raw.pttl(&key).await.unwrap();
        // The log lives one window past its last slot (7 s from now), no longer.
        assert!(ttl > 0 && ttl <= 14_002, "{key}: {ttl}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durations_of_any_size_never_panic() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store(&server, &prefix(), OnFailure::Closed);
    store.close("k", Duration::MAX).await.unwrap();
    assert!(store.closed_for("k").await.unwrap().unwrap() > Duration::from_secs(86_400 * 365));
    let quota = Quota::new(u32::MAX, Duration::MAX);
    let slot = store
        .reserve("q", quota, Duration::MAX, Duration::MAX)
        .await
        .unwrap();
    assert!(matches!(slot, Slot::Reserved(_)), "{slot:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_open_answers_from_local_state_with_the_quota_divided() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let store = store(&server, &prefix(), open(4));
    store.close("k", Duration::from_secs(5)).await.unwrap();
    server.stop();
    let started = tokio::time::Instant::now();
    // This replica's own gate still holds; the lookup gave up within its limit.
    assert!(store.closed_for("k").await.unwrap().is_some());
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let quota = Quota::new(8, Duration::from_secs(60));
    let far = Duration::from_secs(600);
    let mut now = 0;
    for _ in 0..4 {
        let slot = store
            .reserve("q", quota, Duration::ZERO, far)
            .await
            .unwrap();
        if wait_of(slot) < Duration::from_secs(1) {
            now += 1;
        }
    }
    assert_eq!(now, 2, "8 calls shared by 4 replicas: 2 each while alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_closed_fails_unsent_with_store_unavailable_within_the_limit() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let store = store(&server, &prefix(), OnFailure::Closed);
    server.stop();
    // Gate lookups go to Redis once the mirror has seen its subscription end.
    eventually("the mirror is dropped", async || !store.is_mirrored()).await;
    let started = tokio::time::Instant::now();
    let error = store.closed_for("k").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let unavailable = towline_core::find::<towline_core::StoreUnavailable>(&*error)
        .unwrap_or_else(|| panic!("typed: {error}"));
    assert_eq!(unavailable.store(), "redis");
    let quota = Quota::new(8, Duration::from_secs(60));
    assert!(
        store
            .reserve("q", quota, Duration::ZERO, Duration::ZERO)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_resumes_after_redis_restarts() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let (a, b) = (
        store(&server, &prefix, OnFailure::Closed),
        store(&server, &prefix, open(2)),
    );
    assert_eq!(a.closed_for("k").await.unwrap(), None);
    assert_eq!(b.closed_for("k").await.unwrap(), None);
    server.restart();
    // The connections reconnect on their own; the first lookups may still fail.
    eventually("a shares again", async || a.closed_for("k").await.is_ok()).await;
    a.close("k", Duration::from_secs(5)).await.unwrap();
    eventually("b sees a's gate", async || {
        b.closed_for("k")
            .await
            .unwrap()
            .is_some_and(|d| d > Duration::from_secs(4))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_gate_is_checked_without_a_round_trip_once_mirrored() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store(&server, &prefix(), OnFailure::Closed);
    eventually("the mirror is live", async || store.is_mirrored()).await;
    assert!(
        store.is_idle(),
        "no gate closed anywhere: the layer skips the lookup"
    );
    let mut raw = raw(&server).await;
    let before = commands(&mut raw).await;
    for _ in 0..100 {
        assert_eq!(store.closed_for("k").await.unwrap(), None);
    }
    // INFO itself, and perhaps a heartbeat PING: not a hundred lookups.
    let after = commands(&mut raw).await;
    assert!(
        after - before <= 3,
        "{} commands for 100 lookups",
        after - before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_closed_by_another_replica_reaches_the_mirror() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let a = store(&server, &prefix, OnFailure::Closed);
    // Closed before b exists, so before it subscribed: b lists it. (Made together, b could
    // subscribe and list first, and hear of the gate only by the message, a moment later.)
    a.close("early", Duration::from_secs(5)).await.unwrap();
    let b = store(&server, &prefix, OnFailure::Closed);
    eventually("b's mirror is live", async || b.is_mirrored()).await;
    assert!(b.closed_for("early").await.unwrap().is_some());
    // Closed after: b hears it.
    a.close("late", Duration::from_secs(5)).await.unwrap();
    eventually("b hears of the gate", async || {
        b.closed_for("late")
            .await
            .unwrap()
            .is_some_and(|d| d > Duration::from_secs(4))
    })
    .await;
    assert!(!b.is_idle());
    assert!(a.reopen("late").await.unwrap());
    eventually("b hears it reopened", async || {
        b.closed_for("late").await.unwrap().is_none()
    })
    .await;
}
