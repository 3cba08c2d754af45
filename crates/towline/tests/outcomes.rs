//! Every outcome that took more than one request says how many were sent and why each was
//! sent again, and its message says what finally happened (issue 19, items 2 and 3).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::time::Instant;
use tower::util::BoxCloneService;
use tower::{BoxError, Layer, ServiceExt, service_fn};
use towline::auth::{Token, TokenRefreshLayer, from_fn};
use towline::core::{AttemptOutcome, Attempts};
use towline::retry::{Backoff, RetryLayer, RetryPolicy};
use towline::timeout::DeadlineLayer;
use towline::{Error, ErrorKind};

/// The upstreams of these tests, boxed so they can be named.
type Upstream = BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, BoxError>;

fn get() -> Request<Full<Bytes>> {
    Request::get("http://api.test/things")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

/// A retry layer with a constant 100 ms backoff and no budget.
fn retry() -> RetryLayer {
    RetryLayer::with_policy(
        RetryPolicy::new()
            .backoff(Backoff::constant(Duration::from_millis(100)))
            .no_budget(),
    )
}

/// A token source handing out "token-1", "token-2", ...
fn tokens() -> TokenRefreshLayer {
    let n = Arc::new(AtomicUsize::new(0));
    TokenRefreshLayer::new(from_fn(move || {
        let n = n.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Token::new(format!("token-{n}")) }
    }))
}

/// An upstream that accepts only `Bearer token-2` (the first token is stale), answering
/// `then` to it, and counting requests.
fn protected(calls: Arc<AtomicUsize>, then: StatusCode) -> Upstream {
    service_fn(move |request: Request<Full<Bytes>>| {
        calls.fetch_add(1, Ordering::SeqCst);
        let fresh = request.headers().get("authorization").unwrap() == "Bearer token-2";
        async move {
            Ok::<_, BoxError>(status(if fresh {
                then
            } else {
                StatusCode::UNAUTHORIZED
            }))
        }
    })
    .boxed_clone()
}

/// An upstream answering `failing` times with `code`, then never answering, counting requests.
fn failing_then_hanging(calls: Arc<AtomicUsize>, failing: usize, code: StatusCode) -> Upstream {
    service_fn(move |_: Request<Full<Bytes>>| {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if n > failing {
                std::future::pending::<()>().await;
            }
            Ok::<_, BoxError>(status(code))
        }
    })
    .boxed_clone()
}

