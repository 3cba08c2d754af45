//! Under towline's retry layer, an open circuit ends the call: the retry layer does not retry
//! into it (its classifier's verdict on `ErrorKind::CircuitOpen` is final).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Empty;
use tokio::time::Instant;
use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};
use towline_breaker::{CircuitBreakerLayer, Settings};
use towline_core::{Error, ErrorKind};
use towline_retry::{RetryLayer, RetryPolicy};

fn get() -> Request<Empty<Bytes>> {
    Request::get("http://api.example/items")
        .body(Empty::new())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_retry_layer_does_not_retry_into_an_open_circuit() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let breaker =
        CircuitBreakerLayer::with_settings(Settings::new().consecutive_failures(1)).unwrap();
    let service = ServiceBuilder::new()
        .layer(RetryLayer::with_policy(
            RetryPolicy::new().max_retries(5).no_budget().seed(1),
        ))
        .layer(breaker.clone())
        .service(service_fn(move |_req: Request<Empty<Bytes>>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async {
                Ok::<_, BoxError>(
                    Response::builder()
                        .status(StatusCode::SERVICE_UNAVAILABLE)
                        .body(())
                        .unwrap(),
                )
            }
        }));

    // The first attempt's 503 opens the circuit; the retry meets it and the call ends.
    let err = Error::from(service.clone().oneshot(get()).await.unwrap_err());
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(err.attempts().map(|a| a.count()), Some(2));
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // While it is open, a call fails at once: no retry, no backoff sleep.
    let start = Instant::now();
    let err = Error::from(service.oneshot(get()).await.unwrap_err());
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(err.attempts().is_none(), "not retried");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
