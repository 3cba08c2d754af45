//! RetryLayer under a paused clock: every rule of the policy, proven one by one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use towline_core::{
    ApiError, ApiFormat, AttemptOutcome, Attempts, Deadline, Error, ErrorKind, RateLimitReason,
    RateLimited, ReplayBody,
};
use towline_retry::{Backoff, Jitter, RetryBudget, RetryLayer, RetryPolicy};
use towline_testkit::{Reply, TestServer};

const MS: Duration = Duration::from_millis(1);

/// What the mock upstream saw: one entry per attempt.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(Instant, HeaderMap, Bytes)>>>);

impl Seen {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn times(&self) -> Vec<Instant> {
        self.0.lock().unwrap().iter().map(|s| s.0).collect()
    }
    fn headers(&self, i: usize) -> HeaderMap {
        self.0.lock().unwrap()[i].1.clone()
    }
}

/// An upstream that answers `replies` in order (the last repeats), recording each attempt.
fn upstream(
    replies: Vec<(u16, Vec<(&'static str, &'static str)>)>,
) -> (
    impl Service<Request<Full<Bytes>>, Response = Response<Empty<Bytes>>, Error = BoxError> + Clone,
    Seen,
) {
    let seen = Seen::default();
    let log = seen.clone();
    let replies = Arc::new(replies);
    let service = service_fn(move |req: Request<Full<Bytes>>| {
        let log = log.clone();
        let replies = replies.clone();
        async move {
            let headers = req.headers().clone();
            let body = req.into_body().collect().await?.to_bytes();
            let n = {
                let mut log = log.0.lock().unwrap();
                log.push((Instant::now(), headers, body));
                log.len() - 1
            };
            let (status, headers) = &replies[n.min(replies.len() - 1)];
            let mut response = Response::builder().status(*status);
            for (name, value) in headers {
                response = response.header(*name, *value);
            }
            Ok::<_, BoxError>(response.body(Empty::new()).unwrap())
        }
    });
    (service, seen)
}

fn get() -> Request<Full<Bytes>> {
    Request::get("http://api.test/items")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn post() -> Request<Full<Bytes>> {
    Request::post("http://api.test/orders")
        .body(Full::new(Bytes::from_static(b"{\"qty\":1}")))
        .unwrap()
}

fn no_jitter() -> RetryPolicy {
    RetryPolicy::new()
        .backoff(
            Backoff::exponential(100 * MS, 2.0, Duration::from_secs(10))
                .unwrap()
                .jitter(Jitter::None),
        )
        .seed(1)
}

#[tokio::test(start_paused = true)]
async fn retries_5xx_with_the_backoff_schedule_and_records_the_attempts() {
    let (service, seen) = upstream(vec![
        (503, vec![]),
        (502, vec![]),
        (500, vec![]),
        (200, vec![]),
    ]);
    let start = Instant::now();
    let response = RetryLayer::with_policy(no_jitter())
        .layer(service)
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.count(), 4);
    let times = seen.times();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps, [100 * MS, 200 * MS, 400 * MS]);
    assert_eq!(start.elapsed(), 700 * MS);

    let attempts = Attempts::from_extensions(response.extensions()).unwrap();
    assert_eq!(attempts.count(), 4);
    assert_eq!(attempts.delays(), [100 * MS, 200 * MS, 400 * MS]);
    assert_eq!(
        attempts.earlier(),
        [
            AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE),
            AttemptOutcome::Status(StatusCode::BAD_GATEWAY),
            AttemptOutcome::Status(StatusCode::INTERNAL_SERVER_ERROR),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_first_time_success_carries_no_record_and_is_sent_once() {
    let (service, seen) = upstream(vec![(200, vec![])]);
    let response = RetryLayer::new()
        .layer(service)
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(seen.count(), 1);
    assert!(
        Attempts::from_extensions(response.extensions()).is_none(),
        "absent means one attempt"
    );
}

#[tokio::test(start_paused = true)]
async fn after_the_last_retry_the_last_response_comes_back_with_its_record() {
    let (service, seen) = upstream(vec![(503, vec![])]);
    let response = RetryLayer::with_policy(no_jitter().max_retries(2))
        .layer(service)
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen.count(), 3);
    assert_eq!(
        Attempts::from_extensions(response.extensions())
            .unwrap()
            .count(),
        3
    );
}

