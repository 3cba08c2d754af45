//! Composing a custom retry policy: your own rule beside the standard one, a backoff, a budget.
//!
//! Run it with `cargo run --example custom_retry`. This API answers 409 "try again" while a
//! resource is being created; 409 is not retried by default, so a rule adds it.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Layer, ServiceExt};
use towline::retry::{Classify, Outcome, StandardClassifier, Verdict};
use towline::{Attempts, Backoff, Jitter, RetryBudget, RetryLayer, RetryPolicy};
use towline_testkit::{Reply, TestServer};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = TestServer::start().await;
    server.script(
        "/exports/7",
        [
            Reply::status(409),
            Reply::status(409),
            Reply::ok().body("ready"),
        ],
    );

    let classifier = StandardClassifier::new().or(|outcome: Outcome<'_>| {
        if outcome.status() == Some(StatusCode::CONFLICT) {
            Verdict::retry()
        } else {
            Verdict::Done
        }
    });
    let policy = RetryPolicy::new()
        .classifier(classifier)
        .max_retries(5)
        .backoff(
            Backoff::exponential(Duration::from_millis(20), 2.0, Duration::from_secs(1))?
                .jitter(Jitter::Equal),
        )
        .budget(RetryBudget::new(Duration::from_secs(10), 5, 0.5)?)
        .seed(42);
    let client = RetryLayer::with_policy(policy)
        .layer(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());

    let response = client
        .oneshot(Request::get(server.url("/exports/7")).body(Empty::new())?)
        .await?;
    let attempts = Attempts::from_extensions(response.extensions())
        .cloned()
        .unwrap_or_default();
    println!(
        "GET /exports/7 -> {} after {} attempts",
        response.status(),
        attempts.count()
    );
    for (outcome, delay) in attempts.earlier().iter().zip(attempts.delays()) {
        println!("  {outcome}, then waited {} ms", delay.as_millis());
    }
    assert_eq!(response.status(), StatusCode::OK);
    Ok(())
}
