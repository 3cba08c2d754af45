//! [`ResponseFuture`]: the response head, then (for an error or an inspected success) its body.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::response::Parts;
use http::{HeaderMap, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use towline_core::{AttemptLimit, BoxError};

use crate::body::ResponseBody;
use crate::capped::{CappedRead, PastCap};
use crate::cutoff::Cutoff;
use crate::decoder::media_type;
use crate::settings::Settings;

pin_project! {
    /// The response future of [`ErrorBody`](crate::ErrorBody).
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

impl<F, B> ResponseFuture<F, B> {
    /// `limit` is the attempt's limit a timeout layer above set in the call's context.
    pub(crate) fn new(future: F, config: Settings, limit: Option<AttemptLimit>) -> Self {
        ResponseFuture {
            state: State::Calling {
                future,
                config,
                limit,
            },
        }
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Calling { .. } => "calling",
            State::ReadingError { .. } => "reading an error body",
            State::Inspecting { .. } => "inspecting a success body",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

pin_project! {
    #[project = StateProj]
    #[project_replace = StateProjReplace]
    enum State<F, B> {
        // Waiting for the response head. The settings live in the variants, not beside the
        // state, so that the state's tag can take a spare value of theirs.
        Calling {
            #[pin]
            future: F,
            config: Settings,
            limit: Option<AttemptLimit>,
        },
        // Reading an error body, up to the cap, to decode it, until the attempt's limit.
        ReadingError {
            read: CappedRead<B>,
            parts: Parts,
            config: Settings,
            cutoff: Cutoff,
        },
        // Reading a success body, up to the cap, to look for an in-band error in it, until
        // the attempt's limit.
        Inspecting {
            read: CappedRead<B>,
            parts: Parts,
            config: Settings,
            cutoff: Cutoff,
        },
        Done,
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    B: Body,
    B::Data: From<Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Calling { future, .. } => {
                    let result = ready!(future.poll(cx));
                    let StateProjReplace::Calling { config, limit, .. } =
                        state.as_mut().project_replace(State::Done)
                    else {
                        unreachable!("the state was Calling")
                    };
                    let response = result.map_err(Into::into)?;
                    let status = response.status();
                    let is_error = status.is_client_error() || status.is_server_error();
                    let inspect = !is_error
                        && status.is_success()
                        && config.inspect_success()
                        && !is_empty(response.body())
                        && is_small_json(response.headers(), config.max_body());
                    if !is_error && !inspect {
                        // The success path: no buffering, no allocation.
                        return Poll::Ready(Ok(response.map(ResponseBody::passthrough)));
                    }
                    let (parts, body) = response.into_parts();
                    let read = CappedRead::new(body, config.max_body());
                    let cutoff = Cutoff::new(limit);
                    state.set(if is_error {
                        State::ReadingError {
                            read,
                            parts,
                            config,
                            cutoff,
                        }
                    } else {
                        State::Inspecting {
                            read,
                            parts,
                            config,
                            cutoff,
                        }
                    });
                }
                StateProj::ReadingError { read, cutoff, .. } => {
                    let Poll::Ready(end) = read.poll_read(cx, PastCap::Cut) else {
                        // The read is dropped with the future: the rest of the body is unread.
                        return cutoff.poll_expired(cx).map(Err);
                    };
                    let StateProjReplace::ReadingError {
                        read,
                        parts,
                        config,
                        ..
                    } = state.as_mut().project_replace(State::Done)
                    else {
                        unreachable!("the state was ReadingError")
                    };
                    // Dropping the body here stops reading past the cap.
                    let mut err = config.decode_error(&parts, read.into_bytes());
                    // A body that broke off: what arrived is decoded, and flagged.
                    err.body_truncated = !end.is_complete();
                    return Poll::Ready(Err(Box::new(err)));
                }
                StateProj::Inspecting { read, cutoff, .. } => {
                    let Poll::Ready(end) = read.poll_read(cx, PastCap::HandBack) else {
                        return cutoff.poll_expired(cx).map(Err);
                    };
                    let StateProjReplace::Inspecting {
                        read,
                        parts,
                        config,
                        ..
                    } = state.as_mut().project_replace(State::Done)
                    else {
                        unreachable!("the state was Inspecting")
                    };
                    let (bytes, trailers, body) = read.into_parts();
                    if end.is_complete()
                        && let Some(err) = config.decode_in_band(&parts, bytes.clone())
                    {
                        return Poll::Ready(Err(Box::new(err)));
                    }
                    // Not an error: hand back the same bytes, then the rest (or the failure).
                    let body = ResponseBody::replayed(bytes, trailers, body, end);
                    return Poll::Ready(Ok(Response::from_parts(parts, body)));
                }
                StateProj::Done => panic!("ErrorBody's ResponseFuture polled after completion"),
            }
        }
    }
}

/// Whether a success response is JSON (Open2b also sends `text/javascript`) and, if it says,
/// no longer than the cap: only such bodies are worth inspecting.
fn is_small_json(headers: &HeaderMap, max: usize) -> bool {
    let Some(essence) = media_type(headers) else {
        return false;
    };
    let json = essence.eq_ignore_ascii_case("application/json")
        || essence.eq_ignore_ascii_case("text/javascript")
        || essence
            .rsplit_once('+')
            .is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json"));
    json && declared_length(headers).is_none_or(|len| len <= max as u64)
}

/// The `Content-Length`, if there is exactly one and it is plain digits.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let value = values.next()?.as_bytes();
    if values.next().is_some() || value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// A body known to be empty (HEAD, 204, `Content-Length: 0`): nothing to inspect.
fn is_empty(body: &impl Body) -> bool {
    body.is_end_stream() || body.size_hint().exact() == Some(0)
}