#[tokio::test(start_paused = true)]
async fn other_4xx_are_never_retried() {
    for status in [400, 401, 403, 404, 409, 422] {
        let (service, seen) = upstream(vec![(status, vec![])]);
        let response = RetryLayer::new()
            .layer(service)
            .oneshot(get())
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(seen.count(), 1, "{status}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_the_floor_of_the_delay() {
    let (service, seen) = upstream(vec![(429, vec![("retry-after", "2")]), (200, vec![])]);
    RetryLayer::with_policy(no_jitter())
        .layer(service)
        .oneshot(get())
        .await
        .unwrap();
    let times = seen.times();
    assert_eq!(
        times[1] - times[0],
        Duration::from_secs(2),
        "not the 100 ms backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hint_ending_past_the_deadline_stops_at_once_with_a_typed_error() {
    let (service, seen) = upstream(vec![(429, vec![("retry-after", "30")]), (200, vec![])]);
    let mut request = get();
    Deadline::after(Duration::from_secs(5)).tighten(request.extensions_mut());
    let start = Instant::now();
    let err = RetryLayer::new()
        .layer(service)
        .oneshot(request)
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "no sleeping in vain");
    assert_eq!(seen.count(), 1);
    let err = Error::from(err);
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    let limited = err.find::<RateLimited>().unwrap();
    assert_eq!(limited.reason(), RateLimitReason::PastDeadline);
    assert_eq!(limited.until(), start + Duration::from_secs(30));
}

#[tokio::test(start_paused = true)]
async fn a_hint_longer_than_the_max_fails_fast() {
    let (service, seen) = upstream(vec![(503, vec![("x-wait-seconds", "600")])]);
    let err = RetryLayer::new()
        .layer(service)
        .oneshot(post())
        .await
        .unwrap_err();
    assert_eq!(seen.count(), 1);
    let err = Error::from(err);
    assert_eq!(
        err.find::<RateLimited>().unwrap().reason(),
        RateLimitReason::WaitTooLong
    );
    assert_eq!(
        err.retry_hint().unwrap().requested(),
        Duration::from_secs(600)
    );
}

#[tokio::test(start_paused = true)]
async fn backoff_never_sleeps_past_the_deadline() {
    let (service, seen) = upstream(vec![(503, vec![])]);
    let mut request = get();
    Deadline::after(250 * MS).tighten(request.extensions_mut());
    let response = RetryLayer::with_policy(no_jitter())
        .layer(service)
        .oneshot(request)
        .await
        .unwrap();
    // 100 ms fits, then 200 ms would end at 300 ms > 250 ms: stop with the last 503.
    assert_eq!(seen.count(), 2);
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(start_paused = true)]
async fn max_total_delay_limits_the_sleeping() {
    let (service, seen) = upstream(vec![(503, vec![])]);
    RetryLayer::with_policy(no_jitter().max_retries(10).max_total_delay(350 * MS))
        .layer(service)
        .oneshot(get())
        .await
        .unwrap();
    // 100 + 200 = 300 ms fits; + 400 does not.
    assert_eq!(seen.count(), 3);
}

#[tokio::test(start_paused = true)]
async fn post_without_a_key_is_sent_once_on_a_500_but_retried_on_503_with_a_wait() {
    let (service, seen) = upstream(vec![(500, vec![]), (200, vec![])]);
    let response = RetryLayer::new()
        .layer(service)
        .oneshot(post())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(seen.count(), 1, "may have been processed: never twice");

    let (service, seen) = upstream(vec![(503, vec![("x-wait-seconds", "1")]), (200, vec![])]);
    let response = RetryLayer::new()
        .layer(service)
        .oneshot(post())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.count(), 2);

    let (service, seen) = upstream(vec![(429, vec![]), (200, vec![])]);
    RetryLayer::new()
        .layer(service)
        .oneshot(post())
        .await
        .unwrap();
    assert_eq!(seen.count(), 2, "429: not processed");
}

#[tokio::test(start_paused = true)]
async fn post_with_an_idempotency_key_is_retried_and_the_layer_can_add_one() {
    let (service, seen) = upstream(vec![(500, vec![]), (200, vec![])]);
    let mut request = post();
    request
        .headers_mut()
        .insert("idempotency-key", "order-17".parse().unwrap());
    RetryLayer::new()
        .layer(service)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(seen.count(), 2);

    let (service, seen) = upstream(vec![(500, vec![]), (502, vec![]), (200, vec![])]);
    RetryLayer::with_policy(RetryPolicy::new().add_idempotency_keys())
        .layer(service)
        .oneshot(post())
        .await
        .unwrap();
    assert_eq!(seen.count(), 3);
    let keys: Vec<_> = (0..3)
        .map(|i| seen.headers(i)["idempotency-key"].clone())
        .collect();
    assert_eq!(keys[0].len(), 32);
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "the same key on every attempt"
    );
}

