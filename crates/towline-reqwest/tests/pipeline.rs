//! The standard `Pipeline` over a `ReqwestService`, against the loopback test server: retries,
//! idempotency, server-directed waits, decoded error bodies, redirects and body replay.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::{Request, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use tower::ServiceExt;
use towline::retry::{Backoff, RetryLayer, RetryPolicy};
use towline::{Attempts, Error, ErrorKind, Pipeline, Standard};
use towline_core::ReplayBody;
use towline_reqwest::ReqwestService;
use towline_testkit::{Reply, TestServer};

/// A retry policy with a short constant backoff, so tests wait little in real time (these talk
/// over real sockets, where a paused clock would fire every timeout while the socket waits).
fn policy() -> RetryPolicy {
    RetryPolicy::new()
        .seed(7)
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .no_budget()
}

fn pipeline(policy: RetryPolicy) -> Standard<ReqwestService<Full<Bytes>>> {
    pipeline_for(policy)
}

/// The pipeline for requests with body `B` (named, so that `oneshot` type-checks quickly: see
/// `ReqwestService`).
fn pipeline_for<B>(policy: RetryPolicy) -> Standard<ReqwestService<B>> {
    Pipeline::new()
        .retry(RetryLayer::with_policy(policy))
        .service(ReqwestService::new().unwrap())
}

fn empty() -> Full<Bytes> {
    Full::new(Bytes::new())
}

