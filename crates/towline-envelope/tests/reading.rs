//! The body read of ErrorBodyLayer's future, at its edges: a body failing midway, a future
//! dropped midway, a future polled after it completed.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use towline_envelope::ErrorBodyLayer;

/// Sends `frames` in turn (`None`: pending, without waking), then ends; notes being dropped.
struct Script {
    frames: Vec<Option<Result<Bytes, &'static str>>>,
    dropped: Arc<AtomicBool>,
}

impl Body for Script {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.frames.is_empty() {
            return Poll::Ready(None);
        }
        match self.frames.remove(0) {
            None => Poll::Pending,
            Some(Ok(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Some(Err(error)) => Poll::Ready(Some(Err(error.into()))),
        }
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

fn scripted(
    status: u16,
    frames: Vec<Option<Result<Bytes, &'static str>>>,
    dropped: Arc<AtomicBool>,
) -> impl Service<Request<()>, Response = Response<Script>, Error = BoxError> {
    let mut body = Some(Script { frames, dropped });
    service_fn(move |_req: Request<()>| {
        let body = body.take().expect("one call");
        async move {
            Ok::<_, BoxError>(
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(body)
                    .unwrap(),
            )
        }
    })
}

#[tokio::test]
async fn an_inspected_success_body_that_fails_midway_is_handed_back_then_fails() {
    let frames = vec![
        Some(Ok(Bytes::from_static(b"{\"status\":"))),
        Some(Err("reset")),
    ];
    let response = ErrorBodyLayer::new()
        .inspect_success(true)
        .layer(scripted(200, frames, Arc::default()))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"{\"status\":");
    let failure = body.frame().await.unwrap().unwrap_err();
    assert_eq!(failure.to_string(), "reset");
    assert!(body.frame().await.is_none());
}

#[test]
fn a_future_dropped_while_reading_a_body_drops_the_body() {
    for status in [500, 200] {
        let dropped = Arc::new(AtomicBool::new(false));
        let frames = vec![Some(Ok(Bytes::from_static(b"{\"a\":"))), None];
        let mut service = ErrorBodyLayer::new().inspect_success(true).layer(scripted(
            status,
            frames,
            dropped.clone(),
        ));
        let mut cx = Context::from_waker(Waker::noop());
        {
            let future = pin!(service.call(Request::new(())));
            assert!(future.poll(&mut cx).is_pending(), "{status}: reading");
            assert!(!dropped.load(Ordering::SeqCst));
        }
        assert!(dropped.load(Ordering::SeqCst), "{status}: body kept");
    }
}

#[test]
#[should_panic(expected = "polled after completion")]
fn a_future_polled_after_completion_panics() {
    let mut service =
        ErrorBodyLayer::new().layer(scripted(404, vec![Some(Ok("{}".into()))], Arc::default()));
    let mut cx = Context::from_waker(Waker::noop());
    let mut future = pin!(service.call(Request::new(())));
    assert!(matches!(future.as_mut().poll(&mut cx), Poll::Ready(Err(_))));
    let _ = future.as_mut().poll(&mut cx);
}
