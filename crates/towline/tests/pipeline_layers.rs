//! The `Pipeline` wires every layer: the circuit breaker, hedging, the concurrency limit, a
//! shared gate store, and a rate limit the decoder recognises outside 429/503 (the spans: `pipeline_telemetry.rs`). Each test runs the whole pipeline over
//! hyper-util against the loopback server, under a paused clock.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::ServiceExt;
use towline::breaker::{BulkheadLayer, CircuitBreakerLayer, CircuitState, Settings};
use towline::core::Attempts;
use towline::ratelimit::InMemoryStore;
use towline::retry::HedgeLayer;
use towline::retry::{Backoff, RetryLayer, RetryPolicy};
use towline::{DeadlineLayer, Error, ErrorKind, Pipeline, RateLimitLayer};
use towline_testkit::{Reply, TestServer};

type Hyper = Client<HttpConnector, Empty<Bytes>>;

fn client() -> Hyper {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Three retries 100 ms apart, no budget: every retry the tests expect happens.
fn retry() -> RetryLayer {
    RetryLayer::with_policy(
        RetryPolicy::new()
            .backoff(Backoff::constant(Duration::from_millis(100)))
            .no_budget(),
    )
}

fn get(server: &TestServer, path: &str) -> Request<Empty<Bytes>> {
    Request::get(server.url(path)).body(Empty::new()).unwrap()
}

/// The typed error of one call through `service`, which must fail.
async fn failure<S>(service: &S, request: Request<Empty<Bytes>>) -> Error
where
    S: tower::Service<Request<Empty<Bytes>>, Error = tower::BoxError> + Clone,
    S::Response: std::fmt::Debug,
{
    Error::from(service.clone().oneshot(request).await.unwrap_err())
}

/// Until the server has logged a request.
async fn first_request_arrived(server: &TestServer) {
    while server.request_count() == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_pipeline_opens_the_circuit_of_a_failing_host_and_the_server_sees_no_more() {
    let server = TestServer::start().await;
    server.route("/down", Reply::status(500));
    let breaker =
        CircuitBreakerLayer::with_settings(Settings::new().consecutive_failures(3)).unwrap();
    let circuits = breaker.circuits();
    let service = Pipeline::new()
        .retry(retry())
        .circuit_breaker(breaker)
        .service(client());

    // Three 500s open the circuit: the fourth attempt of the same call is refused unsent.
    let err = failure(&service, get(&server, "/down")).await;
    assert_eq!(err.kind(), ErrorKind::CircuitOpen, "{}", err.chain());
    assert_eq!(server.request_count(), 3);
    let key = server.authority().to_string();
    assert!(matches!(
        circuits.state(&key),
        Some(CircuitState::Open { .. })
    ));

    // The next call fails at once, and the server sees nothing of it.
    let begun = Instant::now();
    let err = failure(&service, get(&server, "/down")).await;
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(begun.elapsed(), Duration::ZERO);
    assert_eq!(server.request_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_default_pipeline_keeps_the_circuit_closed_below_the_minimum_throughput() {
    let server = TestServer::start().await;
    server.route("/down", Reply::status(500));
    let service = Pipeline::new().retry(retry()).service(client());
    // 10 calls of 4 attempts: 40 failures, fewer than the 100 calls the default needs.
    for _ in 0..10 {
        let err = failure(&service, get(&server, "/down")).await;
        assert_eq!(err.kind(), ErrorKind::Api, "{}", err.chain());
    }
    assert_eq!(server.request_count(), 40);
}

#[tokio::test(start_paused = true)]
async fn pipelines_sharing_a_gate_store_hold_each_other() {
    let server = TestServer::start().await;
    server.script(
        "/limited",
        [
            Reply::status(429).header("retry-after", "2"),
            Reply::ok(),
            Reply::ok(),
        ],
    );
    let store = Arc::new(InMemoryStore::new());
    // Two replicas: separate pipelines, separate clients, one store.
    let a = Pipeline::new()
        .retry(retry())
        .gate_store(store.clone())
        .service(client());
    // The store given before the rate-limit layer still holds.
    let b = Pipeline::new()
        .retry(retry())
        .gate_store(store.clone())
        .rate_limit(RateLimitLayer::new())
        .service(client());

    let begun = Instant::now();
    let first = tokio::spawn(a.oneshot(get(&server, "/limited")));
    // Let a's 429 arrive and close the gate before b calls.
    first_request_arrived(&server).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let second = b.oneshot(get(&server, "/limited")).await.unwrap();
    assert_eq!(second.status(), 200);
    assert!(
        begun.elapsed() >= Duration::from_secs(2),
        "b waited out a's gate: {:?}",
        begun.elapsed()
    );
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
    assert_eq!(server.request_count(), 3);
}

/// GitHub's secondary rate limit is a 403 with `retry-after` (issue 18): the gate closes for
/// the host, and no request goes out to it until the server's time.
#[tokio::test(start_paused = true)]
async fn a_rate_limit_403_closes_the_gate_for_the_host() {
    let server = TestServer::start().await;
    server.route(
        "/repos",
        Reply::status(403).header("retry-after", "60").json(
            r#"{"message":"You have exceeded a secondary rate limit.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}"#,
        ),
    );
    server.route("/user", Reply::ok());
    let service = Pipeline::new()
        .retry(retry())
        .deadline(DeadlineLayer::new(Duration::from_secs(10)))
        .service(client());

    let err = failure(&service, get(&server, "/repos")).await;
    assert!(
        matches!(err.kind(), ErrorKind::RateLimited | ErrorKind::Api),
        "{}",
        err.chain()
    );
    // Another path on the same host: held by the gate (60 s, past its 10 s deadline), unsent.
    let err = failure(&service, get(&server, "/user")).await;
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{}", err.chain());
    assert_eq!(server.requests_to("/repos").len(), 1);
    assert!(server.requests_to("/user").is_empty());
}

/// A plain 403 is an answer: final, and it closes nothing.
#[tokio::test(start_paused = true)]
async fn a_plain_403_stays_final_and_closes_nothing() {
    let server = TestServer::start().await;
    server.route(
        "/repos",
        Reply::status(403).json(r#"{"message":"Resource not accessible by integration"}"#),
    );
    server.route("/user", Reply::ok());
    let service = Pipeline::new().retry(retry()).service(client());

    let err = failure(&service, get(&server, "/repos")).await;
    assert_eq!(err.kind(), ErrorKind::Api, "{}", err.chain());
    assert_eq!(server.requests_to("/repos").len(), 1);
    let response = service.oneshot(get(&server, "/user")).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(start_paused = true)]
async fn the_pipeline_hedges_a_slow_get_when_asked() {
    let server = TestServer::start().await;
    server.script(
        "/slow-once",
        [
            Reply::ok().body("late").delay(Duration::from_secs(5)),
            Reply::ok().body("quick"),
        ],
    );
    let service = Pipeline::new()
        .retry(retry())
        .hedge(HedgeLayer::after(Duration::from_millis(100)))
        .service(client());

    let begun = Instant::now();
    let response = service.oneshot(get(&server, "/slow-once")).await.unwrap();
    assert!(
        begun.elapsed() < Duration::from_secs(1),
        "{:?}",
        begun.elapsed()
    );
    let attempts = Attempts::from_extensions(response.extensions()).expect("a hedged call");
    assert_eq!(attempts.hedges(), 1);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"quick");
    assert_eq!(server.request_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_pipeline_limits_calls_in_flight_per_host_when_asked() {
    let server = TestServer::start().await;
    server.route("/busy", Reply::ok().delay(Duration::from_secs(1)));
    let service = Pipeline::new()
        .retry(retry())
        .concurrency_limit(BulkheadLayer::new(1))
        .service(client());

    let first = tokio::spawn(service.clone().oneshot(get(&server, "/busy")));
    first_request_arrived(&server).await;
    // One call in flight: the next is refused at once, unsent, and not retried.
    let err = failure(&service, get(&server, "/busy")).await;
    assert_eq!(err.kind(), ErrorKind::BulkheadFull, "{}", err.chain());
    assert_eq!(server.request_count(), 1);
    assert_eq!(first.await.unwrap().unwrap().status(), 200);
}
