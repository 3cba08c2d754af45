//! Three replicas of a service, one API key: the rate-limit gate and the quota shared through
//! Redis, so that a 429 one replica is told about holds all of them, and the quota is paced
//! across all of them.
//!
//! Run it with `cargo run --example redis_replicas` where `redis-server` is installed
//! (`apt-get install redis-server`): it starts its own on 127.0.0.1 at a free port, and its own
//! API server. Without redis-server it says so and exits.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::{BoxError, ServiceExt};
use towline::redis::Redis;
use towline::{OnFailure, Pipeline, Quota, RateLimitLayer, RedisStore};
use towline_testkit::{RedisServer, Reply, TestServer};

const REPLICAS: usize = 3;
const CALLS_PER_REPLICA: usize = 10;
/// How far a call may move between its slot and its arrival at the API.
const JITTER: Duration = Duration::from_millis(50);

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let Some(redis) = RedisServer::start() else {
        // RedisServer::start has said why and how to install it.
        return Ok(());
    };
    let api = TestServer::start().await;
    // The API answers the first request with a 429 and a wait of one second.
    api.script(
        "/orders",
        [
            Reply::status(429).header("retry-after", "1"),
            Reply::ok().body("order"),
        ],
    );

    // Each replica: its own client, its own connection to Redis, its own pipeline. The quota
    // (10 calls per second for the key, the authority) is the vendor's, for all of them.
    let replicas: Vec<_> = (0..REPLICAS)
        .map(|_| {
            let store = RedisStore::new(
                Redis::open(&redis.url())?.prefix("example:"),
                OnFailure::Closed,
            );
            let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
            Ok::<_, BoxError>(
                Pipeline::new()
                    .rate_limit(RateLimitLayer::new().quota(Quota::new(10, Duration::from_secs(1))))
                    .gate_store(store)
                    .service(client),
            )
        })
        .collect::<Result<_, _>>()?;

    let started = Instant::now();
    // Replica 0 meets the 429 first; the others start a moment later.
    let mut calls = Vec::new();
    for (n, replica) in replicas.into_iter().enumerate() {
        let url = api.url("/orders");
        calls.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(if n == 0 { 0 } else { 50 })).await;
            for _ in 0..CALLS_PER_REPLICA {
                let request = Request::get(url.clone()).body(Empty::new())?;
                let response = replica.clone().oneshot(request).await?;
                assert_eq!(response.status(), 200);
            }
            Ok::<_, BoxError>(())
        }));
    }
    for call in calls {
        call.await??;
    }
    let took = started.elapsed();

    let arrivals: Vec<Duration> = api
        .requests_to("/orders")
        .iter()
        .map(|r| r.arrived_at.saturating_duration_since(started))
        .collect();
    let during_the_wait = arrivals
        .iter()
        .skip(1)
        .filter(|at| **at < Duration::from_millis(950))
        .count();
    // Slots are paced by Redis's clock, arrivals timed by the API's: between the two a call
    // moves by a round trip and a task switch, so windows are checked a little shorter.
    let window = Duration::from_secs(1) - JITTER;
    let busiest = arrivals
        .iter()
        .map(|from| {
            arrivals
                .iter()
                .filter(|at| **at >= *from && **at < *from + window)
                .count()
        })
        .max()
        .unwrap_or(0);
    println!(
        "{REPLICAS} replicas, {} calls, {} requests at the API, in {} ms",
        REPLICAS * CALLS_PER_REPLICA,
        arrivals.len(),
        took.as_millis()
    );
    println!("requests during replica 0's 429 wait (from any replica): {during_the_wait}");
    println!(
        "most requests in any window of {} ms: {busiest} (the quota: 10 per second)",
        window.as_millis()
    );
    assert_eq!(during_the_wait, 0, "the gate held every replica");
    assert!(busiest <= 10, "the quota held across replicas");
    Ok(())
}
