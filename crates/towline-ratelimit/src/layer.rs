//! [`RateLimitLayer`], its service and its response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{HeaderMap, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};
use tower::{Layer, Service};
use towline_core::{
    ApiError, BoxError, Deadline, HintReader, RateLimitReason, RateLimited, RetryHint,
};

use crate::store::{GateStore, InMemoryStore};

/// The default longest wait at a closed gate: 60 s, the same as the retry layer's longest
/// server wait. A longer one (IXON keeps a tripped limit for 10 minutes) fails at once with
/// [`RateLimited`] carrying the instant, rather than holding the call silently.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

/// The default spread of released waiters: up to 100 ms after the gate opens, so that a crowd
/// held by one 429 does not hit the server in the same millisecond.
pub const DEFAULT_RELEASE_SPREAD: Duration = Duration::from_millis(100);

/// A client-side quota: at most `calls` calls per `per`, per key.
///
/// ```
/// use std::time::Duration;
/// use towline_ratelimit::Quota;
///
/// // Open2b: 1000 calls every 5 minutes per key.
/// let quota = Quota::new(1000, Duration::from_secs(300));
/// # let _ = quota;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    calls: u32,
    per: Duration,
}

impl Quota {
    /// `calls` calls (at least 1) per `per`.
    pub fn new(calls: u32, per: Duration) -> Self {
        Quota {
            calls: calls.max(1),
            per,
        }
    }
}

type KeyFn = dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync;

/// The configuration a layer's services share.
#[derive(Clone)]
struct Config {
    store: Arc<dyn GateStore>,
    hints: HintReader,
    max_wait: Duration,
    spread: Duration,
    quota: Option<Quota>,
    key: Option<Arc<KeyFn>>,
}

/// Holds every request to a key while the server said to wait, and paces calls to a quota.
///
/// When a response (or a decoded [`ApiError`]) with status 429 or 503 carries a wait hint
/// (`Retry-After`, `X-Wait-Seconds`, `RateLimit-Reset`, `X-RateLimit-Reset`, or your header),
/// the gate for its key closes until the hinted instant, for every clone of the layer. Requests
/// to that key wait, without polling, until it opens (released over a small spread), or fail
/// at once with [`RateLimited`] if the wait is longer than [`max_wait`](Self::max_wait) or ends
/// past the call's [`Deadline`]. Requests to other keys are not held.
///
/// The key is the request's authority (`host:port`), or what [`key_by`](Self::key_by) says.
/// One layer value is one domain of gates: its clones share them.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Empty;
/// use tower::{BoxError, Layer, ServiceExt, service_fn};
/// use towline_ratelimit::RateLimitLayer;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let layer = RateLimitLayer::new().spread(Duration::ZERO);
/// let upstream = service_fn(|_req: Request<()>| async {
///     Ok::<_, BoxError>(
///         Response::builder()
///             .status(StatusCode::TOO_MANY_REQUESTS)
///             .header("retry-after", "5")
///             .body(Empty::<Bytes>::new())
///             .unwrap(),
///     )
/// });
/// let service = layer.layer(upstream);
///
/// // The first call gets the 429 and closes the gate for api.example ...
/// let first = service.clone().oneshot(Request::get("http://api.example/a").body(()).unwrap()).await.unwrap();
/// assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
/// // ... so the next one waits the 5 seconds before it is sent.
/// let start = tokio::time::Instant::now();
/// service.oneshot(Request::get("http://api.example/b").body(()).unwrap()).await.unwrap();
/// assert_eq!(start.elapsed(), Duration::from_secs(5));
/// # }
/// ```
#[derive(Clone)]
pub struct RateLimitLayer {
    config: Arc<Config>,
}

impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("max_wait", &self.config.max_wait)
            .field("spread", &self.config.spread)
            .field("quota", &self.config.quota)
            .finish_non_exhaustive()
    }
}

