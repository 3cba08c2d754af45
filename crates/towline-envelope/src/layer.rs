//! [`ErrorBodyLayer`]: non-success responses (and in-band errors) become `Err(ApiError)`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::header::CONTENT_LENGTH;
use http::response::Parts;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use towline_core::{ApiError, BoxError};

use crate::decoder::{Builtins, Decoder, media_type};

/// The default cap on the body bytes read: 64 KiB.
///
/// Error bodies are small (the vendor examples are a few hundred bytes; a Google error with
/// details a few KiB); 64 KiB keeps every real one whole while bounding what a hostile or
/// broken server can make us hold. It is also hyper's default read buffer size.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// The most a body read reserves up front; the buffer grows with the bytes that arrive.
const INITIAL_BUFFER: usize = 8 * 1024;

/// Turns non-success responses into `Err` carrying the decoded [`ApiError`](towline_core::ApiError).
///
/// - A 4xx or 5xx response: its body is read, up to [`max_body`](ErrorBodyLayer::max_body)
///   bytes (the rest is dropped, unread, and the error marked truncated), decoded with the
///   [`Decoder`], and returned as `Err(Box<ApiError>)`. Retry, rate-limit and auth layers
///   above act on it; `towline_core::Error::api` gives it to the user.
/// - A 2xx response passes through untouched: no buffering, no allocation. Only when the
///   decoder's chosen format reports errors inside successes (`Decoder::only(Format::Open2b)`),
///   or when asked with [`inspect_success`](ErrorBodyLayer::inspect_success), are JSON success
///   bodies no longer than the cap read first, and handed back intact (the same bytes, then
///   the rest of the body) when they are not errors.
/// - Other statuses (1xx, 3xx) pass through.
///
/// ```
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use bytes::Bytes;
/// use tower::{BoxError, ServiceBuilder, ServiceExt};
/// use towline_core::{ApiErrorKind, ApiFormat, Error, ErrorKind};
/// use towline_envelope::ErrorBodyLayer;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let service = ServiceBuilder::new()
///     .layer(ErrorBodyLayer::new())
///     .service_fn(|_req: Request<()>| async {
///         let body = r#"{"code": 5, "message": "Item not found", "details": []}"#;
///         Ok::<_, BoxError>(
///             Response::builder()
///                 .status(StatusCode::NOT_FOUND)
///                 .body(Full::new(Bytes::from(body)))
///                 .unwrap(),
///         )
///     });
///
/// let err = Error::from(service.oneshot(Request::new(())).await.unwrap_err());
/// assert_eq!(err.kind(), ErrorKind::Api);
/// let api = err.api().unwrap();
/// assert_eq!(api.format, ApiFormat::Attraqt);
/// assert_eq!(api.kind, ApiErrorKind::NotFound);
/// assert_eq!(api.message.as_deref(), Some("Item not found"));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ErrorBodyLayer {
    config: Settings,
}

/// The layer's settings, copied into each service and each response future.
///
/// Services are cloned and futures made on every call (`service.clone().oneshot(..)`), so an
/// `Arc` here would cost two atomic read-modify-writes per copy. A decoder of built-in formats
/// with default hints (every preset's) is just its `Builtins`, so those settings are plain
/// values; only a decoder with custom formats or hints is shared. 16 bytes either way.
#[derive(Clone)]
enum Settings {
    Inline {
        builtins: Builtins,
        inspect_success: bool,
        max_body: usize,
    },
    Shared(Arc<Config>),
}

/// The settings of a decoder that cannot be inline.
#[derive(Clone, Debug)]
struct Config {
    decoder: Decoder,
    max_body: usize,
    inspect_success: bool,
}

impl Settings {
    fn new(decoder: Decoder) -> Self {
        let inspect_success = decoder.has_in_band_errors();
        match decoder.builtins_only() {
            Some(builtins) => Settings::Inline {
                builtins,
                inspect_success,
                max_body: DEFAULT_MAX_BODY,
            },
            None => Settings::Shared(Arc::new(Config {
                decoder,
                max_body: DEFAULT_MAX_BODY,
                inspect_success,
            })),
        }
    }

    fn max_body(&self) -> usize {
        match self {
            Settings::Inline { max_body, .. } => *max_body,
            Settings::Shared(config) => config.max_body,
        }
    }

    fn inspect_success(&self) -> bool {
        match self {
            Settings::Inline {
                inspect_success, ..
            } => *inspect_success,
            Settings::Shared(config) => config.inspect_success,
        }
    }

    fn decode(&self, parts: &Parts, body: Bytes) -> Option<ApiError> {
        match self {
            // Rebuilding a built-in decoder allocates nothing.
            Settings::Inline { builtins, .. } => {
                Decoder::from_builtins(*builtins).decode(parts.status, &parts.headers, body)
            }
            Settings::Shared(config) => config.decoder.decode(parts.status, &parts.headers, body),
        }
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let decoder = match self {
            Settings::Inline { builtins, .. } => &Decoder::from_builtins(*builtins),
            Settings::Shared(config) => &config.decoder,
        };
        f.debug_struct("Config")
            .field("decoder", decoder)
            .field("max_body", &self.max_body())
            .field("inspect_success", &self.inspect_success())
            .finish()
    }
}