#[tokio::test(start_paused = true)]
async fn the_budget_caps_retries_under_total_failure() {
    let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.2).unwrap();
    let (service, seen) = upstream(vec![(503, vec![])]);
    let layer = RetryLayer::with_policy(RetryPolicy::new().budget(budget).backoff(Backoff::none()));
    let calls = 100;
    let mut exhausted = 0;
    for _ in 0..calls {
        let response = layer.layer(service.clone()).oneshot(get()).await.unwrap();
        if Attempts::from_extensions(response.extensions()).is_some_and(Attempts::budget_exhausted)
        {
            exhausted += 1;
        }
    }
    let attempts = seen.count();
    assert!(
        attempts <= calls + calls / 5,
        "{attempts} attempts for {calls} calls at 20 %"
    );
    assert!(
        attempts >= calls + calls / 5 - 1,
        "the budget was used: {attempts}"
    );
    assert!(exhausted > 0, "the budget's stop is visible to the caller");
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_returns_the_last_error_marked() {
    let budget = RetryBudget::new(Duration::from_secs(1), 0, 0.0).unwrap();
    let service = service_fn(|_req: Request<Full<Bytes>>| async {
        Err::<Response<Empty<Bytes>>, BoxError>(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )))
    });
    let err = RetryLayer::with_policy(RetryPolicy::new().budget(budget))
        .layer(service)
        .oneshot(get())
        .await
        .unwrap_err();
    let err = Error::from(err);
    assert_eq!(err.kind(), ErrorKind::RetryBudgetExhausted);
    assert!(
        err.find::<std::io::Error>().is_some(),
        "the last error is kept"
    );
}

#[tokio::test(start_paused = true)]
async fn decoded_api_errors_are_classified_like_responses() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let service = service_fn(move |_req: Request<Full<Bytes>>| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            let status = if n == 0 {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::NOT_FOUND
            };
            Err::<Response<Empty<Bytes>>, BoxError>(Box::new(ApiError::new(
                status,
                ApiFormat::Attraqt,
            )))
        }
    });
    let err = RetryLayer::new()
        .layer(service)
        .oneshot(get())
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "502 retried, 404 not");
    let err = Error::from(err);
    assert_eq!(err.kind(), ErrorKind::Api);
    assert_eq!(err.api().unwrap().status, StatusCode::NOT_FOUND);
    let attempts = err.attempts().unwrap();
    assert_eq!(attempts.count(), 2);
    assert_eq!(
        attempts.earlier(),
        [AttemptOutcome::Status(StatusCode::BAD_GATEWAY)]
    );
}

