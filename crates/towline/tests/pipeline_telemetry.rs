//! The `Pipeline`'s spans: one for the call and one per attempt. Alone in its test binary: a
//! thread-scoped subscriber misses callsites another test's thread registered first.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::ServiceExt;
use towline::retry::{Backoff, RetryLayer, RetryPolicy};
use towline::telemetry::Happening;
use towline::{Pipeline, Timeline};
use towline_testkit::{Reply, TestServer};
use tracing_subscriber::layer::SubscriberExt;

fn retry() -> RetryLayer {
    RetryLayer::with_policy(
        RetryPolicy::new()
            .backoff(Backoff::constant(Duration::from_millis(100)))
            .no_budget(),
    )
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn get(server: &TestServer, path: &str) -> Request<Empty<Bytes>> {
    Request::get(server.url(path)).body(Empty::new()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn telemetry_the_pipeline_spans_each_call_and_each_attempt() {
    let server = TestServer::start().await;
    server.script("/items", [Reply::status(503), Reply::ok().body("done")]);
    let timeline = Timeline::new();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(timeline.clone()));
    let service = Pipeline::new().retry(retry()).service(client());

    let response = service.oneshot(get(&server, "/items")).await.unwrap();
    assert_eq!(response.status(), 200);

    let calls = timeline.take();
    assert_eq!(calls.len(), 1, "one call span");
    let call = &calls[0];
    assert_eq!(call.outcome, "200");
    let attempts: Vec<_> = call
        .entries
        .iter()
        .filter_map(|entry| match &entry.what {
            Happening::Attempt {
                number, outcome, ..
            } => Some((*number, outcome.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [(1, "503".to_owned()), (2, "200".to_owned())]);
    assert!(
        call.entries
            .iter()
            .any(|entry| matches!(&entry.what, Happening::Retry { reason, .. } if reason == "503")),
        "{call}"
    );
}