impl Default for ErrorBodyLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl ErrorBodyLayer {
    /// Auto-detects every built-in format; reads at most [`DEFAULT_MAX_BODY`] bytes; does not
    /// inspect success bodies.
    pub fn new() -> Self {
        Self::with_decoder(Decoder::new())
    }

    /// Uses `decoder`. Success bodies are inspected only if one of its formats has in-band
    /// errors ([`Decoder::has_in_band_errors`]).
    ///
    /// ```
    /// use towline_envelope::{Decoder, ErrorBodyLayer, Format};
    ///
    /// // IXON never reports errors in a 200: successes pass untouched.
    /// let layer = ErrorBodyLayer::with_decoder(Decoder::only(Format::Ixon));
    /// # let _ = layer;
    /// ```
    pub fn with_decoder(decoder: Decoder) -> Self {
        ErrorBodyLayer {
            config: Settings::new(decoder),
        }
    }

    /// Reads at most `bytes` of a body. Past the cap an error is still produced, from the
    /// prefix, with `body_truncated` set.
    pub fn max_body(mut self, bytes: usize) -> Self {
        match &mut self.config {
            Settings::Inline { max_body, .. } => *max_body = bytes,
            // Builders run before the layer is shared; clone the config if it already is.
            Settings::Shared(config) => Arc::make_mut(config).max_body = bytes,
        }
        self
    }

    /// Whether to inspect JSON success bodies (up to the cap) for in-band errors. On by default
    /// only for a decoder whose chosen format needs it ([`Decoder::has_in_band_errors`]).
    pub fn inspect_success(mut self, inspect: bool) -> Self {
        match &mut self.config {
            Settings::Inline {
                inspect_success, ..
            } => *inspect_success = inspect,
            Settings::Shared(config) => Arc::make_mut(config).inspect_success = inspect,
        }
        self
    }
}

impl<S> Layer<S> for ErrorBodyLayer {
    type Service = ErrorBody<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorBody {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`ErrorBodyLayer`]. See the layer for an example.
#[derive(Clone, Debug)]
pub struct ErrorBody<S> {
    inner: S,
    config: Settings,
}

impl<S> ErrorBody<S> {
    towline_core::inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ErrorBody<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    ResBody: Body,
    ResBody::Data: From<Bytes>,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        ResponseFuture {
            state: State::Calling {
                future: self.inner.call(request),
                config: self.config.clone(),
            },
        }
    }
}

