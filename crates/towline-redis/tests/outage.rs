//! Redis killed mid-run and restarted: no call outlives its deadline, each failure policy
//! does what it says, and sharing resumes.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use towline_core::{Deadline, StoreUnavailable};
use towline_ratelimit::{GateStore, Quota, RateLimitLayer};
use towline_redis::OnFailure;
use towline_testkit::{Reply, TestServer};

const DEADLINE: Duration = Duration::from_millis(300);

/// Calls for 1.5 s, each with a deadline, while Redis is killed and restarted; answers how
/// many succeeded and failed with `StoreUnavailable`, and the longest call.
async fn calls_through_an_outage(
    mut redis: RedisServer,
    policy: OnFailure,
) -> (usize, usize, Duration) {
    let server = TestServer::start().await;
    server.route("/api", Reply::ok());
    let store = store(&redis, &prefix(), policy);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let service = RateLimitLayer::new()
        .store(store.clone())
        .quota(Quota::new(1000, Duration::from_secs(1)))
        .layer(client);
    let (mut ok, mut unavailable, mut longest) = (0, 0, Duration::ZERO);
    let started = Instant::now();
    let mut stopped = false;
    while started.elapsed() < Duration::from_millis(1500) {
        if !stopped && started.elapsed() > Duration::from_millis(300) {
            redis.stop();
            stopped = true;
        }
        let mut request = http::Request::get(server.url("/api"))
            .body(Full::default())
            .unwrap();
        Deadline::after(DEADLINE).tighten(request.extensions_mut());
        let call = Instant::now();
        // The caller's deadline, as a deadline layer would enforce it: it must never fire.
        let outcome = tokio::time::timeout(DEADLINE, service.clone().oneshot(request)).await;
        longest = longest.max(call.elapsed());
        match outcome.expect("a call outlived its deadline") {
            Ok(_) => ok += 1,
            Err(error) if towline_core::find::<StoreUnavailable>(&*error).is_some() => {
                unavailable += 1
            }
            Err(error) => panic!("unexpected: {error}"),
        }
    }
    redis.restart();
    // Sharing resumes: a gate closed now by this store is seen through Redis.
    eventually("the store answers again", async || {
        store.closed_for("k").await.is_ok()
    })
    .await;
    (ok, unavailable, longest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_open_keeps_calling_through_an_outage_within_the_deadline() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (ok, unavailable, longest) = calls_through_an_outage(redis, common::open(2)).await;
    assert_eq!(unavailable, 0);
    assert!(ok > 10, "{ok}");
    assert!(longest < DEADLINE, "{longest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_closed_fails_calls_unsent_during_an_outage_within_the_deadline() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (ok, unavailable, longest) = calls_through_an_outage(redis, OnFailure::Closed).await;
    assert!(ok > 0, "calls before the outage went");
    assert!(unavailable > 0, "calls during the outage failed closed");
    assert!(longest < DEADLINE, "{longest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_is_shared_again_after_redis_restarts() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let prefix = prefix();
    let (a, b) = (
        store(&redis, &prefix, OnFailure::Closed),
        store(&redis, &prefix, common::open(2)),
    );
    a.close("k", Duration::from_secs(5)).await.unwrap();
    redis.stop();
    eventually("a's mirror is dropped", async || !a.is_mirrored()).await;
    assert!(a.closed_for("k").await.is_err(), "closed: fails");
    redis.restart();
    // Redis came back empty: a new 429 closes the gate for both again.
    eventually("a answers", async || a.closed_for("k").await.is_ok()).await;
    a.close("k", Duration::from_secs(5)).await.unwrap();
    eventually("b sees the gate through Redis", async || {
        matches!(b.closed_for("k").await, Ok(Some(_)))
    })
    .await;
    assert!(
        b.closed_gates()
            .await
            .unwrap()
            .iter()
            .any(|(key, _)| key == "k")
    );
}
