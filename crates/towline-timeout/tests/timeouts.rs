//! TimeoutLayer and DeadlineLayer under a paused clock: each limit fires exactly when it
//! should, with the right typed error, and not before.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use tokio::time::{Instant, Sleep, sleep};
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt, service_fn};
use towline_core::{Deadline, DeadlineExceeded, Elapsed, Error, ErrorKind, TimeoutPhase};
use towline_timeout::{DeadlineLayer, TimeoutLayer};

const SECOND: Duration = Duration::from_secs(1);

/// A service that answers after `delay` with a small full body.
fn answering_after(
    delay: Duration,
) -> impl tower::Service<Request<()>, Response = Response<Full<Bytes>>, Error = BoxError> + Clone {
    service_fn(move |_req: Request<()>| async move {
        sleep(delay).await;
        Ok::<_, BoxError>(Response::new(Full::new(Bytes::from_static(b"hello"))))
    })
}

/// A body that sends `frames` chunks, sleeping `gap` before each, then (if `stall`) hangs.
#[derive(Debug)]
struct Dribble {
    frames: usize,
    gap: Duration,
    stall: bool,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Dribble {
    fn new(frames: usize, gap: Duration, stall: bool) -> Self {
        Dribble {
            frames,
            gap,
            stall,
            sleep: None,
        }
    }
}

impl Body for Dribble {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.frames == 0 {
            return if self.stall {
                Poll::Pending
            } else {
                Poll::Ready(None)
            };
        }
        let gap = self.gap;
        let timer = self.sleep.get_or_insert_with(|| Box::pin(sleep(gap)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.sleep = None;
        self.frames -= 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"chunk")))))
    }
}

fn dribbling(
    frames: usize,
    gap: Duration,
    stall: bool,
) -> impl tower::Service<Request<()>, Response = Response<Dribble>, Error = BoxError> + Clone {
    service_fn(move |_req: Request<()>| async move {
        Ok::<_, BoxError>(Response::new(Dribble::new(frames, gap, stall)))
    })
}

#[tokio::test(start_paused = true)]
async fn a_head_slower_than_the_limit_times_out_exactly_at_the_limit() {
    let start = Instant::now();
    let err = TimeoutLayer::new(5 * SECOND)
        .layer(answering_after(10 * SECOND))
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), 5 * SECOND);
    let elapsed = err.downcast_ref::<Elapsed>().expect("a typed Elapsed");
    assert_eq!(elapsed.limit(), 5 * SECOND);
    assert_eq!(elapsed.phase(), TimeoutPhase::Head);
    assert_eq!(Error::from(err).kind(), ErrorKind::Timeout);
}

#[tokio::test(start_paused = true)]
async fn the_clocks_start_at_the_call_not_at_the_first_poll() {
    // Called, then first polled a second later: the time in between counts, as for tower's
    // `Timeout`, though the timers themselves are made only at that first poll.
    let mut timeout = TimeoutLayer::new(SECOND).layer(answering_after(SECOND / 2));
    let start = Instant::now();
    let future = timeout.ready().await.unwrap().call(Request::new(()));
    sleep(SECOND).await;
    let err = future.await.unwrap_err();
    assert!(err.is::<Elapsed>());
    assert_eq!(start.elapsed(), SECOND);

    let mut deadline = DeadlineLayer::new(SECOND).layer(answering_after(SECOND / 2));
    let start = Instant::now();
    let future = deadline.ready().await.unwrap().call(Request::new(()));
    sleep(SECOND).await;
    let err = future.await.unwrap_err();
    assert!(err.is::<DeadlineExceeded>());
    assert_eq!(start.elapsed(), SECOND);
}