pin_project! {
    /// The response future of [`ErrorBody`].
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Calling { .. } => "calling",
            State::Reading { is_error: true, .. } => "reading an error body",
            State::Reading { .. } => "inspecting a success body",
            State::Done => "done",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        // Waiting for the response head. The settings live in the variants, not beside the
        // state, so that the state's tag takes a spare value of theirs: the future is no larger
        // than it was with an `Arc`.
        Calling {
            #[pin]
            future: F,
            config: Settings,
        },
        // Reading a body into `buffer`, up to the cap: an error body, or a success body
        // inspected for an in-band error. Boxed so the body can be handed back to the caller
        // afterwards; only these (rare, already buffering) paths pay for it.
        Reading {
            parts: Option<Parts>,
            body: Option<Pin<Box<B>>>,
            buffer: Vec<u8>,
            trailers: Option<HeaderMap>,
            is_error: bool,
            config: Settings,
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
                StateProj::Calling { future, config } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
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
                    // Sized from the body's own hint, never from what a header claims beyond
                    // a small start: the buffer grows as bytes really arrive.
                    let capacity = usize::try_from(body.size_hint().lower())
                        .unwrap_or(usize::MAX)
                        .min(config.max_body())
                        .min(INITIAL_BUFFER);
                    // A copy (for shared settings, a reference count) on the buffering path only.
                    let config = config.clone();
                    state.set(State::Reading {
                        parts: Some(parts),
                        body: Some(Box::pin(body)),
                        buffer: Vec::with_capacity(capacity),
                        trailers: None,
                        is_error,
                        config,
                    });
                }
                StateProj::Reading {
                    parts,
                    body,
                    buffer,
                    trailers,
                    is_error,
                    config,
                } => {
                    let max = config.max_body();
                    let mut truncated = false;
                    let mut failure: Option<BoxError> = None;
                    // The frame that took a success body past the cap: replayed as it is,
                    // never copied.
                    let mut overflow: Option<B::Data> = None;
                    // Read until the end, the cap, or a failure.
                    while let Some(reading) = body.as_mut() {
                        match ready!(reading.as_mut().poll_frame(cx)) {
                            None => *body = None,
                            Some(Ok(frame)) => match frame.into_data() {
                                Ok(mut data) => {
                                    let len = data.remaining();
                                    if *is_error {
                                        // Keep at most the cap; the rest is dropped.
                                        let room = max.saturating_sub(buffer.len());
                                        copy_into(buffer, &mut data, room);
                                        truncated = len > room;
                                    } else if buffer.len() + len > max {
                                        // Too long to be an in-band error: stop inspecting,
                                        // and hand this frame back untouched.
                                        overflow = Some(data);
                                        truncated = true;
                                    } else {
                                        copy_into(buffer, &mut data, len);
                                    }
                                    if truncated {
                                        break;
                                    }
                                }
                                Err(frame) => {
                                    if let Ok(map) = frame.into_trailers() {
                                        *trailers = Some(map);
                                    }
                                }
                            },
                            Some(Err(error)) => {
                                failure = Some(error.into());
                                *body = None;
                            }
                        }
                    }
                    let Some(parts) = parts.take() else {
                        return Poll::Ready(Err("ErrorBody polled after completion".into()));
                    };
                    let is_error = *is_error;
                    let bytes = Bytes::from(std::mem::take(buffer));
                    if is_error {
                        // Dropping the body here stops reading past the cap.
                        *body = None;
                        let decoded = config.decode(&parts, bytes);
                        state.set(State::Done);
                        return Poll::Ready(Err(match decoded {
                            Some(mut err) => {
                                // A body that broke off: what arrived is decoded, and flagged.
                                err.body_truncated = truncated || failure.is_some();
                                Box::new(err)
                            }
                            None => "an error status the decoder declined".into(),
                        }));
                    }
                    let complete = !truncated && failure.is_none();
                    let in_band = complete
                        .then(|| config.decode(&parts, bytes.clone()))
                        .flatten();
                    if let Some(err) = in_band {
                        state.set(State::Done);
                        return Poll::Ready(Err(Box::new(err)));
                    }
                    // Not an error: hand back the same bytes, then the rest (or the failure).
                    let replayed = ResponseBody::replayed(
                        bytes,
                        overflow,
                        body.take(),
                        failure,
                        trailers.take(),
                    );
                    state.set(State::Done);
                    return Poll::Ready(Ok(Response::from_parts(parts, replayed)));
                }
                StateProj::Done => {
                    return Poll::Ready(Err("ErrorBody polled after completion".into()));
                }
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

pin_project! {
    /// The response body of [`ErrorBody`]: the inner body itself on the success path, or, when
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
    fn passthrough(body: B) -> Self {
        ResponseBody {
            inner: Inner::Passthrough { body },
        }
    }

    fn replayed(
        prefix: Bytes,
        overflow: Option<B::Data>,
        rest: Option<Pin<Box<B>>>,
        failure: Option<BoxError>,
        trailers: Option<HeaderMap>,
    ) -> Self {
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

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use http_body_util::Full;
    use serde_json::Value;
    use towline_core::HintReader;

    use super::*;
    use crate::{ErrorFormat, Format};

    struct Acme;

    impl ErrorFormat for Acme {
        fn name(&self) -> &'static str {
            "acme"
        }

        fn decode(&self, _: StatusCode, _: &Value) -> Option<ApiError> {
            None
        }
    }

    fn is_inline(layer: &ErrorBodyLayer) -> bool {
        matches!(layer.config, Settings::Inline { .. })
    }

    #[test]
    fn built_in_decoders_are_carried_inline_others_shared() {
        assert!(is_inline(&ErrorBodyLayer::new()));
        assert!(is_inline(
            &ErrorBodyLayer::new().max_body(10).inspect_success(true)
        ));
        let open2b = ErrorBodyLayer::with_decoder(Decoder::only(Format::Open2b));
        assert!(is_inline(&open2b) && open2b.config.inspect_success());
        assert!(!is_inline(&ErrorBodyLayer::with_decoder(
            Decoder::new().with_format(Acme)
        )));
        let hints = ErrorBodyLayer::with_decoder(Decoder::new().hints(HintReader::new()));
        assert!(!is_inline(&hints));
        let hints = hints.max_body(10).inspect_success(true);
        assert_eq!(hints.config.max_body(), 10);
        assert!(hints.config.inspect_success());
    }

    /// A response future that is just its size.
    struct Padded<const WORDS: usize>([u64; WORDS]);

    impl<const WORDS: usize> Future for Padded<WORDS> {
        type Output = Result<Response<Full<Bytes>>, BoxError>;

        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
            Poll::Pending
        }
    }

    #[test]
    fn the_future_is_as_small_as_with_an_arc() {
        // Every layer above moves this future: 16 bytes over the inner one, as with an `Arc`
        // (the state's tag takes a spare value of the settings).
        type Fut<const WORDS: usize> = ResponseFuture<Padded<WORDS>, Full<Bytes>>;
        assert_eq!(size_of::<Settings>(), 16);
        assert_eq!(size_of::<Fut<33>>(), 33 * 8 + 16);
        assert_eq!(size_of::<Fut<100>>(), 100 * 8 + 16);
    }
}
