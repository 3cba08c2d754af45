//! towline's rules inside tower's own `Retry`, through `TowerPolicy`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Empty, Full};
use tower::{BoxError, Layer, ServiceExt, service_fn};
use towline_core::{Attempts, Error, ErrorKind};
use towline_retry::{Backoff, Jitter, RetryBudget, RetryLayer, RetryPolicy};

/// An upstream answering `statuses` in order (the last repeats), counting calls in `calls`.
fn counting(
    statuses: &'static [u16],
    calls: Arc<AtomicUsize>,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Empty<Bytes>>,
    Error = BoxError,
    Future = impl Send,
> + Clone {
    service_fn(move |_req: Request<Full<Bytes>>| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let status = statuses[n.min(statuses.len() - 1)];
            Ok::<_, BoxError>(
                Response::builder()
                    .status(status)
                    .body(Empty::new())
                    .unwrap(),
            )
        }
    })
}

fn layer() -> RetryLayer {
    RetryLayer::with_policy(
        RetryPolicy::new()
            .seed(3)
            .backoff(Backoff::constant(std::time::Duration::from_millis(10)).jitter(Jitter::None)),
    )
}

#[tokio::test(start_paused = true)]
async fn tower_retry_follows_towline_rules_and_records_attempts() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = counting(&[503, 502, 200], calls.clone());
    let response = tower::retry::RetryLayer::new(layer().tower_policy())
        .layer(service)
        .oneshot(
            Request::get("http://api.test/")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        Attempts::from_extensions(response.extensions())
            .unwrap()
            .count(),
        3
    );
}

#[tokio::test(start_paused = true)]
async fn tower_retry_keeps_post_safe() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = counting(&[500, 200], calls.clone());
    let response = tower::retry::RetryLayer::new(layer().tower_policy())
        .layer(service)
        .oneshot(
            Request::post("http://api.test/")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn tower_retry_spends_the_shared_budget() {
    let budget = RetryBudget::new(std::time::Duration::from_secs(10), 0, 0.5).unwrap();
    let layer = RetryLayer::with_policy(RetryPolicy::new().budget(budget).backoff(Backoff::none()));
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let failing = service_fn(move |_req: Request<Full<Bytes>>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            Err::<Response<Empty<Bytes>>, BoxError>(Box::new(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            )))
        }
    });
    let retry = tower::retry::RetryLayer::new(layer.tower_policy()).layer(failing);
    let mut exhausted = 0;
    for _ in 0..10 {
        let err = retry
            .clone()
            .oneshot(
                Request::get("http://api.test/")
                    .body(Full::new(Bytes::new()))
                    .unwrap(),
            )
            .await
            .unwrap_err();
        if Error::from(err).kind() == ErrorKind::RetryBudgetExhausted {
            exhausted += 1;
        }
    }
    // 10 calls at 50 %: at most 5 retries in all.
    assert!(
        calls.load(Ordering::SeqCst) <= 15,
        "{}",
        calls.load(Ordering::SeqCst)
    );
    assert!(exhausted > 0);
}
