//! The deadline reaches the layers below `DeadlineLayer` in the request's `CallContext`: retry
//! does not start a backoff, nor the rate-limit gate a wait, that would end past it. (Their
//! own tests set the deadline with `Deadline::tighten`; these go through the layer.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::time::Instant;
use tower::{BoxError, Layer, ServiceExt, service_fn};
use towline::core::{RateLimitReason, RateLimited};
use towline::ratelimit::RateLimitLayer;
use towline::retry::{Backoff, RetryLayer, RetryPolicy};
use towline::timeout::DeadlineLayer;

fn get() -> Request<Full<Bytes>> {
    Request::get("http://api.test/things")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn retry_does_not_start_a_backoff_that_ends_past_the_deadline_set_by_the_layer() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let upstream = service_fn(move |_: Request<Full<Bytes>>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            Ok::<_, BoxError>(response)
        }
    });
    let retry = RetryLayer::with_policy(
        RetryPolicy::new()
            .backoff(Backoff::constant(Duration::from_secs(5)))
            .no_budget(),
    );
    let start = Instant::now();
    let response = DeadlineLayer::new(Duration::from_secs(2))
        .layer(retry.layer(upstream))
        .oneshot(get())
        .await
        .unwrap();
    // The 503 comes back at once, rather than a sleep cut short by `DeadlineExceeded`.
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_closed_gate_past_the_deadline_set_by_the_layer_fails_at_once() {
    // The first call meets a 429 that closes the gate for 10 s.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let upstream = service_fn(move |_: Request<Full<Bytes>>| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            let mut response = Response::new(Full::new(Bytes::new()));
            if n == 0 {
                *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                response
                    .headers_mut()
                    .insert("retry-after", "10".parse().unwrap());
            }
            Ok::<_, BoxError>(response)
        }
    });
    let gate = RateLimitLayer::new().layer(upstream);
    let first = gate.clone().oneshot(get()).await.unwrap();
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);

    let start = Instant::now();
    let err = DeadlineLayer::new(Duration::from_secs(2))
        .layer(gate)
        .oneshot(get())
        .await
        .unwrap_err();
    let limited = towline::core::find::<RateLimited>(&*err).expect("RateLimited");
    assert_eq!(limited.reason(), RateLimitReason::PastDeadline);
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no wait that cannot end in time"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