impl Default for RateLimitLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimitLayer {
    /// Gates per authority in memory, the four standard hint headers, [`DEFAULT_MAX_WAIT`],
    /// [`DEFAULT_RELEASE_SPREAD`], no quota.
    pub fn new() -> Self {
        RateLimitLayer {
            config: Arc::new(Config {
                store: Arc::new(InMemoryStore::default()),
                hints: HintReader::new(),
                max_wait: DEFAULT_MAX_WAIT,
                spread: DEFAULT_RELEASE_SPREAD,
                quota: None,
                key: None,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        // Configuring a layer that was already cloned gives this value its own configuration
        // (and, unless `store` is called, the same gates).
        Arc::make_mut(&mut self.config)
    }

    /// The longest wait at a closed gate (or for a quota slot); a longer one fails at once.
    pub fn max_wait(mut self, limit: Duration) -> Self {
        self.config_mut().max_wait = limit;
        self
    }

    /// Spreads released waiters uniformly over `spread` after the gate opens (zero: all at once).
    pub fn spread(mut self, spread: Duration) -> Self {
        self.config_mut().spread = spread;
        self
    }

    /// Reads wait hints with `hints` (e.g. a vendor's own header).
    pub fn hints(mut self, hints: HintReader) -> Self {
        self.config_mut().hints = hints;
        self
    }

    /// Paces calls to each key so that `quota` is never exceeded.
    pub fn quota(mut self, quota: Quota) -> Self {
        self.config_mut().quota = Some(quota);
        self
    }

    /// Keeps gates and quotas in `store` (shared by many replicas, say).
    pub fn store(mut self, store: impl GateStore) -> Self {
        self.config_mut().store = Arc::new(store);
        self
    }

    /// Keys requests by what `key` returns (an API key, a tenant); `None` is not gated.
    ///
    /// ```
    /// use towline_ratelimit::RateLimitLayer;
    ///
    /// // Open2b limits per X-Key, not per host.
    /// let layer = RateLimitLayer::new().key_by(|parts: &http::request::Parts| {
    ///     parts.headers.get("x-key")?.to_str().ok().map(str::to_owned)
    /// });
    /// # let _ = layer;
    /// ```
    pub fn key_by(
        mut self,
        key: impl Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.config_mut().key = Some(Arc::new(key));
        self
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`RateLimitLayer`]. See the layer for an example.
pub struct RateLimit<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: Clone> Clone for RateLimit<S> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// The most bytes of an authority kept inline (without allocating) as a request's key.
const INLINE_KEY: usize = 64;

/// A request's key: its authority copied inline when short (the common case: no allocation,
/// no reference count), or an owned string.
#[derive(Clone)]
enum Key {
    Inline { bytes: [u8; INLINE_KEY], len: u8 },
    Owned(String),
}

impl Key {
    fn new(key: &str) -> Self {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0u8; INLINE_KEY];
            bytes[..key.len()].copy_from_slice(key.as_bytes());
            Key::Inline {
                bytes,
                len: key.len() as u8,
            }
        } else {
            Key::Owned(key.to_owned())
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied from a `&str` whole, so always valid UTF-8.
            Key::Inline { bytes, len } => {
                std::str::from_utf8(&bytes[..*len as usize]).unwrap_or("")
            }
            Key::Owned(key) => key,
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<S, B, ResBody> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the inner service's: a request held at a gate waits in its own future,
        // with its own clone of the service, so other keys are never held up here.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let key = match &self.config.key {
            None => request.uri().authority().map(|a| Key::new(a.as_str())),
            Some(key_fn) => {
                let (parts, body) = request.into_parts();
                let key = key_fn(&parts).map(Key::Owned);
                return self.gate(Request::from_parts(parts, body), key);
            }
        };
        self.gate(request, key)
    }
}

impl<S> RateLimit<S> {
    towline_core::inner_service_accessors!();

    /// Sends `request` now if its gate is open and its quota allows, or holds it.
    fn gate<B>(&mut self, request: Request<B>, key: Option<Key>) -> ResponseFuture<S, B>
    where
        S: Service<Request<B>> + Clone,
    {
        let config = self.config.clone();
        let Some(key) = key else {
            return ResponseFuture::calling(self.inner.call(request), None, config);
        };
        // The fast path: no gate closed anywhere and no quota to keep.
        if config.quota.is_none() && config.store.is_idle() {
            return ResponseFuture::calling(self.inner.call(request), Some(key), config);
        }
        let now = Instant::now();
        let deadline = Deadline::in_force(request.extensions());
        match wait_until(&config, key.as_str(), now, deadline) {
            Ok(None) => ResponseFuture::calling(self.inner.call(request), Some(key), config),
            Ok(Some(until)) => {
                // Keep the readied service for the next call; this one waits with a clone and
                // asks for readiness again after the wait.
                let held = Held {
                    sleep: sleep_until(until),
                    service: self.inner.clone(),
                    request: Some(request),
                };
                ResponseFuture {
                    state: State::Waiting {
                        held: Box::pin(held),
                    },
                    key: Some(key),
                    config,
                }
            }
            Err(error) => ResponseFuture {
                state: State::Failed {
                    error: Some(Box::new(error)),
                },
                key: None,
                config,
            },
        }
    }
}

/// When a call to `key` may go: `None` for now, or an instant; or why it may not wait.
fn wait_until(
    config: &Config,
    key: &str,
    now: Instant,
    deadline: Option<Deadline>,
) -> Result<Option<Instant>, RateLimited> {
    let limits = Limits::new(config, now, deadline);
    let mut go = match gate_opens(config, key, now, limits)? {
        Some(until) => (until + spread(config)).min(limits.latest),
        None => now,
    };
    if let Some(quota) = config.quota {
        match config
            .store
            .reserve(key, quota.calls, quota.per, go, limits.latest)
        {
            Ok(slot) => go = slot,
            Err(slot) => return Err(RateLimited::new(slot, RateLimitReason::QuotaExhausted)),
        }
    }
    Ok((go > now).then_some(go))
}

/// How long a call starting now may wait.
#[derive(Clone, Copy)]
struct Limits {
    /// The end of `max_wait`.
    by_wait: Instant,
    /// The earlier of that and the call's deadline.
    latest: Instant,
}

impl Limits {
    fn new(config: &Config, now: Instant, deadline: Option<Deadline>) -> Self {
        let by_wait = now + config.max_wait;
        let latest = deadline.map_or(by_wait, |d| d.instant().min(by_wait));
        Limits { by_wait, latest }
    }
}

/// When the gate of `key` opens, `None` if it is open, or why a call may not wait that long.
fn gate_opens(
    config: &Config,
    key: &str,
    now: Instant,
    limits: Limits,
) -> Result<Option<Instant>, RateLimited> {
    match config.store.closed_until(key, now) {
        Some(until) if until >= limits.latest => {
            Err(RateLimited::new(until, reason(until, limits.by_wait)))
        }
        closed => Ok(closed),
    }
}

/// A uniform delay within the configured spread, so a crowd held by one gate is released over
/// a moment rather than in one instant.
fn spread(config: &Config) -> Duration {
    if config.spread.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(config.spread.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// Why a wait until `until` is refused: too long, or past the deadline.
fn reason(until: Instant, latest_by_wait: Instant) -> RateLimitReason {
    if until > latest_by_wait {
        RateLimitReason::WaitTooLong
    } else {
        RateLimitReason::PastDeadline
    }
}

pin_project! {
    /// A request held at a gate, with the service clone that will send it.
    struct Held<S, B> {
        #[pin]
        sleep: Sleep,
        service: S,
        request: Option<Request<B>>,
    }
}

pin_project! {
    /// The response future of [`RateLimit`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future, S, B>,
        key: Option<Key>,
        config: Arc<Config>,
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, B> {
        Calling {
            #[pin]
            future: F,
        },
        // Held at a gate (or for a quota slot). Boxed: only held requests pay for it, and the
        // future stays small on the fast path.
        Waiting {
            held: Pin<Box<Held<S, B>>>,
        },
        Failed {
            error: Option<BoxError>,
        },
        Done,
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn calling(future: S::Future, key: Option<Key>, config: Arc<Config>) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            key,
            config,
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx)).map_err(Into::into);
                    let hint = this
                        .key
                        .as_ref()
                        .and_then(|key| wait_hint(this.config, &result).map(|hint| (key, hint)));
                    if let Some((key, hint)) = hint {
                        let until = hint.ends_at(Instant::now());
                        tracing::debug!(
                            wait_ms = hint.wait().as_millis() as u64,
                            source = %hint.source(),
                            "rate-limit gate closed"
                        );
                        this.config.store.close(key.as_str(), until);
                    }
                    this.state.set(State::Done);
                    return Poll::Ready(result);
                }
                StateProj::Waiting { held } => {
                    let mut held = held.as_mut().project();
                    ready!(held.sleep.as_mut().poll(cx));
                    // The gate may have closed again meanwhile (another 429): look again.
                    if let (Some(key), Some(request)) = (this.key.as_ref(), held.request.as_ref()) {
                        let now = Instant::now();
                        let deadline = Deadline::in_force(request.extensions());
                        let limits = Limits::new(this.config, now, deadline);
                        match gate_opens(this.config, key.as_str(), now, limits) {
                            Ok(None) => {}
                            Ok(Some(until)) => {
                                held.sleep.as_mut().reset(until);
                                continue;
                            }
                            Err(error) => {
                                this.state.set(State::Done);
                                return Poll::Ready(Err(Box::new(error)));
                            }
                        }
                    }
                    if let Err(error) = ready!(held.service.poll_ready(cx)) {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(error.into()));
                    }
                    let Some(request) = held.request.take() else {
                        this.state.set(State::Done);
                        return Poll::Ready(
                            Err("rate-limit future polled after completion".into()),
                        );
                    };
                    let future = held.service.call(request);
                    this.state.set(State::Calling { future });
                }
                StateProj::Failed { error } => {
                    let error = error
                        .take()
                        .unwrap_or_else(|| "rate-limit future polled after completion".into());
                    this.state.set(State::Done);
                    return Poll::Ready(Err(error));
                }
                StateProj::Done => {
                    return Poll::Ready(Err("rate-limit future polled after completion".into()));
                }
            }
        }
    }
}

/// The wait a 429 or 503 asked for, from its headers or its decoded body.
fn wait_hint<T>(config: &Config, result: &Result<Response<T>, BoxError>) -> Option<RetryHint> {
    match result {
        Ok(response) => asks_to_wait(response.status(), response.headers(), &config.hints),
        Err(error) => {
            let api = towline_core::find::<ApiError>(&**error)?;
            if !matches!(api.status.as_u16(), 429 | 503) {
                return None;
            }
            api.retry_hint.clone()
        }
    }
}

fn asks_to_wait(status: StatusCode, headers: &HeaderMap, hints: &HintReader) -> Option<RetryHint> {
    if !matches!(status.as_u16(), 429 | 503) {
        return None;
    }
    hints.read(headers)
}
