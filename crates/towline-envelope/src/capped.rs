//! [`CappedRead`]: a body read into one buffer, up to a cap.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::Body;
use towline_core::BoxError;

/// The most a read reserves up front; the buffer grows with the bytes that arrive.
const INITIAL_BUFFER: usize = 8 * 1024;

/// What to do with the data frame that takes a body past the cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PastCap {
    /// Keep the part that fits and drop the rest: an error body, whose prefix is decoded.
    Cut,
    /// Keep none of it and hand the frame back whole, the body unread after it: a success body
    /// too long to be an in-band error, which goes back to the caller as it came.
    HandBack,
}

/// How a [`CappedRead`] ended.
#[derive(Debug)]
pub(crate) enum End<D> {
    /// The body ended.
    Complete,
    /// The body failed after the bytes read.
    Failed(BoxError),
    /// The body went past the cap; with [`PastCap::HandBack`], the frame that did, whole.
    Capped(Option<D>),
}

impl<D> End<D> {
    /// Whether the bytes read are the whole body.
    pub(crate) fn is_complete(&self) -> bool {
        matches!(self, End::Complete)
    }
}

/// A body being read into one buffer, up to a cap, with its trailers kept aside.
///
/// Boxed so that what is left of the body can be handed back to the caller afterwards (a
/// pinned body could not move); only the rare, already buffering paths pay for it.
pub(crate) struct CappedRead<B> {
    body: Pin<Box<B>>,
    buffer: Vec<u8>,
    trailers: Option<HeaderMap>,
    cap: usize,
}

impl<B: Body> CappedRead<B> {
    pub(crate) fn new(body: B, cap: usize) -> Self {
        // Sized from the body's own hint, never from what a header claims, and no more than a
        // small start: the buffer grows as bytes really arrive.
        let capacity = usize::try_from(body.size_hint().lower())
            .unwrap_or(usize::MAX)
            .min(cap)
            .min(INITIAL_BUFFER);
        CappedRead {
            body: Box::pin(body),
            buffer: Vec::with_capacity(capacity),
            trailers: None,
            cap,
        }
    }

    /// Reads until the end of the body, a failure, or the cap. Frames that are neither data
    /// nor trailers are dropped. Not to be polled again once it returned `Ready`.
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        past_cap: PastCap,
    ) -> Poll<End<B::Data>>
    where
        B::Error: Into<BoxError>,
    {
        loop {
            let frame = match ready!(self.body.as_mut().poll_frame(cx)) {
                None => return Poll::Ready(End::Complete),
                Some(Err(error)) => return Poll::Ready(End::Failed(error.into())),
                Some(Ok(frame)) => frame,
            };
            let mut data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        self.trailers = Some(trailers);
                    }
                    continue;
                }
            };
            let len = data.remaining();
            let room = self.cap.saturating_sub(self.buffer.len());
            if len <= room {
                copy_into(&mut self.buffer, &mut data, len);
                continue;
            }
            return Poll::Ready(End::Capped(match past_cap {
                PastCap::Cut => {
                    copy_into(&mut self.buffer, &mut data, room);
                    None
                }
                // Replayed as it is, never copied.
                PastCap::HandBack => Some(data),
            }));
        }
    }

    /// The bytes read; the body (whatever is left of it) and its trailers are dropped.
    pub(crate) fn into_bytes(self) -> Bytes {
        Bytes::from(self.buffer)
    }

    /// The bytes read, the trailers, and the body, to go on reading it.
    pub(crate) fn into_parts(self) -> (Bytes, Option<HeaderMap>, Pin<Box<B>>) {
        (Bytes::from(self.buffer), self.trailers, self.body)
    }
}

/// Appends up to `limit` bytes of `data` to `buffer`.
fn copy_into(buffer: &mut Vec<u8>, data: &mut impl Buf, limit: usize) {
    let mut left = limit.min(data.remaining());
    while left > 0 {
        let chunk = data.chunk();
        let n = chunk.len().min(left);
        buffer.extend_from_slice(&chunk[..n]);
        data.advance(n);
        left -= n;
    }
}
