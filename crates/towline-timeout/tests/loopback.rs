//! The timeouts over a real loopback connection (towline-testkit + hyper-util), paused clock.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};
use towline_core::{Error, ErrorKind};
use towline_testkit::{Reply, TestServer};
use towline_timeout::{DeadlineLayer, TimeoutLayer};

fn get(server: &TestServer, path: &str) -> Request<Empty<Bytes>> {
    Request::get(server.url(path)).body(Empty::new()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_server_that_hangs_before_the_head_hits_the_head_timeout() {
    let server = TestServer::start().await;
    server.route("/hang", Reply::ok().delay(Duration::from_secs(60)));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let start = Instant::now();
    let err = ServiceBuilder::new()
        .layer(TimeoutLayer::new(Duration::from_secs(3)))
        .service(client)
        .oneshot(get(&server, "/hang"))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(Error::from(err).kind(), ErrorKind::Timeout);
    assert_eq!(server.requests_to("/hang").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_body_hits_the_body_timeout_and_a_deadline_bounds_everything() {
    let server = TestServer::start().await;
    server.route("/stall", Reply::ok().body("0123456789").stall_body_after(4));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let stack = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Duration::from_secs(20)))
        .layer(TimeoutLayer::new(Duration::from_secs(5)).body_timeout(Duration::from_secs(2)))
        .service(client.clone());

    let response = stack.clone().oneshot(get(&server, "/stall")).await.unwrap();
    let start = Instant::now();
    let err = response.into_body().collect().await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(Error::from(err).kind(), ErrorKind::Timeout);

    // Without a body limit, the deadline still ends it.
    let stack = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Duration::from_secs(20)))
        .layer(TimeoutLayer::new(Duration::from_secs(5)))
        .service(client);
    let start = Instant::now();
    let response = stack.oneshot(get(&server, "/stall")).await.unwrap();
    let err = response.into_body().collect().await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(20));
    assert_eq!(Error::from(err).kind(), ErrorKind::DeadlineExceeded);
}
