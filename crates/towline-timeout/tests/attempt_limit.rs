//! The per-attempt limit travels to the layers below in the call's context, so that a layer
//! reading an error body under it (the envelope's) can end in the body phase, rather than
//! this layer's timer saying the head never came (issue 19, item 4).

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::time::{Instant, sleep, sleep_until};
use tower::{BoxError, Layer, ServiceExt, service_fn};
use towline_core::{AttemptLimit, CallContext, Elapsed, Error, ErrorKind, TimeoutPhase};
use towline_timeout::{DeadlineLayer, TimeoutLayer};

const SECOND: Duration = Duration::from_secs(1);

/// What the envelope layer does with an error response: the head comes at once, then the
/// body takes `body` to read; under an attempt limit it ends at the limit itself, in the
/// body phase.
fn slow_error_body(
    body: Duration,
) -> impl tower::Service<Request<()>, Response = Response<Full<Bytes>>, Error = BoxError> + Clone {
    service_fn(move |request: Request<()>| async move {
        let limit =
            CallContext::from_extensions(request.extensions()).and_then(CallContext::attempt_limit);
        let read = sleep(body);
        match limit {
            Some(limit) => tokio::select! {
                () = read => {}
                () = sleep_until(limit.until()) => {
                    return Err(Box::new(Elapsed::new(limit.limit(), TimeoutPhase::Body)) as BoxError);
                }
            },
            None => read.await,
        }
        let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        Ok(response)
    })
}

#[tokio::test(start_paused = true)]
async fn the_attempt_limit_reaches_the_layers_below_in_the_context() {
    let seen = service_fn(|request: Request<()>| async move {
        let context = CallContext::from_extensions(request.extensions()).copied();
        Ok::<_, BoxError>(Response::new(context.and_then(|c| c.attempt_limit())))
    });
    let start = Instant::now();
    let service = DeadlineLayer::new(30 * SECOND).layer(TimeoutLayer::new(SECOND).layer(seen));
    let response = service.oneshot(Request::new(())).await.unwrap();
    let limit = response.into_body().into_inner().into_inner();
    assert_eq!(limit, Some(AttemptLimit::starting_at(start, SECOND)));
}

#[tokio::test(start_paused = true)]
async fn a_request_without_a_context_gets_none_from_the_timeout() {
    // Inserting the first extension would allocate on every call: nothing is inserted.
    let seen = service_fn(|request: Request<()>| async move {
        Ok::<_, BoxError>(Response::new(request.extensions().len()))
    });
    let response = TimeoutLayer::new(SECOND)
        .layer(seen)
        .oneshot(Request::new(()))
        .await
        .unwrap();
    assert_eq!(*response.body().get_ref(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_slow_error_body_read_below_is_reported_in_the_body_phase() {
    let start = Instant::now();
    let service = DeadlineLayer::new(30 * SECOND)
        .layer(TimeoutLayer::new(SECOND).layer(slow_error_body(5 * SECOND)));
    let err = Error::from(service.oneshot(Request::new(())).await.unwrap_err());
    // At the limit, both timers fire: the layer below answers first, and its phase is kept.
    assert_eq!(start.elapsed(), SECOND);
    assert_eq!(err.kind(), ErrorKind::Timeout);
    let elapsed = err.find::<Elapsed>().unwrap();
    assert_eq!(
        (elapsed.phase(), elapsed.limit()),
        (TimeoutPhase::Body, SECOND)
    );
    assert_eq!(
        err.to_string(),
        "response body stalled, not complete within 1s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_error_body_read_below_is_reported_in_the_body_phase_on_a_multi_thread_runtime() {
    // Real time, bounded: a 200 ms limit.
    let limit = Duration::from_millis(200);
    let service = DeadlineLayer::new(30 * SECOND)
        .layer(TimeoutLayer::new(limit).layer(slow_error_body(5 * SECOND)));
    let err = Error::from(service.oneshot(Request::new(())).await.unwrap_err());
    assert_eq!(err.find::<Elapsed>().unwrap().phase(), TimeoutPhase::Body);
}
