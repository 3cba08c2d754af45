//! Hostile responses through the standard pipeline: a 1 GiB error body, an endless chunked
//! body, 10,000 headers. Each call ends with a typed error, and the process's peak memory
//! grows by far less than what the server sent. (One test in its own binary, so that nothing
//! else moves the peak.)

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::ServiceExt;
use towline::{Error, ErrorKind, Pipeline};
use towline_testkit::{Reply, TestServer};

/// The process's peak resident memory (`VmHWM`), in KiB; `None` off Linux.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn hostile_bodies_and_headers_end_in_typed_errors_with_bounded_memory() {
    let server = TestServer::start().await;
    server.route("/huge-error", Reply::huge_body(1 << 30).with_status(500));
    server.route("/endless-error", Reply::endless_body().with_status(502));
    server.route("/endless-ok", Reply::endless_body());
    let mut many = Reply::ok();
    for i in 0..10_000 {
        many = many.header(format!("x-h{i}").as_str(), "v");
    }
    server.route("/headers", many);

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let service = Pipeline::new()
        .retry(towline::RetryLayer::with_policy(
            towline::RetryPolicy::new().max_retries(0),
        ))
        .service(client);
    let get = |path: &str| Request::get(server.url(path)).body(Empty::new()).unwrap();
    let before = peak_rss_kib();

    // A 1 GiB error body: read to the 64 KiB cap, decoded, flagged.
    let Err(err) = service.clone().oneshot(get("/huge-error")).await else {
        panic!("a 500 is an error");
    };
    let err = Error::from(err);
    assert_eq!(err.kind(), ErrorKind::Api);
    assert!(err.api().unwrap().body_truncated);
    assert_eq!(err.api().unwrap().body.len(), 64 * 1024);

    // An endless chunked error body: the same.
    let Err(err) = service.clone().oneshot(get("/endless-error")).await else {
        panic!("a 502 is an error");
    };
    assert!(Error::from(err).api().unwrap().body_truncated);

    // An endless success body, read by a caller with its own cap: a typed error, not an OOM.
    let Ok(response) = service.clone().oneshot(get("/endless-ok")).await else {
        panic!("the head of a 200 arrives");
    };
    let read = tokio::time::timeout(
        Duration::from_secs(60),
        Limited::new(response.into_body(), 8 << 20).collect(),
    )
    .await
    .expect("bounded by the cap, not the clock");
    let err = Error::from(read.unwrap_err());
    assert_eq!(err.kind(), ErrorKind::BodyTooLarge);

    // 10,000 response headers: hyper refuses the head; a typed network error.
    let Err(err) = service.clone().oneshot(get("/headers")).await else {
        panic!("10,000 headers are refused");
    };
    let kind = Error::from(err).kind();
    assert_eq!(
        kind,
        ErrorKind::Network {
            may_have_reached_server: true
        },
        "{kind:?}"
    );

    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        let grown_mib = (after.saturating_sub(before)) / 1024;
        println!(
            "memory: peak RSS grew by {grown_mib} MiB (before {} MiB, after {} MiB)",
            before / 1024,
            after / 1024
        );
        assert!(grown_mib < 64, "peak RSS grew by {grown_mib} MiB");
    }
}