#[tokio::test(start_paused = true)]
async fn a_connection_never_made_is_retried_even_for_post() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let service = service_fn(move |_req: Request<Full<Bytes>>| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                return Err::<Response<Empty<Bytes>>, BoxError>(Box::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionRefused,
                )));
            }
            if n == 1 {
                // Reset after sending: may have been processed.
                return Err(Box::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionReset,
                )));
            }
            Ok(Response::new(Empty::new()))
        }
    });
    let err = RetryLayer::new()
        .layer(service)
        .oneshot(post())
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        Error::from(err).kind(),
        ErrorKind::Network {
            may_have_reached_server: true
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_custom_rule_composes_with_the_standard_one() {
    use towline_retry::{Classify, Outcome, StandardClassifier, Verdict};
    let (service, seen) = upstream(vec![(409, vec![]), (200, vec![])]);
    let classifier = StandardClassifier::new().or(|outcome: Outcome<'_>| {
        if outcome.status() == Some(StatusCode::CONFLICT) {
            Verdict::retry()
        } else {
            Verdict::Done
        }
    });
    RetryLayer::with_policy(RetryPolicy::new().classifier(classifier))
        .layer(service)
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(seen.count(), 2);
}

// ------------------------------------------------------------------ over loopback

#[tokio::test(start_paused = true)]
async fn a_streaming_body_is_replayed_byte_exact_over_loopback() {
    let server = TestServer::start().await;
    server.script(
        "/upload",
        [
            Reply::status(503),
            Reply::status(502),
            Reply::ok().body("stored"),
        ],
    );
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>();
    let payload = Bytes::from(
        (0..10_000u32)
            .flat_map(|i| i.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    let request = Request::put(server.url("/upload"))
        .body(ReplayBody::new(Full::new(payload.clone()), 64 * 1024))
        .unwrap();
    let response = RetryLayer::with_policy(no_jitter())
        .layer(client)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let log = server.requests_to("/upload");
    assert_eq!(log.len(), 3);
    for attempt in &log {
        assert_eq!(
            attempt.body, payload,
            "every attempt carries the same bytes"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_past_its_replay_cap_is_sent_once() {
    let server = TestServer::start().await;
    server.route("/upload", Reply::status(503));
    let client = Client::builder(TokioExecutor::new()).build_http::<ReplayBody<Full<Bytes>>>();
    let payload = Bytes::from(vec![b'x'; 100_000]);
    let request = Request::put(server.url("/upload"))
        .body(ReplayBody::new(Full::new(payload), 64 * 1024))
        .unwrap();
    let response = RetryLayer::new()
        .layer(client)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(server.requests_to("/upload").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_reset_get_is_retried_over_loopback() {
    let server = TestServer::start().await;
    server.script("/flaky", [Reply::reset(), Reply::ok().body("fine")]);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::get(server.url("/flaky"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = RetryLayer::new()
        .layer(client)
        .oneshot(request)
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"fine");
    assert_eq!(server.requests_to("/flaky").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn methods_other_than_post_and_patch_retry_after_a_reset() {
    for method in [
        Method::GET,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
    ] {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let service = service_fn(move |_req: Request<Full<Bytes>>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                Err::<Response<Empty<Bytes>>, BoxError>(Box::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionReset,
                )))
            }
        });
        let request = Request::builder()
            .method(method.clone())
            .uri("http://api.test/")
            .body(Full::new(Bytes::new()))
            .unwrap();
        RetryLayer::with_policy(RetryPolicy::new().no_budget())
            .layer(service)
            .oneshot(request)
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 4, "{method}");
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let service = service_fn(move |_req: Request<Full<Bytes>>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            Err::<Response<Empty<Bytes>>, BoxError>(Box::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset,
            )))
        }
    });
    let request = Request::patch("http://api.test/")
        .body(Full::new(Bytes::new()))
        .unwrap();
    RetryLayer::new()
        .layer(service)
        .oneshot(request)
        .await
        .unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "PATCH");
}

#[tokio::test(start_paused = true)]
async fn a_per_attempt_timeout_is_retried_for_get_but_not_for_post() {
    for (request, expected) in [(get(), 4), (post(), 1)] {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let service = service_fn(move |_req: Request<Full<Bytes>>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                Err::<Response<Empty<Bytes>>, BoxError>(Box::new(towline_core::Elapsed::new(
                    Duration::from_secs(5),
                    towline_core::TimeoutPhase::Head,
                )))
            }
        });
        let err = RetryLayer::new()
            .layer(service)
            .oneshot(request)
            .await
            .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), expected);
        assert_eq!(Error::from(err).kind(), ErrorKind::Timeout);
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_wait_that_fits_the_deadline_is_honoured_even_if_the_backoff_would_not_fit() {
    let (service, seen) = upstream(vec![(503, vec![("retry-after", "1")]), (200, vec![])]);
    let mut request = get();
    Deadline::after(Duration::from_secs(3)).tighten(request.extensions_mut());
    let policy = RetryPolicy::new().backoff(Backoff::constant(Duration::from_secs(5)));
    let response = RetryLayer::with_policy(policy)
        .layer(service)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let times = seen.times();
    assert_eq!(
        times[1] - times[0],
        Duration::from_secs(1),
        "the server's wait, not the backoff"
    );
}

