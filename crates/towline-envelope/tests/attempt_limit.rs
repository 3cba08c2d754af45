//! The body read under a per-attempt limit (`CallContext::attempt_limit`, set by a timeout
//! layer above): a body still arriving at the limit ends the call in the body phase, since
//! the head came long before (issue 19, item 4).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::time::{Instant, Sleep, sleep};
use tower::{BoxError, Layer, ServiceExt, service_fn};
use towline_core::{AttemptLimit, CallContext, Deadline, Elapsed, Error, ErrorKind, TimeoutPhase};
use towline_envelope::{Decoder, ErrorBodyLayer, Format};
use towline_timeout::{DeadlineLayer, TimeoutLayer};

const SECOND: Duration = Duration::from_secs(1);

/// A body sent in `chunks`, one every `gap`; notes being dropped.
struct Trickle {
    chunks: Vec<&'static str>,
    gap: Duration,
    sleep: Pin<Box<Sleep>>,
    dropped: Arc<AtomicBool>,
}

impl Trickle {
    fn new(chunks: Vec<&'static str>, gap: Duration, dropped: Arc<AtomicBool>) -> Self {
        Trickle {
            chunks,
            gap,
            sleep: Box::pin(sleep(gap)),
            dropped,
        }
    }
}

impl Body for Trickle {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.chunks.is_empty() {
            return Poll::Ready(None);
        }
        ready!(self.sleep.as_mut().poll(cx));
        let next = Instant::now() + self.gap;
        self.sleep.as_mut().reset(next);
        let chunk = self.chunks.remove(0);
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(chunk.as_bytes())))))
    }
}

impl Drop for Trickle {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// `{"code":"busy","message":"try later"}` in four chunks, one every second.
const CHUNKS: [&str; 4] = [
    r#"{"code":"#,
    r#""busy","#,
    r#""message":"#,
    r#""try later"}"#,
];

/// Answers at once with `status` and `content_type`, the body trickling in.
fn trickling(
    status: u16,
    content_type: &'static str,
    dropped: Arc<AtomicBool>,
) -> impl tower::Service<Request<()>, Response = Response<Trickle>, Error = BoxError> + Clone {
    service_fn(move |_request: Request<()>| {
        let body = Trickle::new(CHUNKS.to_vec(), SECOND, dropped.clone());
        async move {
            Ok::<_, BoxError>(
                Response::builder()
                    .status(status)
                    .header("content-type", content_type)
                    .body(body)
                    .unwrap(),
            )
        }
    })
}

/// A request whose context carries an attempt limit of `limit` from now.
fn limited(limit: Duration) -> Request<()> {
    let mut request = Request::new(());
    CallContext::of_mut(request.extensions_mut())
        .set_attempt_limit(Some(AttemptLimit::after(limit)));
    request
}

fn elapsed(err: BoxError) -> Elapsed {
    let err = Error::from(err);
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    *err.find::<Elapsed>().expect("an Elapsed in the chain")
}

#[tokio::test(start_paused = true)]
async fn a_slow_error_body_ends_at_the_attempt_limit_in_the_body_phase() {
    let dropped = Arc::new(AtomicBool::new(false));
    let service = ErrorBodyLayer::new().layer(trickling(503, "application/json", dropped.clone()));
    let start = Instant::now();
    let err = service
        .oneshot(limited(2 * SECOND + SECOND / 2))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), 2 * SECOND + SECOND / 2);
    assert_eq!(
        elapsed(err),
        Elapsed::new(2 * SECOND + SECOND / 2, TimeoutPhase::Body)
    );
    // The rest of the body is never read.
    assert!(dropped.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn a_slow_inspected_success_body_ends_at_the_attempt_limit_in_the_body_phase() {
    let dropped = Arc::new(AtomicBool::new(false));
    let service = ErrorBodyLayer::with_decoder(Decoder::only(Format::Open2b)).layer(trickling(
        200,
        "application/json",
        dropped,
    ));
    let start = Instant::now();
    let err = service.oneshot(limited(SECOND / 2)).await.unwrap_err();
    assert_eq!(start.elapsed(), SECOND / 2);
    assert_eq!(elapsed(err), Elapsed::new(SECOND / 2, TimeoutPhase::Body));
}

#[tokio::test(start_paused = true)]
async fn an_error_body_read_within_the_attempt_limit_is_decoded() {
    let dropped = Arc::new(AtomicBool::new(false));
    let service = ErrorBodyLayer::new().layer(trickling(503, "application/json", dropped));
    let err = Error::from(service.oneshot(limited(10 * SECOND)).await.unwrap_err());
    assert_eq!(err.kind(), ErrorKind::Api);
    assert_eq!(err.api().unwrap().message.as_deref(), Some("try later"));
}

#[tokio::test(start_paused = true)]
async fn without_an_attempt_limit_a_slow_error_body_is_read_whole() {
    // A context without a limit (a deadline layer alone set it) and no context at all.
    let dropped = Arc::new(AtomicBool::new(false));
    let service = ErrorBodyLayer::new().layer(trickling(503, "application/json", dropped));
    let mut with_context = Request::new(());
    CallContext::of_mut(with_context.extensions_mut())
        .tighten_deadline(Deadline::after(SECOND / 2));
    for request in [with_context, Request::new(())] {
        let start = Instant::now();
        let err = Error::from(service.clone().oneshot(request).await.unwrap_err());
        assert_eq!(err.kind(), ErrorKind::Api);
        assert_eq!(start.elapsed(), 4 * SECOND);
    }
}

#[tokio::test(start_paused = true)]
async fn a_success_that_is_not_inspected_passes_at_once_under_a_limit() {
    let dropped = Arc::new(AtomicBool::new(false));
    let service = ErrorBodyLayer::new().layer(trickling(200, "application/json", dropped));
    let response = service.oneshot(limited(SECOND / 2)).await.unwrap();
    // The body is the caller's to read, at its own pace: the limit here is the head's.
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), CHUNKS.concat().len());
}

#[tokio::test(start_paused = true)]
async fn under_the_timeout_layer_the_body_phase_wins_when_both_timers_fire_together() {
    // The real pair: TimeoutLayer's head timer and this layer's cutoff end at the same
    // instant; the error says what was slow.
    let dropped = Arc::new(AtomicBool::new(false));
    let service = DeadlineLayer::new(30 * SECOND).layer(
        TimeoutLayer::new(SECOND + SECOND / 2).layer(ErrorBodyLayer::new().layer(trickling(
            503,
            "application/json",
            dropped,
        ))),
    );
    let start = Instant::now();
    let err = service.oneshot(Request::new(())).await.unwrap_err();
    assert_eq!(start.elapsed(), SECOND + SECOND / 2);
    let elapsed = elapsed(err);
    assert_eq!(elapsed.phase(), TimeoutPhase::Body);
    assert_eq!(
        elapsed.to_string(),
        Elapsed::new(SECOND + SECOND / 2, TimeoutPhase::Body).to_string()
    );
}

#[tokio::test(start_paused = true)]
async fn a_future_dropped_while_waiting_for_the_body_leaves_no_timer_behind() {
    let dropped = Arc::new(AtomicBool::new(false));
    let service = ErrorBodyLayer::new().layer(trickling(503, "application/json", dropped.clone()));
    let call = service.oneshot(limited(10 * SECOND));
    // Dropped in the body read, after its cutoff timer was made.
    assert!(tokio::time::timeout(SECOND / 2, call).await.is_err());
    assert!(dropped.load(Ordering::SeqCst));
    // The clock goes on past the limit without anything firing into a dropped future.
    sleep(20 * SECOND).await;
}