#[tokio::test]
async fn a_503_is_retried_until_it_succeeds() {
    let server = TestServer::start().await;
    server.script(
        "/status",
        [
            Reply::status(503),
            Reply::status(503),
            Reply::ok().json(r#"{"up":true}"#),
        ],
    );

    let response = pipeline(policy())
        .oneshot(Request::get(server.url("/status")).body(empty()).unwrap())
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let attempts = Attempts::from_extensions(response.extensions()).unwrap();
    assert_eq!(attempts.count(), 3);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, r#"{"up":true}"#);
    assert_eq!(server.requests_to("/status").len(), 3);
}

#[tokio::test]
async fn a_post_without_an_idempotency_key_is_not_retried() {
    let server = TestServer::start().await;
    server.script("/orders", [Reply::status(503), Reply::status(201)]);

    let request = Request::post(server.url("/orders"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let err = Error::from(
        pipeline(policy())
            .oneshot(request)
            .await
            .expect_err("an error"),
    );

    assert_eq!(err.kind(), ErrorKind::Api);
    assert_eq!(err.api().unwrap().status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(err.attempts().is_none(), "one request: {err}");
    assert_eq!(server.requests_to("/orders").len(), 1);
}

#[tokio::test]
async fn retry_after_is_waited_before_the_retry() {
    let server = TestServer::start().await;
    server.script(
        "/report",
        [
            Reply::status(503).header("retry-after", "1"),
            Reply::ok().body("done"),
        ],
    );

    let response = pipeline(policy())
        .oneshot(Request::get(server.url("/report")).body(empty()).unwrap())
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    // The retry's delay was floored by the server's hint (the backoff alone is 10 ms) ...
    let attempts = Attempts::from_extensions(response.extensions()).unwrap();
    assert_eq!(attempts.count(), 2);
    assert!(
        attempts.delays()[0] >= Duration::from_secs(1),
        "{attempts:?}"
    );
    // ... and the server saw the second request no earlier than it asked.
    let log = server.requests_to("/report");
    assert_eq!(log.len(), 2);
    assert!(log[1].arrived_at - log[0].arrived_at >= Duration::from_secs(1));
}

#[tokio::test]
async fn an_error_body_is_decoded_into_an_api_error() {
    let server = TestServer::start().await;
    server.route(
        "/orders/7",
        Reply::status(404)
            .header("content-type", "application/problem+json")
            .body(r#"{"type":"https://api.test/not-found","title":"Not Found","status":404,"detail":"no order 7"}"#),
    );

    let err = pipeline(policy())
        .oneshot(Request::get(server.url("/orders/7")).body(empty()).unwrap())
        .await
        .expect_err("an error");
    let err = Error::from(err);

    assert_eq!(err.kind(), ErrorKind::Api);
    let api = err.api().unwrap();
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.message.as_deref(), Some("no order 7"));
    assert_eq!(api.doc_url.as_deref(), Some("https://api.test/not-found"));
    assert_eq!(server.requests_to("/orders/7").len(), 1);
}

#[tokio::test]
async fn a_redirect_is_an_error_and_its_location_is_never_asked() {
    let server = TestServer::start().await;
    let elsewhere = server.url("/elsewhere").to_string();
    server.route("/old", Reply::redirect(302, &elsewhere));
    server.route("/elsewhere", Reply::ok().body("followed"));

    let request = Request::get(server.url("/old"))
        .header("authorization", "Bearer secret")
        .body(empty())
        .unwrap();
    let err = Error::from(
        pipeline(policy())
            .oneshot(request)
            .await
            .expect_err("an error"),
    );

    assert_eq!(err.kind(), ErrorKind::Redirected);
    let redirected = err.redirected().unwrap();
    assert_eq!(redirected.status(), StatusCode::FOUND);
    assert_eq!(redirected.location_str(), Some(elsewhere.as_str()));
    assert_eq!(server.requests_to("/old").len(), 1);
    assert!(server.requests_to("/elsewhere").is_empty());
}

/// A body streamed frame by frame (not a body reqwest could copy itself).
type Streamed = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// A body of `chunks`, streamed frame by frame.
fn streamed(chunks: &'static [&'static str]) -> Streamed {
    let frames: Vec<_> = chunks
        .iter()
        .map(|chunk| Ok(Frame::data(Bytes::from_static(chunk.as_bytes()))))
        .collect();
    StreamBody::new(stream::iter(frames))
}

#[tokio::test]
async fn a_streamed_post_with_an_idempotency_key_is_replayed() {
    let server = TestServer::start().await;
    server.script(
        "/payments",
        [Reply::status(503), Reply::status(201).json(r#"{"id":1}"#)],
    );

    let body = ReplayBody::new(streamed(&[r#"{"amount":"#, "100}"]), 1024);
    let request = Request::post(server.url("/payments"))
        .header("content-type", "application/json")
        .body(body)
        .unwrap();
    let response = pipeline_for::<ReplayBody<Streamed>>(policy().add_idempotency_keys())
        .oneshot(request)
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        Attempts::from_extensions(response.extensions())
            .unwrap()
            .count(),
        2
    );
    let log = server.requests_to("/payments");
    assert_eq!(log.len(), 2);
    for request in &log {
        assert_eq!(request.body_text(), r#"{"amount":100}"#);
    }
    let key = log[0].header("idempotency-key").unwrap();
    assert!(!key.is_empty());
    assert_eq!(log[1].header("idempotency-key"), Some(key));
}

#[tokio::test]
async fn a_refused_post_is_retried_because_it_was_never_sent() {
    let server = TestServer::start().await;
    let url = server.url("/orders");
    server.shutdown().await;

    let request = Request::post(url)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let err = Error::from(
        pipeline(policy().max_retries(2))
            .oneshot(request)
            .await
            .expect_err("an error"),
    );

    assert_eq!(
        err.kind(),
        ErrorKind::Network {
            may_have_reached_server: false
        },
        "{err}"
    );
    assert_eq!(err.attempts().unwrap().count(), 3, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_share_one_client_across_threads() {
    let server = TestServer::start().await;
    server.route("/items", Reply::ok().body("[]"));
    let service = pipeline(policy());

    let calls: Vec<_> = (0..8)
        .map(|_| {
            let service = service.clone();
            let request = Request::get(server.url("/items")).body(empty()).unwrap();
            tokio::spawn(async move {
                let response = service.oneshot(request).await.unwrap();
                response.into_body().collect().await.unwrap().to_bytes()
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), "[]");
    }
    assert_eq!(server.requests_to("/items").len(), 8);
}