#[tokio::test(start_paused = true)]
async fn a_sleep_ending_exactly_at_the_deadline_is_not_taken() {
    let (service, seen) = upstream(vec![(502, vec![]), (200, vec![])]);
    let mut request = get();
    Deadline::after(Duration::from_secs(3)).tighten(request.extensions_mut());
    let policy = RetryPolicy::new().backoff(Backoff::constant(Duration::from_secs(3)));
    let response = RetryLayer::with_policy(policy)
        .layer(service)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::BAD_GATEWAY,
        "no attempt with no time left"
    );
    assert_eq!(seen.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn polling_after_the_outcome_panics_and_sends_nothing() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let (service, seen) = upstream(vec![(404, vec![])]);
    let mut retry = RetryLayer::new().layer(service);
    let mut future = Box::pin(retry.ready().await.unwrap().call(get()));
    let response = future.as_mut().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let mut cx = Context::from_waker(Waker::noop());
    // As std's futures do: polling a completed future is a caller's bug, not an outcome.
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Poll<_> = future.as_mut().poll(&mut cx);
    }));
    assert!(again.is_err());
    assert_eq!(seen.count(), 1, "polling again sends nothing");
}

#[tokio::test]
async fn idempotency_keys_do_not_repeat_under_the_same_seed() {
    // Two processes configured alike (the policy doc's own `.seed(42)`) are two layers here:
    // their first keys must differ, or a server would take one call for the other's retry.
    let mut keys = Vec::new();
    for _ in 0..2 {
        let seen = Arc::new(Mutex::new(None));
        let record = seen.clone();
        let upstream = service_fn(move |req: Request<Full<Bytes>>| {
            *record.lock().unwrap() = req.headers().get("idempotency-key").cloned();
            async { Ok::<_, BoxError>(Response::new(Full::new(Bytes::new()))) }
        });
        let policy = RetryPolicy::new().add_idempotency_keys().seed(42);
        let post = Request::post("http://api.test/orders")
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        RetryLayer::with_policy(policy)
            .layer(upstream)
            .oneshot(post)
            .await
            .unwrap();
        let key = seen.lock().unwrap().clone().expect("a key was added");
        assert_eq!(key.len(), 32, "128 bits in hex");
        keys.push(key);
    }
    assert_ne!(keys[0], keys[1]);
}
