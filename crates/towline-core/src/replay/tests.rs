use super::*;

use http_body_util::{BodyExt, Full};

/// A body that yields the given frames, one per poll.
struct Frames(std::collections::VecDeque<Result<Frame<Bytes>, BoxError>>);

impl Body for Frames {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.pop_front())
    }
}

/// A body of the given chunks, optionally with trailers.
fn chunks(parts: &[&'static str], trailers: bool) -> Frames {
    let mut frames: std::collections::VecDeque<_> = parts
        .iter()
        .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
        .collect();
    if trailers {
        let mut map = HeaderMap::new();
        map.insert("x-sum", "1".parse().unwrap());
        frames.push_back(Ok(Frame::trailers(map)));
    }
    Frames(frames)
}

#[tokio::test]
async fn every_copy_sends_the_same_bytes_and_trailers() {
    let body = ReplayBody::new(chunks(&["a", "bc", "def"], true), 1024);
    let second = body.replay().unwrap();
    let first = body.collect().await.unwrap();
    assert_eq!(first.trailers().unwrap()["x-sum"], "1");
    assert_eq!(first.to_bytes(), "abcdef");
    let third = second.replay().unwrap();
    let second = second.collect().await.unwrap();
    assert_eq!(second.trailers().unwrap()["x-sum"], "1");
    assert_eq!(second.to_bytes(), "abcdef");
    assert_eq!(third.collect().await.unwrap().to_bytes(), "abcdef");
}

#[tokio::test]
async fn a_copy_made_midway_replays_the_start_then_reads_the_rest() {
    let mut first = ReplayBody::new(chunks(&["one,", "two,", "three"], false), 1024);
    let frame = first.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "one,");
    // The first attempt failed after one chunk; the retry takes over.
    let second = first.replay().unwrap();
    drop(first);
    assert_eq!(second.collect().await.unwrap().to_bytes(), "one,two,three");
}

#[tokio::test]
async fn past_the_cap_nothing_is_kept_and_no_replay_is_offered() {
    let body = ReplayBody::new(chunks(&["12345", "67890", "abc"], false), 8);
    let early = body.replay().unwrap();
    assert!(body.replay().is_some());
    let mut body = body;
    let mut sent = Vec::new();
    while let Some(frame) = body.frame().await {
        sent.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    // The first attempt still sends everything, byte-exact.
    assert_eq!(sent, b"1234567890abc");
    assert!(!body.can_replay());
    assert!(body.replay().is_none());
    assert_eq!(body.shared.lock().unwrap().kept_len, 0, "nothing held");
    // A copy made earlier cannot send bytes that are gone: a typed error, not wrong data.
    let err = early.collect().await.unwrap_err();
    assert!(err.is::<BodyTooLarge>());
}

#[test]
fn a_body_that_announces_more_than_the_cap_is_never_kept() {
    let body = ReplayBody::new(Full::new(Bytes::from(vec![7u8; 100])), 99);
    assert!(body.replay().is_none());
    let body = ReplayBody::new(Full::new(Bytes::from(vec![7u8; 100])), 100);
    assert!(body.replay().is_some());
}

#[tokio::test]
async fn an_inner_error_reaches_every_copy() {
    let frames = Frames(
        [
            Ok(Frame::data(Bytes::from_static(b"x"))),
            Err("disk on fire".into()),
        ]
        .into(),
    );
    let body = ReplayBody::new(frames, 64);
    let again = body.replay().unwrap();
    assert_eq!(
        body.collect().await.unwrap_err().to_string(),
        "disk on fire"
    );
    assert_eq!(
        again.collect().await.unwrap_err().to_string(),
        "disk on fire"
    );
}

/// A body whose single chunk becomes ready only when `ready` is set, waking whoever polled
/// it last (as real bodies do: one waker).
struct Gate {
    ready: Arc<std::sync::atomic::AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
    sent: bool,
}

impl Body for Gate {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.sent {
            return Poll::Ready(None);
        }
        if self.ready.load(std::sync::atomic::Ordering::SeqCst) {
            self.sent = true;
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"late")))));
        }
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[tokio::test]
async fn two_copies_waiting_at_the_front_are_both_woken() {
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let waker = Arc::new(Mutex::new(None::<Waker>));
    let gate = Gate {
        ready: ready.clone(),
        waker: waker.clone(),
        sent: false,
    };
    let first = ReplayBody::new(gate, 64);
    let second = first.replay().unwrap();
    let a = tokio::spawn(async move { first.collect().await.unwrap().to_bytes() });
    let b = tokio::spawn(async move { second.collect().await.unwrap().to_bytes() });
    // Let both copies poll and park.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    ready.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(w) = waker.lock().unwrap().take() {
        w.wake();
    }
    let (a, b) = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        (a.await.unwrap(), b.await.unwrap())
    })
    .await
    .expect("both copies finish: no lost wakeup");
    assert_eq!(a, "late");
    assert_eq!(b, "late");
}

#[tokio::test]
async fn a_failed_body_offers_no_replay() {
    let frames = Frames([Err("broken pipe".into())].into());
    let mut body = ReplayBody::new(frames, 64);
    assert!(body.frame().await.unwrap().is_err());
    assert!(body.replay().is_none(), "a retry would fail the same way");
}

#[test]
fn cheap_bodies_replay_as_they_are() {
    assert!(Full::new(Bytes::from_static(b"x")).replay().is_some());
    assert!(http_body_util::Empty::<Bytes>::new().replay().is_some());
    assert_eq!(String::from("s").replay().as_deref(), Some("s"));
    assert!(().replay().is_some());
}
