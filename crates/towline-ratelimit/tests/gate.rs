//! RateLimitLayer against the loopback server under a paused clock: what the server said is
//! honoured for every request to that key, and nothing else is held.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::{BoxError, Layer, ServiceExt, service_fn};
use towline_core::{
    ApiError, ApiFormat, Deadline, Error, ErrorKind, HintSource, RateLimitReason, RateLimited,
    RetryHint,
};
use towline_ratelimit::{Quota, RateLimit, RateLimitLayer};
use towline_testkit::{Reply, TestServer};

type Gated = RateLimit<Client<HttpConnector, Empty<Bytes>>>;

fn gated(layer: &RateLimitLayer) -> Gated {
    layer.layer(Client::builder(TokioExecutor::new()).build_http())
}

fn get(server: &TestServer, path: &str) -> Request<Empty<Bytes>> {
    Request::get(server.url(path)).body(Empty::new()).unwrap()
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn a_hundred_requests_after_a_429_all_wait_for_retry_after_then_succeed() {
    let server = TestServer::start().await;
    server.script(
        "/items",
        [Reply::status(429).header("retry-after", "5"), Reply::ok()],
    );
    let service = gated(&RateLimitLayer::new());
    let start = Instant::now();
    let first = service
        .clone()
        .oneshot(get(&server, "/items"))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);

    let calls: Vec<_> = (0..100)
        .map(|_| tokio::spawn(service.clone().oneshot(get(&server, "/items"))))
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    let log = server.requests_to("/items");
    assert_eq!(log.len(), 101);
    for request in &log[1..] {
        let at = request.arrived_at - start;
        assert!(
            at >= 5 * SECOND,
            "a request reached the server at {at:?}, before the 5 s"
        );
        assert!(
            at <= 5 * SECOND + Duration::from_millis(100),
            "released within the spread: {at:?}"
        );
    }
    // Released spread out, not in one instant.
    let distinct: std::collections::HashSet<_> = log[1..].iter().map(|r| r.arrived_at).collect();
    assert!(
        distinct.len() > 10,
        "{} distinct release instants",
        distinct.len()
    );
}

