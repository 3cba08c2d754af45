//! Hedging over loopback against a test server whose one call in ten stalls for 2 s.
//!
//! Real sockets, so real time: the assertions leave wide margins, and the test takes about
//! ten hedge delays plus one slow POST (a few hundred ms), never the 2 s stalls, because the
//! stalled attempts are dropped.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use towline_retry::{HedgeLayer, RetryBudget};
use towline_testkit::{Reply, TestServer};

const CALLS: usize = 100;
const HEDGE_AFTER: Duration = Duration::from_millis(20);
const STALL: Duration = Duration::from_secs(2);

#[tokio::test]
async fn hedging_cuts_the_tail_within_its_budget_and_never_hedges_a_post() {
    let server = TestServer::start().await;
    // Call n stalls the first time it is seen when n % 10 == 9; a hedged copy answers at once.
    let seen = Arc::new(Mutex::new(HashSet::new()));
    server.route_fn("/items", move |request| {
        let n: usize = request.query().and_then(|q| q.parse().ok()).unwrap_or(0);
        let first = seen.lock().unwrap().insert(n);
        if first && n % 10 == 9 {
            Reply::ok().delay(STALL)
        } else {
            Reply::ok()
        }
    });
    // A POST stalls (shorter, to keep the test quick) where a GET would have been hedged.
    server.route_fn("/orders", |request| match request.query() {
        Some("9") => Reply::ok().delay(HEDGE_AFTER * 5),
        _ => Reply::ok(),
    });

    let ratio = 0.2_f32;
    let budget = RetryBudget::new(Duration::from_secs(10), 0, ratio).unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let service = HedgeLayer::after(HEDGE_AFTER)
        .own_budget(budget)
        .layer(client);

    let mut latencies = Vec::with_capacity(CALLS);
    for n in 0..CALLS {
        let request = Request::get(server.url(&format!("/items?{n}")))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let started = Instant::now();
        let response = service.clone().oneshot(request).await.unwrap();
        latencies.push(started.elapsed());
        assert!(response.status().is_success());
    }
    latencies.sort();
    let p99 = latencies[CALLS * 99 / 100 - 1];
    assert!(
        p99 >= HEDGE_AFTER,
        "p99 {p99:?}: the slow calls waited for the hedge"
    );
    assert!(
        p99 < HEDGE_AFTER + Duration::from_millis(200),
        "p99 {p99:?}: a hedge delay and a fast answer, not the {STALL:?} stall"
    );
    let gets = server.requests_to("/items").len();
    eprintln!(
        "p50 {:?}, p99 {p99:?}, {gets} requests for {CALLS} calls",
        latencies[CALLS / 2]
    );
    assert!(
        gets >= CALLS + CALLS / 10,
        "every stalled call was hedged: {gets}"
    );
    assert!(
        gets as f64 <= (1.0 + f64::from(ratio)) * CALLS as f64,
        "{gets} requests for {CALLS} calls"
    );

    for n in 0..10 {
        let request = Request::builder()
            .method(Method::POST)
            .uri(server.url(&format!("/orders?{n}")))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        service.clone().oneshot(request).await.unwrap();
    }
    assert_eq!(
        server.requests_to("/orders").len(),
        10,
        "no POST was hedged"
    );
}