#[tokio::test(start_paused = true)]
async fn an_attempt_sent_later_than_the_deadlines_call_starts_its_own_clock() {
    // The first attempt shares the deadline's clock reading; one sent after a wait (as a retry
    // or a request held at a gate is) must not: 5 s of waiting, then its own 10 s.
    let attempt = TimeoutLayer::new(10 * SECOND).layer(answering_after(60 * SECOND));
    let waits_then_sends = service_fn(move |request: Request<()>| {
        let attempt = attempt.clone();
        async move {
            sleep(5 * SECOND).await;
            attempt.oneshot(request).await
        }
    });
    let start = Instant::now();
    let err = DeadlineLayer::new(60 * SECOND)
        .layer(waits_then_sends)
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(Error::from(err).kind(), ErrorKind::Timeout);
    assert_eq!(start.elapsed(), 15 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn a_head_within_the_limit_passes_with_its_body() {
    let response = TimeoutLayer::new(5 * SECOND)
        .layer(answering_after(4 * SECOND))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"hello");
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stalls_mid_stream_fails_with_a_body_timeout() {
    let response = TimeoutLayer::new(SECOND)
        .body_timeout(2 * SECOND)
        .layer(dribbling(2, Duration::from_millis(100), true))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let mut body = response.into_body();
    for _ in 0..2 {
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "chunk");
    }
    let stalled_at = Instant::now();
    let err = body.frame().await.unwrap().unwrap_err();
    assert_eq!(stalled_at.elapsed(), 2 * SECOND);
    let elapsed = err.downcast_ref::<Elapsed>().unwrap();
    assert_eq!(elapsed.phase(), TimeoutPhase::Body);
    assert_eq!(elapsed.limit(), 2 * SECOND);
    assert_eq!(Error::from(err).kind(), ErrorKind::Timeout);
}

#[tokio::test(start_paused = true)]
async fn the_body_limit_is_idle_time_so_a_slow_but_steady_body_completes() {
    // 10 frames, 900 ms apart: 9 s in all, but never 1 s without a frame.
    let response = TimeoutLayer::new(SECOND)
        .body_timeout(SECOND)
        .layer(dribbling(10, Duration::from_millis(900), false))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let start = Instant::now();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 50);
    assert_eq!(start.elapsed(), Duration::from_millis(9000));
}

#[tokio::test(start_paused = true)]
async fn without_a_body_limit_the_body_may_stall() {
    let response = TimeoutLayer::new(SECOND)
        .layer(dribbling(0, Duration::ZERO, true))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let mut body = response.into_body();
    let outcome = tokio::time::timeout(3600 * SECOND, body.frame()).await;
    assert!(outcome.is_err(), "the body has no limit of its own");
}

#[tokio::test(start_paused = true)]
async fn the_deadline_spans_several_inner_delays() {
    // An inner layer that makes three 2-second attempts in a row, like a retry would.
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let inner = service_fn(move |_req: Request<()>| {
        let counted = counted.clone();
        async move {
            for _ in 0..3 {
                counted.fetch_add(1, Ordering::SeqCst);
                sleep(2 * SECOND).await;
            }
            Ok::<_, BoxError>(Response::new(Full::new(Bytes::new())))
        }
    });
    let start = Instant::now();
    let err = DeadlineLayer::new(5 * SECOND)
        .layer(inner)
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), 5 * SECOND);
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "cut short in the third");
    assert!(err.is::<DeadlineExceeded>());
    assert_eq!(Error::from(err).kind(), ErrorKind::DeadlineExceeded);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_reaches_a_layer_below_in_another_task() {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let record = seen.clone();
    // The request crosses a task boundary, as it does through a `Buffer` or a spawned call.
    let inner = service_fn(move |req: Request<()>| {
        let record = record.clone();
        async move {
            tokio::spawn(async move {
                *record.lock().unwrap() = Deadline::in_force(req.extensions());
            })
            .await
            .unwrap();
            Ok::<_, BoxError>(Response::new(Full::new(Bytes::new())))
        }
    });
    let start = Instant::now();
    DeadlineLayer::new(7 * SECOND)
        .layer(inner)
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let deadline = seen.lock().unwrap().expect("in the request's context");
    assert_eq!(deadline.instant(), start + 7 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn nested_deadline_layers_keep_the_earlier() {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let record = seen.clone();
    let inner = service_fn(move |req: Request<()>| {
        *record.lock().unwrap() = Deadline::in_force(req.extensions());
        async {
            sleep(3600 * SECOND).await;
            Ok::<_, BoxError>(Response::new(Full::new(Bytes::new())))
        }
    });
    let start = Instant::now();
    let err = DeadlineLayer::new(3 * SECOND)
        .layer(DeadlineLayer::new(60 * SECOND).layer(inner))
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), 3 * SECOND);
    assert!(err.is::<DeadlineExceeded>());
    let deadline = seen.lock().unwrap().expect("in force below both");
    assert_eq!(deadline.instant(), start + 3 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn an_earlier_caller_deadline_wins_and_a_later_one_is_tightened() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let inner = service_fn(move |req: Request<()>| {
        record
            .lock()
            .unwrap()
            .push(Deadline::in_force(req.extensions()).unwrap());
        async {
            sleep(3600 * SECOND).await;
            Ok::<_, BoxError>(Response::new(Full::new(Bytes::new())))
        }
    });
    let service = DeadlineLayer::new(10 * SECOND).layer(inner);

    let first_start = Instant::now();
    let start = first_start;
    let mut early = Request::new(());
    Deadline::after(2 * SECOND).tighten(early.extensions_mut());
    let err = service.clone().oneshot(early).await.unwrap_err();
    assert_eq!(start.elapsed(), 2 * SECOND);
    assert!(err.is::<DeadlineExceeded>());

    let second_start = Instant::now();
    let start = second_start;
    let mut late = Request::new(());
    Deadline::after(100 * SECOND).tighten(late.extensions_mut());
    service.clone().oneshot(late).await.unwrap_err();
    assert_eq!(start.elapsed(), 10 * SECOND);

    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].instant(), first_start + 2 * SECOND, "the caller's");
    assert_eq!(seen[1].instant(), second_start + 10 * SECOND, "the layer's");
}

