//! Every duration setting of the `Pipeline` at `Duration::MAX` at once: calls still work, a
//! wait hint still closes the gate, and nothing panics ("overflow when adding duration to
//! instant" was the failure mode).

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::ServiceExt;
use towline::ratelimit::{Quota, RateLimitLayer};
use towline::retry::{Backoff, RetryLayer, RetryPolicy};
use towline::{
    BulkheadLayer, CircuitBreakerLayer, DeadlineLayer, Error, ErrorKind, HedgeLayer, Pipeline,
    StaticToken, TimeoutLayer, Token, TokenRefreshLayer,
};
use towline_testkit::{Reply, TestServer};

const MAX: Duration = Duration::MAX;

#[tokio::test(start_paused = true)]
async fn every_duration_setting_at_its_maximum_at_once() {
    let server = TestServer::start().await;
    server.route("/ok", Reply::ok().body("fine"));
    server.script(
        "/busy",
        [
            Reply::status(503).header("x-wait-seconds", "99999999999"),
            Reply::ok(),
        ],
    );

    let token = Token::new("t0k3n").unwrap().expires_in(MAX);
    let auth = TokenRefreshLayer::builder(StaticToken::new(token))
        .refresh_margin(MAX)
        .fetch_timeout(MAX)
        .build();
    let retry = RetryPolicy::new()
        .backoff(Backoff::exponential(MAX, 2.0, MAX).unwrap())
        .max_total_delay(MAX)
        .max_hint_wait(MAX)
        .max_retries(1);
    let rate_limit = RateLimitLayer::new()
        .max_wait(MAX)
        .max_close(MAX)
        .spread(MAX)
        .quota(Quota::new(1_000, MAX));
    let breaker = towline::breaker::Settings::new()
        .sampling_window(MAX)
        .break_duration(MAX)
        .max_break(MAX);
    // Refused as invalid is a fine answer too; a panic is not.
    let breaker = CircuitBreakerLayer::with_settings(breaker).unwrap_or_default();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let service = Pipeline::new()
        .circuit_breaker(breaker)
        .hedge(HedgeLayer::after(MAX))
        .concurrency_limit(BulkheadLayer::new(8).max_wait(MAX))
        .deadline(DeadlineLayer::new(MAX))
        .retry(RetryLayer::with_policy(retry))
        .rate_limit(rate_limit)
        .auth(auth)
        .timeout(TimeoutLayer::new(MAX).body_timeout(MAX))
        .service(client);

    for _ in 0..3 {
        let response = service
            .clone()
            .oneshot(
                Request::get(server.url("/ok"))
                    .body(Full::default())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "fine"
        );
    }

    // A 503 asking for 3,000 years: every limit allows it, so the retry's sleep and the gate
    // are "never" — saturated, not overflowed. The call must end in a typed outcome; bound it
    // ourselves, on the paused clock.
    let busy = service.clone().oneshot(
        Request::get(server.url("/busy"))
            .body(Full::default())
            .unwrap(),
    );
    match tokio::time::timeout(Duration::from_secs(3600), busy).await {
        Ok(Ok(response)) => assert!(response.status().is_success()),
        Ok(Err(error)) => assert_ne!(Error::from(error).kind(), ErrorKind::Other),
        Err(_elapsed) => {} // still waiting out the server's absurd wait: fine, no panic
    }
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_circuit_opened_for_the_longest_break_fails_fast_with_a_typed_error() {
    let server = TestServer::start().await;
    server.route("/down", Reply::status(500));
    let settings = towline::breaker::Settings::new()
        .consecutive_failures(1)
        .break_duration(MAX)
        .max_break(MAX);
    let breaker = CircuitBreakerLayer::with_settings(settings).unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let service = Pipeline::new()
        .circuit_breaker(breaker)
        .retry(RetryLayer::with_policy(RetryPolicy::new().max_retries(0)))
        .service(client);
    let call = || {
        service.clone().oneshot(
            Request::get(server.url("/down"))
                .body(Full::default())
                .unwrap(),
        )
    };
    let _ = call().await;
    let error = Error::from(call().await.unwrap_err());
    assert_eq!(error.kind(), ErrorKind::CircuitOpen, "{error}");
    assert_eq!(server.requests_to("/down").len(), 1);
    server.shutdown().await;
}