#[tokio::test(start_paused = true)]
async fn a_deadline_that_passes_after_retries_says_how_many_requests_were_sent() {
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = failing_then_hanging(calls.clone(), 2, StatusCode::SERVICE_UNAVAILABLE);
    let service = DeadlineLayer::new(Duration::from_secs(2)).layer(retry().layer(upstream));
    let start = Instant::now();
    let err = Error::from(service.oneshot(get()).await.unwrap_err());

    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let attempts = err.attempts().expect("the record of the three requests");
    assert_eq!(attempts.count(), 3);
    assert_eq!(
        attempts.earlier(),
        [AttemptOutcome::Status(StatusCode::SERVICE_UNAVAILABLE); 2]
    );
    assert_eq!(
        err.to_string(),
        "gave up after 3 attempts: the call's deadline passed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_passes_after_retries_says_how_many_requests_were_sent_on_a_multi_thread_runtime()
 {
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = failing_then_hanging(calls.clone(), 1, StatusCode::BAD_GATEWAY);
    // Real time, bounded: a 300 ms deadline.
    let service = DeadlineLayer::new(Duration::from_millis(300)).layer(retry().layer(upstream));
    let err = Error::from(service.oneshot(get()).await.unwrap_err());
    assert_eq!(err.kind(), ErrorKind::DeadlineExceeded);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(err.attempts().map(Attempts::count), Some(2));
}

#[tokio::test(start_paused = true)]
async fn a_refresh_and_replay_under_retry_is_recorded_on_the_response() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = retry()
        .layer(tokens().layer(protected(calls.clone(), StatusCode::OK)))
        .boxed_clone();
    // Make "token-1" current, then let the server move on to "token-2".
    let response = service.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let attempts = Attempts::from_extensions(response.extensions()).expect("two requests sent");
    assert_eq!(
        (attempts.count(), attempts.replays(), attempts.retries()),
        (2, 1, 0)
    );
    // Re-sent because the token layer refused the first (the bare 401 was not decoded here).
    assert_eq!(attempts.earlier(), [AttemptOutcome::Error(ErrorKind::Auth)]);
}

#[tokio::test(start_paused = true)]
async fn a_refresh_and_replay_by_the_token_layer_alone_is_recorded_on_the_response() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = tokens().layer(protected(calls.clone(), StatusCode::OK));
    let response = service.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let attempts = Attempts::from_extensions(response.extensions()).expect("two requests sent");
    assert_eq!((attempts.count(), attempts.replays()), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_replay_answered_with_an_error_status_is_recorded_under_any_retry_setting() {
    let calls = Arc::new(AtomicUsize::new(0));
    let upstream = || tokens().layer(protected(calls.clone(), StatusCode::FORBIDDEN));
    let no_retries = RetryLayer::with_policy(RetryPolicy::new().max_retries(0));
    for result in [
        upstream().oneshot(get()).await,
        no_retries.layer(upstream()).oneshot(get()).await,
        retry().layer(upstream()).oneshot(get()).await,
    ] {
        let response = result.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let attempts = Attempts::from_extensions(response.extensions()).unwrap();
        assert_eq!((attempts.count(), attempts.replays()), (2, 1));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 6);
}

#[tokio::test(start_paused = true)]
async fn a_replay_that_fails_says_it_was_a_second_request() {
    // The replay with the fresh token meets a reset connection: the error says two requests
    // were sent, the first refused with a 401, and what finally happened.
    let upstream = || {
        service_fn(move |request: Request<Full<Bytes>>| {
            let fresh = request.headers().get("authorization").unwrap() == "Bearer token-2";
            async move {
                if fresh {
                    Err::<Response<Full<Bytes>>, BoxError>(Box::new(std::io::Error::from(
                        std::io::ErrorKind::ConnectionReset,
                    )))
                } else {
                    Ok(status(StatusCode::UNAUTHORIZED))
                }
            }
        })
    };
    let no_retries = RetryLayer::with_policy(RetryPolicy::new().max_retries(0));
    for result in [
        tokens().layer(upstream()).oneshot(get()).await,
        no_retries
            .layer(tokens().layer(upstream()))
            .oneshot(get())
            .await,
    ] {
        let err = Error::from(result.unwrap_err());
        let attempts = err.attempts().expect("two requests sent");
        assert_eq!((attempts.count(), attempts.replays()), (2, 1));
        assert_eq!(
            attempts.earlier(),
            [AttemptOutcome::Status(StatusCode::UNAUTHORIZED)]
        );
        assert_eq!(
            err.to_string(),
            "network error (the request may have reached the server): gave up after 2 attempts: \
             connection reset"
        );
    }
}

/// Through the standard pipeline, the error body is read by the envelope layer under the
/// per-attempt timeout: the timeout layer says the attempt's limit in the call's context
/// (`CallContext::attempt_limit`), and the envelope ends its read there with `Elapsed` in the
/// body phase (issue 19, item 4).
#[tokio::test(start_paused = true)]
async fn a_slow_error_body_through_the_pipeline_is_reported_in_the_body_phase() {
    use towline::core::{Elapsed, TimeoutPhase};
    use towline::{Pipeline, TimeoutLayer};
    use towline_testkit::{Reply, TestServer};

    let server = TestServer::start().await;
    // The head at once, then a 503 body in 4 chunks, one every second.
    server.route(
        "/slow",
        Reply::status(503)
            .json(r#"{"code":"busy","message":"try later","details":[]}"#)
            .slow_body(4, Duration::from_secs(1)),
    );
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let service = Pipeline::new()
        .retry(RetryLayer::with_policy(RetryPolicy::new().max_retries(0)))
        .timeout(TimeoutLayer::new(Duration::from_secs(1)))
        .service(client);
    let request = Request::get(server.url("/slow"))
        .body(http_body_util::Empty::new())
        .unwrap();
    let Err(err) = service.oneshot(request).await else {
        panic!("a 503 is an error");
    };
    let err = Error::from(err);
    let elapsed = err.find::<Elapsed>().expect("the attempt timed out");
    assert_eq!(elapsed.phase(), TimeoutPhase::Body, "{err}");
}