#[tokio::test(start_paused = true)]
async fn a_request_past_its_deadline_is_never_sent() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let inner = service_fn(move |_req: Request<()>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, BoxError>(Response::new(Full::new(Bytes::new()))) }
    });
    let mut request = Request::new(());
    Deadline::after(SECOND).tighten(request.extensions_mut());
    sleep(2 * SECOND).await;
    let err = DeadlineLayer::new(10 * SECOND)
        .layer(inner)
        .oneshot(request)
        .await
        .unwrap_err();
    assert!(err.is::<DeadlineExceeded>());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_covers_the_body_unless_head_only() {
    let start = Instant::now();
    let response = DeadlineLayer::new(5 * SECOND)
        .layer(dribbling(3, SECOND, true))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let err = response.into_body().collect().await.unwrap_err();
    assert_eq!(start.elapsed(), 5 * SECOND);
    assert_eq!(Error::from(err).kind(), ErrorKind::DeadlineExceeded);

    // head_only: a slow download may outlive the deadline.
    let response = DeadlineLayer::new(5 * SECOND)
        .head_only()
        .layer(dribbling(8, SECOND, false))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 40);
}

#[tokio::test(start_paused = true)]
async fn the_per_attempt_timeout_fires_inside_the_deadline_and_keeps_its_kind() {
    let start = Instant::now();
    let err = ServiceBuilder::new()
        .layer(DeadlineLayer::new(30 * SECOND))
        .layer(TimeoutLayer::new(2 * SECOND))
        .service(answering_after(10 * SECOND))
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), 2 * SECOND);
    assert_eq!(Error::from(err).kind(), ErrorKind::Timeout);

    // And the deadline, when it is the tighter one, wins.
    let start = Instant::now();
    let err = ServiceBuilder::new()
        .layer(DeadlineLayer::new(SECOND))
        .layer(TimeoutLayer::new(2 * SECOND))
        .service(answering_after(10 * SECOND))
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), SECOND);
    assert_eq!(Error::from(err).kind(), ErrorKind::DeadlineExceeded);
}

#[tokio::test(start_paused = true)]
async fn inner_errors_keep_their_classification() {
    let inner = service_fn(|_req: Request<()>| async {
        Err::<Response<Full<Bytes>>, _>(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
    });
    let err = ServiceBuilder::new()
        .layer(DeadlineLayer::new(SECOND))
        .layer(TimeoutLayer::new(SECOND))
        .service(inner)
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(
        Error::from(err).kind(),
        ErrorKind::Network {
            may_have_reached_server: true
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_zero_budget_sends_nothing() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let inner = service_fn(move |_req: Request<()>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, BoxError>(Response::new(Full::new(Bytes::new()))) }
    });
    let err = DeadlineLayer::new(Duration::ZERO)
        .layer(inner)
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    assert!(err.is::<DeadlineExceeded>());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn absurd_limits_do_not_panic() {
    let response = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Duration::MAX))
        .layer(TimeoutLayer::new(Duration::MAX).body_timeout(Duration::MAX))
        .service(dribbling(2, SECOND, false))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), 10);
}

#[tokio::test(start_paused = true)]
async fn a_body_ends_after_its_timeout_error() {
    let response = TimeoutLayer::new(SECOND)
        .body_timeout(SECOND)
        .layer(dribbling(0, Duration::ZERO, true))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let mut body = response.into_body();
    assert!(body.frame().await.unwrap().is_err());
    assert!(body.is_end_stream());
    assert!(body.frame().await.is_none(), "one error, then the end");
}
