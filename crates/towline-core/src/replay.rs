//! Request bodies that can be sent again: [`Replayable`] and the bounded [`ReplayBody`].

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::BoxError;
use crate::failures::BodyTooLarge;

/// A request body that can be sent again for a retry or a replay after a token refresh.
///
/// Bodies that are cheap to copy ([`Full`](http_body_util::Full), [`Empty`](http_body_util::Empty),
/// `String`, `Bytes`, `()`) always can; a streaming body can once wrapped in a [`ReplayBody`],
/// as long as it stayed under its cap.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use towline_core::Replayable;
///
/// let body = Full::new(Bytes::from_static(b"{\"id\":7}"));
/// assert!(body.replay().is_some());
/// ```
pub trait Replayable: Sized {
    /// A body that sends the same bytes again, or `None` if that is no longer possible.
    fn replay(&self) -> Option<Self>;
}

impl<D: Buf + Clone> Replayable for http_body_util::Full<D> {
    fn replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D> Replayable for http_body_util::Empty<D> {
    fn replay(&self) -> Option<Self> {
        Some(http_body_util::Empty::new())
    }
}

impl Replayable for String {
    fn replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl Replayable for Bytes {
    fn replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl Replayable for () {
    fn replay(&self) -> Option<Self> {
        Some(())
    }
}

/// A copy of `request` to send again — method, URI, version, headers, extensions and a
/// [`replay`](Replayable::replay) of the body — or `None` if the body cannot be sent again.
///
/// ```
/// use bytes::Bytes;
/// use http::Request;
/// use http_body_util::Full;
/// use towline_core::replay_request;
///
/// let request = Request::post("http://api.example/orders")
///     .header("idempotency-key", "k-1")
///     .body(Full::new(Bytes::from_static(b"{}")))
///     .unwrap();
/// let again = replay_request(&request).unwrap();
/// assert_eq!(again.uri(), request.uri());
/// assert_eq!(again.headers()["idempotency-key"], "k-1");
/// ```
pub fn replay_request<B: Replayable>(request: &http::Request<B>) -> Option<http::Request<B>> {
    let body = request.body().replay()?;
    let mut copy = http::Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    *copy.extensions_mut() = request.extensions().clone();
    Some(copy)
}

/// The default cap on what a [`ReplayBody`] keeps: 64 KiB.
///
/// Request bodies worth retrying are usually small API payloads; past the cap, keeping the
/// bytes costs more than not retrying. The same figure as the error-body cap.
pub const DEFAULT_REPLAY_CAP: usize = 64 * 1024;

/// A streaming request body that keeps what it sent, up to a cap, so it can be sent again.
///
/// Every copy made with [`Replayable::replay`] sends the same bytes in the same order: first
/// the bytes already read (kept, not re-read), then the rest of the inner body, which the
/// copies share. Once more than `cap` bytes have gone by, the kept bytes are dropped and no new
/// copy can be made ([`replay`](Replayable::replay) returns `None`): a retry layer then simply
/// does not retry. A copy made before that and left behind returns [`BodyTooLarge`] if polled.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use towline_core::{ReplayBody, Replayable};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let body = ReplayBody::new(Full::new(Bytes::from_static(b"payload")), 1024);
/// let again = body.replay().unwrap();
/// assert_eq!(body.collect().await.unwrap().to_bytes(), "payload");
/// // The second attempt gets the same bytes, without reading the inner body twice.
/// assert_eq!(again.collect().await.unwrap().to_bytes(), "payload");
/// # }
/// ```
pub struct ReplayBody<B> {
    shared: Arc<Mutex<Shared<B>>>,
    /// How many kept chunks this copy has sent.
    position: usize,
    /// Whether this copy has sent the trailers (the end).
    done: bool,
}

struct Shared<B> {
    /// The part of the inner body no copy has read yet.
    rest: Option<Pin<Box<B>>>,
    /// Every chunk read so far, while under the cap.
    kept: Vec<Bytes>,
    kept_len: usize,
    /// How many chunks have been read from the inner body in all, kept or not.
    read_chunks: usize,
    cap: usize,
    over_cap: bool,
    trailers: Option<HeaderMap>,
    /// The inner body's error, for every copy that reaches it.
    failed: Option<String>,
    /// The inner body's size hint, before anything was read.
    size_hint: SizeHint,
    /// Copies waiting at the front while another copy polls the inner body: the inner body
    /// keeps only the last poller's waker, so the others are woken here when it moves on.
    waiting: Vec<Waker>,
}

impl<B> std::fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("ReplayBody")
            .field("kept", &shared.kept_len)
            .field("cap", &shared.cap)
            .field("over_cap", &shared.over_cap)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl<B: Body> ReplayBody<B> {
    /// Wraps `body`, keeping at most `cap` bytes of it for replays.
    pub fn new(body: B, cap: usize) -> Self {
        let size_hint = body.size_hint();
        let over_cap = size_hint.lower() > cap as u64;
        ReplayBody {
            shared: Arc::new(Mutex::new(Shared {
                rest: Some(Box::pin(body)),
                kept: Vec::new(),
                kept_len: 0,
                read_chunks: 0,
                cap,
                // A body that says it is longer than the cap is never kept.
                over_cap,
                trailers: None,
                failed: None,
                size_hint,
                waiting: Vec::new(),
            })),
            position: 0,
            done: false,
        }
    }

    /// Whether a replay is still possible (the body has not passed its cap).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::Full;
    /// use towline_core::ReplayBody;
    ///
    /// let small = ReplayBody::new(Full::new(Bytes::from_static(b"ok")), 16);
    /// assert!(small.can_replay());
    /// let big = ReplayBody::new(Full::new(Bytes::from(vec![0u8; 100])), 16);
    /// assert!(!big.can_replay());
    /// ```
    pub fn can_replay(&self) -> bool {
        !self.lock().over_cap
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared<B>> {
        // A panic while holding the lock leaves consistent data (every write is one step).
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<B: Body> Replayable for ReplayBody<B> {
    fn replay(&self) -> Option<Self> {
        let shared = self.lock();
        // Past the cap, or the inner body failed (a retry would fail the same way).
        if shared.over_cap || shared.failed.is_some() {
            return None;
        }
        drop(shared);
        Some(ReplayBody {
            shared: self.shared.clone(),
            position: 0,
            done: false,
        })
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let position = self.position;
        let shared = self.shared.clone();
        let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
        // Replay what was kept.
        if position < shared.kept.len() {
            self.position += 1;
            return Poll::Ready(Some(Ok(Frame::data(shared.kept[position].clone()))));
        }
        // Behind the others, with the kept bytes gone: this copy cannot continue.
        if position < shared.kept_position_end() {
            return Poll::Ready(Some(Err(Box::new(BodyTooLarge::new(shared.cap as u64)))));
        }
        if let Some(message) = &shared.failed {
            return Poll::Ready(Some(Err(message.clone().into())));
        }
        let Some(rest) = shared.rest.as_mut() else {
            self.done = true;
            return Poll::Ready(shared.trailers.clone().map(|t| Ok(Frame::trailers(t))));
        };
        let polled = rest.as_mut().poll_frame(cx);
        if polled.is_pending() {
            if !shared.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                shared.waiting.push(cx.waker().clone());
            }
            return Poll::Pending;
        }
        // The inner body moved on: every other waiting copy may now have something to send.
        for waker in shared.waiting.drain(..) {
            waker.wake();
        }
        match polled {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                shared.rest = None;
                self.done = true;
                Poll::Ready(shared.trailers.clone().map(|t| Ok(Frame::trailers(t))))
            }
            Poll::Ready(Some(Err(error))) => {
                let error: BoxError = error.into();
                shared.failed = Some(error.to_string());
                shared.rest = None;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    let chunk = data.copy_to_bytes(data.remaining());
                    shared.read_chunk(&chunk);
                    self.position += 1;
                    Poll::Ready(Some(Ok(Frame::data(chunk))))
                }
                Err(frame) => match frame.into_trailers() {
                    Ok(trailers) => {
                        shared.trailers = Some(trailers.clone());
                        shared.rest = None;
                        self.done = true;
                        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                    }
                    // A frame kind this version of http-body does not know: skip it.
                    Err(_) => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                },
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        if self.done {
            return true;
        }
        let shared = self.lock();
        self.position >= shared.kept_position_end()
            && shared.rest.is_none()
            && shared.trailers.is_none()
            && shared.failed.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            SizeHint::with_exact(0)
        } else if self.position == 0 {
            // Every copy sends the whole body.
            self.lock().size_hint
        } else {
            SizeHint::new()
        }
    }
}

impl<B> Shared<B> {
    /// The position of the copy that reads the inner body next.
    fn kept_position_end(&self) -> usize {
        self.read_chunks
    }

    /// Counts a chunk read from the inner body, and keeps it while under the cap.
    fn read_chunk(&mut self, chunk: &Bytes) {
        self.read_chunks += 1;
        if self.over_cap {
            return;
        }
        if self.kept_len.saturating_add(chunk.len()) <= self.cap {
            self.kept.push(chunk.clone());
            self.kept_len += chunk.len();
        } else {
            // Past the cap: no replay can happen any more, so nothing is kept.
            self.over_cap = true;
            self.kept = Vec::new();
            self.kept_len = 0;
        }
    }
}

#[cfg(test)]
mod tests;