#[tokio::test(start_paused = true)]
async fn x_wait_seconds_on_a_503_closes_the_gate_too() {
    let server = TestServer::start().await;
    server.script(
        "/api",
        [
            Reply::status(503).header("x-wait-seconds", "3"),
            Reply::ok(),
        ],
    );
    let service = gated(&RateLimitLayer::new().spread(Duration::ZERO));
    service.clone().oneshot(get(&server, "/api")).await.unwrap();
    let start = Instant::now();
    let response = service.oneshot(get(&server, "/api")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(start.elapsed(), 3 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn a_date_in_the_past_and_malformed_hints_mean_no_wait() {
    for value in ["Thu, 01 Jan 1970 00:00:00 GMT", "-5", "soon", "1e9"] {
        let server = TestServer::start().await;
        server.script(
            "/api",
            [Reply::status(429).header("retry-after", value), Reply::ok()],
        );
        let service = gated(&RateLimitLayer::new());
        service.clone().oneshot(get(&server, "/api")).await.unwrap();
        let start = Instant::now();
        service.oneshot(get(&server, "/api")).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO, "{value}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_wait_past_max_wait_fails_fast_with_the_instant() {
    let server = TestServer::start().await;
    // IXON keeps a tripped limit for 10 minutes.
    server.script(
        "/api",
        [Reply::status(429).header("retry-after", "600"), Reply::ok()],
    );
    let service = gated(&RateLimitLayer::new());
    let start = Instant::now();
    service.clone().oneshot(get(&server, "/api")).await.unwrap();
    let err = service.oneshot(get(&server, "/api")).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "no silent hang");
    let err = Error::from(err);
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    let limited = err.find::<RateLimited>().unwrap();
    assert_eq!(limited.reason(), RateLimitReason::WaitTooLong);
    assert_eq!(limited.until(), start + Duration::from_secs(600));
    assert_eq!(server.requests_to("/api").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_wait_past_the_deadline_fails_fast() {
    let server = TestServer::start().await;
    server.script(
        "/api",
        [Reply::status(429).header("retry-after", "30"), Reply::ok()],
    );
    let service = gated(&RateLimitLayer::new());
    service.clone().oneshot(get(&server, "/api")).await.unwrap();
    let mut request = get(&server, "/api");
    Deadline::after(10 * SECOND).tighten(request.extensions_mut());
    let err = service.oneshot(request).await.unwrap_err();
    let err = Error::from(err);
    assert_eq!(
        err.find::<RateLimited>().unwrap().reason(),
        RateLimitReason::PastDeadline
    );
}

#[tokio::test(start_paused = true)]
async fn two_keys_are_independent() {
    let busy = TestServer::start().await;
    let calm = TestServer::start().await;
    busy.script(
        "/api",
        [Reply::status(429).header("retry-after", "20"), Reply::ok()],
    );
    calm.route("/api", Reply::ok());
    let service = gated(&RateLimitLayer::new().spread(Duration::ZERO));
    service.clone().oneshot(get(&busy, "/api")).await.unwrap();

    let start = Instant::now();
    let held = tokio::spawn(service.clone().oneshot(get(&busy, "/api")));
    // While busy's request is held, calm's go through at once, on the same service.
    for _ in 0..5 {
        service.clone().oneshot(get(&calm, "/api")).await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    held.await.unwrap().unwrap();
    assert_eq!(start.elapsed(), 20 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn a_decoded_api_error_closes_the_gate() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let upstream = service_fn(move |_req: Request<()>| {
        let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            if n == 0 {
                let mut api = ApiError::new(StatusCode::TOO_MANY_REQUESTS, ApiFormat::Attraqt);
                api.retry_hint = Some(RetryHint::new(4 * SECOND, HintSource::RetryAfter));
                return Err::<Response<()>, BoxError>(Box::new(api));
            }
            Ok(Response::new(()))
        }
    });
    let service = RateLimitLayer::new().spread(Duration::ZERO).layer(upstream);
    let request = || {
        Request::get("http://api.attraqt.test/items")
            .body(())
            .unwrap()
    };
    service.clone().oneshot(request()).await.unwrap_err();
    let start = Instant::now();
    service.oneshot(request()).await.unwrap();
    assert_eq!(start.elapsed(), 4 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn pacing_holds_a_quota_exactly_over_any_window() {
    let server = TestServer::start().await;
    server.route("/api", Reply::ok());
    let service = gated(&RateLimitLayer::new().quota(Quota::new(10, SECOND)));
    let start = Instant::now();
    let calls: Vec<_> = (0..35)
        .map(|_| tokio::spawn(service.clone().oneshot(get(&server, "/api"))))
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    let arrivals: Vec<Instant> = server
        .requests_to("/api")
        .iter()
        .map(|r| r.arrived_at)
        .collect();
    assert_eq!(arrivals.len(), 35);
    for at in &arrivals {
        let in_window = arrivals
            .iter()
            .filter(|a| **a > *at - SECOND && **a <= *at)
            .count();
        assert!(
            in_window <= 10,
            "{in_window} calls in the window ending at {:?}",
            *at - start
        );
    }
    // And no slower than the quota allows: 35 calls at 10/s take 3 windows.
    assert_eq!(start.elapsed(), 3 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn a_quota_slot_too_far_away_fails_fast() {
    let server = TestServer::start().await;
    server.route("/api", Reply::ok());
    let service = gated(
        &RateLimitLayer::new()
            .quota(Quota::new(1, Duration::from_secs(300)))
            .max_wait(10 * SECOND),
    );
    service.clone().oneshot(get(&server, "/api")).await.unwrap();
    let err = service.oneshot(get(&server, "/api")).await.unwrap_err();
    let err = Error::from(err);
    assert_eq!(
        err.find::<RateLimited>().unwrap().reason(),
        RateLimitReason::QuotaExhausted
    );
    assert_eq!(server.requests_to("/api").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn keys_can_come_from_the_request() {
    let server = TestServer::start().await;
    server.script(
        "/api",
        [
            Reply::status(503).header("x-wait-seconds", "5"),
            Reply::ok(),
        ],
    );
    let layer =
        RateLimitLayer::new()
            .spread(Duration::ZERO)
            .key_by(|parts: &http::request::Parts| {
                parts.headers.get("x-key")?.to_str().ok().map(str::to_owned)
            });
    let service = gated(&layer);
    let with_key = |key: &'static str| {
        Request::get(server.url("/api"))
            .header("x-key", key)
            .body(Empty::new())
            .unwrap()
    };
    service.clone().oneshot(with_key("alpha")).await.unwrap();
    let start = Instant::now();
    service.clone().oneshot(with_key("beta")).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "another API key is not held"
    );
    service.oneshot(with_key("alpha")).await.unwrap();
    assert_eq!(start.elapsed(), 5 * SECOND);
}
