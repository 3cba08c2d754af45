//! [`ResponseBody`]: the inner body itself, or the bytes the layer read followed by the rest.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use towline_core::BoxError;

use crate::capped::End;

pin_project! {
    /// The response body of [`ErrorBody`](crate::ErrorBody): the inner body itself on the success path, or, when
    /// a success body was inspected, the bytes read followed by the rest of the body.
    pub struct ResponseBody<B: Body> {
        #[pin]
        inner: Inner<B>,
    }
}

impl<B: Body> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

pin_project! {
    #[project = InnerProj]
    enum Inner<B: Body> {
        Passthrough {
            #[pin]
            body: B,
        },
        // Boxed: every response through the layer has this type, and a body this size
        // (about 180 bytes) would be copied with each move of each successful response.
        Replayed {
            replayed: Box<Replayed<B>>,
        },
    }
}

/// What a [`ResponseBody`] sends after the layer read (part of) the body: the bytes read, the
/// rest of the body, then its trailers.
struct Replayed<B: Body> {
    prefix: Option<Bytes>,
    overflow: Option<B::Data>,
    rest: Option<Pin<Box<B>>>,
    failure: Option<BoxError>,
    trailers: Option<HeaderMap>,
}

impl<B: Body> ResponseBody<B> {
    pub(crate) fn passthrough(body: B) -> Self {
        ResponseBody {
            inner: Inner::Passthrough { body },
        }
    }

    /// The bytes a [`CappedRead`](crate::capped::CappedRead) took, then the rest of `body` as
    /// `end` left it (the frame that went past the cap and the unread rest, or the failure),
    /// then the trailers.
    pub(crate) fn replayed(
        prefix: Bytes,
        trailers: Option<HeaderMap>,
        body: Pin<Box<B>>,
        end: End<B::Data>,
    ) -> Self {
        let (overflow, rest, failure) = match end {
            // The body is over: dropped now rather than polled again.
            End::Complete => (None, None, None),
            End::Failed(failure) => (None, None, Some(failure)),
            End::Capped(overflow) => (overflow, Some(body), None),
        };
        ResponseBody {
            inner: Inner::Replayed {
                replayed: Box::new(Replayed {
                    prefix: (!prefix.is_empty()).then_some(prefix),
                    overflow,
                    rest,
                    failure,
                    trailers,
                }),
            },
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Data: From<Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().inner.project() {
            InnerProj::Passthrough { body } => body
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(Into::into))),
            InnerProj::Replayed { replayed } => {
                let Replayed {
                    prefix,
                    overflow,
                    rest,
                    failure,
                    trailers,
                } = &mut **replayed;
                if let Some(prefix) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(prefix.into()))));
                }
                if let Some(data) = overflow.take() {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                if let Some(failure) = failure.take() {
                    return Poll::Ready(Some(Err(failure)));
                }
                if let Some(body) = rest.as_mut() {
                    match ready!(body.as_mut().poll_frame(cx)) {
                        Some(frame) => return Poll::Ready(Some(frame.map_err(Into::into))),
                        None => *rest = None,
                    }
                }
                Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Passthrough { body } => body.is_end_stream(),
            Inner::Replayed { replayed } => {
                let Replayed {
                    prefix,
                    overflow,
                    rest,
                    failure,
                    trailers,
                } = &**replayed;
                prefix.is_none()
                    && overflow.is_none()
                    && failure.is_none()
                    && rest.as_ref().is_none_or(|b| b.is_end_stream())
                    && trailers.is_none()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Passthrough { body } => body.size_hint(),
            Inner::Replayed { replayed } => {
                let Replayed {
                    prefix,
                    overflow,
                    rest,
                    ..
                } = &**replayed;
                let prefix_len = prefix.as_ref().map_or(0, |p| p.len() as u64)
                    + overflow.as_ref().map_or(0, |d| d.remaining() as u64);
                let rest = rest
                    .as_ref()
                    .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint());
                // A fresh hint has no upper bound, so setting the lower one first cannot panic.
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(prefix_len));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(prefix_len));
                }
                hint
            }
        }
    }
}
