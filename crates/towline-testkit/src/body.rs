//! The response body: a small state machine that streams fixed bytes or a
//! repeating pattern, optionally paced, stalled or cut by a reset.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::Sleep;

use crate::reply::{BodySource, Fault, Reply};

/// Size of the shared pattern buffer and of each pattern frame.
pub(crate) const PATTERN_LEN: usize = 64 * 1024;

/// One buffer for every huge or endless body: frames are cheap slices of it.
/// Byte `i` is `i % 256`; `PATTERN_LEN` is a multiple of 256, so slicing at
/// `offset % PATTERN_LEN` keeps the pattern continuous across frames.
static PATTERN: LazyLock<Bytes> =
    LazyLock::new(|| (0..PATTERN_LEN).map(|i| (i % 256) as u8).collect());

/// What happens once the body has sent everything it is going to send.
#[derive(Debug)]
enum AfterLast {
    /// End the body normally.
    End,
    /// Stay pending forever (the waker is never used: nothing will change).
    Stall,
    /// Ask the connection task to reset the connection, then stay pending.
    Reset(Option<Arc<Notify>>),
}

/// The body of a scripted reply.
#[derive(Debug)]
pub(crate) struct ReplyBody {
    source: BodySource,
    /// Bytes sent so far.
    pos: u64,
    /// Bytes to send before `after` (`u64::MAX` for "forever").
    end: u64,
    after: AfterLast,
    /// Pause `.1` after every `.0` bytes (pacing from `slow_body`).
    pace: Option<(u64, Duration)>,
    /// A pause in progress. Boxed so the body stays `Unpin`.
    sleep: Option<Pin<Box<Sleep>>>,
    hint: SizeHint,
}

impl ReplyBody {
    /// Builds the body for `reply`; `reset` is the connection's reset trigger.
    pub(crate) fn new(reply: &Reply, reset: Arc<Notify>) -> Self {
        let total = match &reply.body {
            BodySource::Fixed(b) => Some(b.len() as u64),
            BodySource::Pattern(len) => Some(*len),
            BodySource::Endless => None,
        };
        let full = total.unwrap_or(u64::MAX);
        let (end, after) = match reply.fault {
            // Resets before the head never build a body; treat as a normal one.
            Fault::None | Fault::ResetBeforeHead => (full, AfterLast::End),
            Fault::StallAfter(n) => (n.min(full), AfterLast::Stall),
            Fault::ResetAfter(n) => (n.min(full), AfterLast::Reset(Some(reset))),
        };
        let hint = match (total, &after) {
            // The client must be told there is more to come than what is sent:
            // a Content-Length bigger than `end`, or else chunked encoding.
            (Some(t), AfterLast::End) => SizeHint::with_exact(t),
            (Some(t), _) if t > end => SizeHint::with_exact(t),
            _ => SizeHint::default(),
        };
        let pace = reply.slow.map(|(chunks, interval)| {
            let piece = match total {
                Some(t) => t.div_ceil(chunks as u64).max(1),
                None => PATTERN_LEN as u64,
            };
            (piece, interval)
        });
        Self {
            source: reply.body.clone(),
            pos: 0,
            end,
            after,
            pace,
            sleep: None,
            hint,
        }
    }

    /// The next frame: bytes `self.pos..upto`, possibly fewer.
    fn slice(&self, upto: u64) -> Bytes {
        match &self.source {
            BodySource::Fixed(b) => b.slice(self.pos as usize..upto as usize),
            BodySource::Pattern(_) | BodySource::Endless => {
                let start = (self.pos % PATTERN_LEN as u64) as usize;
                let len = (upto - self.pos).min((PATTERN_LEN - start) as u64) as usize;
                PATTERN.slice(start..start + len)
            }
        }
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if let Some(sleep) = &mut this.sleep {
            ready!(sleep.as_mut().poll(cx));
            this.sleep = None;
        }
        if this.pos >= this.end {
            return match &mut this.after {
                AfterLast::End => Poll::Ready(None),
                AfterLast::Stall => Poll::Pending,
                AfterLast::Reset(trigger) => {
                    // `notify_one` stores a permit, so the connection task
                    // sees it even if it is not waiting right now.
                    if let Some(trigger) = trigger.take() {
                        trigger.notify_one();
                    }
                    Poll::Pending
                }
            };
        }
        let mut upto = this.end;
        if let Some((piece, _)) = this.pace {
            upto = upto.min((this.pos / piece + 1).saturating_mul(piece));
        }
        let frame = this.slice(upto);
        this.pos += frame.len() as u64;
        if let Some((piece, interval)) = this.pace
            && this.pos.is_multiple_of(piece)
            && this.pos < this.end
        {
            this.sleep = Some(Box::pin(tokio::time::sleep(interval)));
        }
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.pos >= self.end && matches!(self.after, AfterLast::End) && self.sleep.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn body(reply: &Reply) -> ReplyBody {
        ReplyBody::new(reply, Arc::new(Notify::new()))
    }

    #[tokio::test]
    async fn pattern_is_continuous_and_exact() {
        let len = 3 * PATTERN_LEN as u64 + 1000;
        let b = body(&Reply::huge_body(len));
        assert_eq!(b.size_hint().exact(), Some(len));
        let all = b.collect().await.unwrap().to_bytes();
        assert_eq!(all.len() as u64, len);
        assert!(all.iter().enumerate().all(|(i, &x)| x == (i % 256) as u8));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_body_pauses_between_pieces() {
        let start = tokio::time::Instant::now();
        let b = body(
            &Reply::ok()
                .body("abcdefghij")
                .slow_body(5, Duration::from_secs(1)),
        );
        let all = b.collect().await.unwrap().to_bytes();
        assert_eq!(&all[..], b"abcdefghij");
        // Five pieces, four pauses between them.
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }

    #[test]
    fn faults_announce_more_than_they_send() {
        let stall = body(&Reply::ok().body("0123456789").stall_body_after(4));
        assert_eq!(stall.size_hint().exact(), Some(10));
        assert!(!stall.is_end_stream());
        // Nothing left to announce beyond `n`: fall back to chunked.
        let stall_all = body(&Reply::ok().body("0123").stall_body_after(4));
        assert_eq!(stall_all.size_hint().exact(), None);
        let reset_empty = body(&Reply::ok().reset_after_head());
        assert_eq!(reset_empty.size_hint().exact(), None);
        assert!(!reset_empty.is_end_stream());
        assert!(body(&Reply::ok()).is_end_stream());
    }
}
