//! `RedisStore` with quota slots leased several at a time, against a real redis-server: the
//! calls that find a leased slot cost no round trip, and the quota holds however late in its
//! validity a leased slot is used.

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::*;
use redis::AsyncCommands;
use tokio::time::{Instant, sleep};
use towline_ratelimit::{GateStore, Quota, Slot};
use towline_redis::{Leasing, OnFailure, RedisStore};

const FAR: Duration = Duration::from_secs(3600);

fn leasing(permits: u32, valid_for: Duration) -> Leasing {
    Leasing::new(NonZeroU32::new(permits).unwrap(), valid_for)
}

/// Reserves a slot of `key` and answers when, on this process's clock, its call may go.
async fn goes(store: &RedisStore, quota: Quota) -> Instant {
    match store
        .reserve("k", quota, Duration::ZERO, FAR)
        .await
        .unwrap()
    {
        Slot::Reserved(reservation) => Instant::now() + reservation.wait(),
        Slot::Full { earliest } => panic!("refused, earliest in {earliest:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_leasing_most_reservations_cost_no_round_trip() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let store =
        store(&server, &prefix, OnFailure::Closed).leasing(leasing(10, Duration::from_secs(5)));
    eventually("the mirror is live", async || store.is_mirrored()).await;
    let quota = Quota::new(1000, Duration::from_secs(60));
    let mut raw = raw(&server).await;
    let before = server.command_calls("evalsha");
    for _ in 0..100 {
        let wait = goes(&store, quota)
            .await
            .saturating_duration_since(Instant::now());
        assert!(wait < Duration::from_millis(50), "{wait:?}");
    }
    let log: u64 = raw.zcard(format!("{prefix}quota:k")).await.unwrap();
    assert_eq!(log, 100, "ten leases of ten slots");
    // One script per ten calls (and perhaps one refused before the script was loaded).
    let scripts = server.command_calls("evalsha") - before;
    assert!(
        (10..=11).contains(&scripts),
        "{scripts} scripts for 100 calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_slot_used_late_in_its_validity_still_keeps_the_quota_across_replicas() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let valid_for = Duration::from_millis(300);
    let (a, b) = (
        store(&server, &prefix, OnFailure::Closed).leasing(leasing(3, valid_for)),
        store(&server, &prefix, OnFailure::Closed).leasing(leasing(3, valid_for)),
    );
    let per = Duration::from_secs(1);
    let quota = Quota::new(6, per);
    let mut calls = vec![goes(&a, quota).await, goes(&b, quota).await];
    // Each replica holds two leased slots; they go as late as their validity allows.
    sleep(Duration::from_millis(250)).await;
    for _ in 0..2 {
        calls.push(goes(&a, quota).await);
        calls.push(goes(&b, quota).await);
    }
    // The quota is spent: the next calls are placed a window after the latest instant the
    // leased slots could have gone, not a window after they were leased.
    for _ in 0..3 {
        calls.push(goes(&a, quota).await);
        calls.push(goes(&b, quota).await);
    }
    calls.sort();
    // A few milliseconds for the two clocks (Redis's and ours) and the round trips.
    let window = per - Duration::from_millis(5);
    for (i, first) in calls.iter().enumerate() {
        let inside = calls[i..]
            .iter()
            .take_while(|c| **c < *first + window)
            .count();
        assert!(inside <= 6, "{inside} calls within {window:?}: {calls:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_slot_is_not_used_past_its_validity() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let store =
        store(&server, &prefix, OnFailure::Closed).leasing(leasing(3, Duration::from_millis(500)));
    let quota = Quota::new(100, Duration::from_secs(60));
    goes(&store, quota).await;
    let mut raw = raw(&server).await;
    let log = format!("{prefix}quota:k");
    assert_eq!(raw.zcard::<_, u64>(&log).await.unwrap(), 3);
    goes(&store, quota).await;
    assert_eq!(raw.zcard::<_, u64>(&log).await.unwrap(), 3, "a leased slot");
    sleep(Duration::from_millis(600)).await;
    // The last leased slot's time is up: a new lease.
    goes(&store, quota).await;
    assert_eq!(raw.zcard::<_, u64>(&log).await.unwrap(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_slot_whose_call_is_dropped_is_released_for_every_replica() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let store =
        store(&server, &prefix, OnFailure::Closed).leasing(leasing(2, Duration::from_secs(5)));
    let quota = Quota::new(100, Duration::from_secs(60));
    goes(&store, quota).await;
    let Slot::Reserved(leased) = store
        .reserve("k", quota, Duration::ZERO, FAR)
        .await
        .unwrap()
    else {
        panic!("refused")
    };
    store.release("k", leased);
    let mut raw = raw(&server).await;
    let log = format!("{prefix}quota:k");
    eventually("the leased slot is released", async || {
        raw.zcard::<_, u64>(&log).await.unwrap() == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_slot_is_not_taken_for_a_call_that_must_wait_past_it() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store(&server, &prefix(), OnFailure::Closed)
        .leasing(leasing(2, Duration::from_millis(500)));
    let quota = Quota::new(100, Duration::from_secs(60));
    goes(&store, quota).await;
    // Held by a gate for a second, the call cannot use a slot that expires before then.
    let Slot::Reserved(later) = store
        .reserve("k", quota, Duration::from_secs(1), FAR)
        .await
        .unwrap()
    else {
        panic!("refused")
    };
    assert!(later.wait() >= Duration::from_millis(990), "{later:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validity_too_short_to_use_leases_nothing() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    // 1 ms: less than the margin kept for a late timer, so every slot would be past use.
    let store =
        store(&server, &prefix, OnFailure::Closed).leasing(leasing(10, Duration::from_millis(1)));
    let quota = Quota::new(100, Duration::from_secs(60));
    for _ in 0..3 {
        goes(&store, quota).await;
    }
    let mut raw = raw(&server).await;
    let log: u64 = raw.zcard(format!("{prefix}quota:k")).await.unwrap();
    assert_eq!(log, 3, "one slot a call, none leased and wasted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_caller_is_dropped_still_serves_the_next_calls() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let store =
        store(&server, &prefix, OnFailure::Closed).leasing(leasing(4, Duration::from_secs(5)));
    let quota = Quota::new(100, Duration::from_secs(60));
    // Dropped before Redis answers: the lease still lands, and the caller's slot is given back.
    drop(store.reserve("k", quota, Duration::ZERO, FAR));
    let mut raw = raw(&server).await;
    let log = format!("{prefix}quota:k");
    eventually("the dropped caller's slot is released", async || {
        raw.zcard::<_, u64>(&log).await.unwrap() == 3
    })
    .await;
    let before = server.command_calls("evalsha");
    for _ in 0..3 {
        goes(&store, quota).await;
    }
    assert_eq!(
        server.command_calls("evalsha") - before,
        0,
        "the three leased slots served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leasing_at_the_extremes_never_panics() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = store(&server, &prefix(), OnFailure::Closed)
        .leasing(Leasing::new(NonZeroU32::MAX, Duration::MAX));
    let quota = Quota::new(u32::MAX, Duration::MAX);
    for _ in 0..3 {
        // An answer, whichever: no panic, no error.
        store
            .reserve("k", quota, Duration::MAX, Duration::MAX)
            .await
            .unwrap();
    }
}
