//! [`TokenRefreshLayer`], its service and its response future.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{HeaderName, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use towline_core::{
    ApiError, ApiErrorKind, AuthError, AuthReason, BoxError, ReplayOffer, ReplayRequested,
    Replayable, replay_request,
};

use crate::cache::{Cache, Current};
use crate::token::TokenSource;

/// The default margin of proactive refresh: a token expiring within 60 s is replaced before
/// it is used. More than a slow call plus clock skew; Google's auth libraries refresh 3 min 45 s
/// early and the AWS SDKs 5 min for hour-long credentials, but for Telecom X's 15-minute
/// sessions a minute keeps 93 % of each session in use.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The default bound on one token fetch: 30 s, the standard pipeline's whole-call deadline
/// (`towline::DEFAULT_DEADLINE`). A fetch still running when every caller that started with
/// that deadline has given up is more likely hung than slow; google-auth-library-python
/// allows its token requests 120 s.
const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);

type CurrentFuture = Pin<Box<dyn Future<Output = Result<Arc<Current>, BoxError>> + Send>>;

/// Attaches a token to every request, refreshes it before it expires, and on a refreshable
/// 401 refreshes once (single-flight) and replays the request once.
///
/// - The token comes from a [`TokenSource`] and is cached, shared by every clone of the layer.
///   The header (`Authorization: Bearer <token>` by default; any name and scheme, e.g.
///   Open2b's `X-Key: <key>`) is marked sensitive.
/// - A 401 — a plain response, or a decoded [`ApiError`] whose
///   [`AuthReason`] is expired, invalid token or unknown — triggers one refresh and one replay.
///   N concurrent requests failing with the same token cause exactly one refresh; a request
///   that failed with an older token than the cache holds just replays.
/// - Not refreshable — 2FA or SSO required, a malformed token or header, a second 401 right
///   after a refresh — ends with [`AuthError`] and its reason, never a loop. A failing token
///   source gives every waiter [`AuthError`] with [`AuthReason::SourceFailed`]; the next call
///   asks the source again.
/// - The request body must be [`Replayable`] (as for retries). Under a retry layer that makes
///   a [`ReplayOffer`] (towline's `RetryLayer` does), the layer keeps no copy of the request:
///   after the refresh it returns [`ReplayRequested`] and the retry layer replays its own copy
///   at once (once per attempt, not as a retry). One copy per call instead of two; otherwise
///   the same behaviour.
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use tower::{BoxError, Layer, ServiceExt, service_fn};
/// use towline_auth::{StaticToken, Token, TokenRefreshLayer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let layer = TokenRefreshLayer::new(StaticToken::new(Token::new("t0k3n").unwrap()));
/// let upstream = service_fn(|req: Request<Full<Bytes>>| async move {
///     let auth = req.headers()["authorization"].clone();
///     assert!(auth.is_sensitive());
///     assert_eq!(auth, "Bearer t0k3n");
///     Ok::<_, BoxError>(Response::new(()))
/// });
/// let response = layer.layer(upstream).oneshot(Request::new(Full::new(Bytes::new()))).await.unwrap();
/// assert_eq!(response.status(), StatusCode::OK);
/// # }
/// ```
#[derive(Clone)]
pub struct TokenRefreshLayer {
    cache: Arc<Cache>,
}

impl fmt::Debug for TokenRefreshLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TokenRefreshLayer")
            .field(&self.cache)
            .finish()
    }
}

impl TokenRefreshLayer {
    /// `Authorization: Bearer <token>` from `source`, refreshed [`DEFAULT_REFRESH_MARGIN`]
    /// before expiry.
    pub fn new(source: impl TokenSource) -> Self {
        TokenRefreshLayer::builder(source).build()
    }

    /// Configures the header, scheme and margin. See [`TokenRefreshBuilder`].
    pub fn builder(source: impl TokenSource) -> TokenRefreshBuilder {
        TokenRefreshBuilder {
            source: Box::new(source),
            header: AUTHORIZATION,
            scheme: Some("Bearer".to_owned()),
            margin: DEFAULT_REFRESH_MARGIN,
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }
}

/// Builds a [`TokenRefreshLayer`].
///
/// ```
/// use http::HeaderName;
/// use towline_auth::{StaticToken, Token, TokenRefreshLayer};
///
/// // Open2b: the key alone, in X-Key.
/// let layer = TokenRefreshLayer::builder(StaticToken::new(Token::new("my-key").unwrap()))
///     .header(HeaderName::from_static("x-key"))
///     .no_scheme()
///     .build();
/// # let _ = layer;
/// ```
pub struct TokenRefreshBuilder {
    source: Box<dyn TokenSource>,
    header: HeaderName,
    scheme: Option<String>,
    margin: Duration,
    fetch_timeout: Duration,
}

impl fmt::Debug for TokenRefreshBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRefreshBuilder")
            .field("header", &self.header)
            .field("scheme", &self.scheme)
            .field("margin", &self.margin)
            .field("fetch_timeout", &self.fetch_timeout)
            .finish_non_exhaustive()
    }
}

impl TokenRefreshBuilder {
    /// Sends the token in `header` (default `Authorization`).
    pub fn header(mut self, header: HeaderName) -> Self {
        self.header = header;
        self
    }

    /// Prefixes the token with `scheme` and a space (default `Bearer`).
    pub fn scheme(mut self, scheme: impl Into<String>) -> Self {
        self.scheme = Some(scheme.into());
        self
    }

    /// Sends the token alone, with no scheme (API keys).
    pub fn no_scheme(mut self) -> Self {
        self.scheme = None;
        self
    }

    /// Starts replacing a token `margin` before it expires (default
    /// [`DEFAULT_REFRESH_MARGIN`]), but never before half its lifetime has passed (counted
    /// from when it was fetched).
    ///
    /// The refresh runs in the background: until the token expires, calls use it at once,
    /// also while the refresh runs and when it fails. A failed background refresh is logged
    /// (`tracing::warn!`, never the token) and tried again after 1 s, then 2 s, 4 s, ...
    /// (doubling, at most 30 s between attempts), never later than the expiry; from the
    /// expiry on, calls wait for a fetch of their own and fail with
    /// [`AuthReason::SourceFailed`] if it fails.
    ///
    /// The half-lifetime floor keeps a token that lives shorter than the margin from being
    /// fetched again on every call (a 30 s token with the 60 s margin is replaced after
    /// 15 s), and leaves the refresh as long as the token has already served to succeed;
    /// MSAL likewise refreshes long-lived tokens at half their lifetime.
    /// `Duration::MAX` is allowed: every token is then replaced at half its lifetime.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_auth::{StaticToken, Token, TokenRefreshLayer};
    ///
    /// let token = Token::new("t0k3n").unwrap().expires_in(Duration::from_secs(3600));
    /// let layer = TokenRefreshLayer::builder(StaticToken::new(token))
    ///     .refresh_margin(Duration::from_secs(300))
    ///     .build();
    /// # let _ = layer;
    /// ```
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// Bounds each token fetch to `timeout` (default 30 s, the standard pipeline's
    /// whole-call deadline: a fetch still running when every caller with that deadline has
    /// given up is more likely hung than slow; google-auth-library-python allows 120 s).
    ///
    /// The fetch belongs to the layer, not to a call: it runs as a task of its own until it
    /// ends or times out, whichever callers come and go, and at most one runs at a time. A
    /// fetch that times out fails the calls waiting for it with [`AuthError`] and
    /// [`AuthReason::SourceFailed`], its source saying so (with tokio's `Elapsed` below it);
    /// the next call fetches again. Each caller waits no longer than its own deadline.
    /// `Duration::MAX` is allowed (no bound).
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_auth::{Token, TokenRefreshLayer, from_fn};
    ///
    /// let source = from_fn(|| async { Token::new("fresh") });
    /// let layer = TokenRefreshLayer::builder(source)
    ///     .fetch_timeout(Duration::from_secs(5))
    ///     .build();
    /// assert!(format!("{layer:?}").contains("fetch_timeout: 5s"));
    /// ```
    pub fn fetch_timeout(mut self, timeout: Duration) -> Self {
        self.fetch_timeout = timeout;
        self
    }

    /// The layer.
    pub fn build(self) -> TokenRefreshLayer {
        TokenRefreshLayer {
            cache: Arc::new(Cache::new(
                self.source,
                self.header,
                self.scheme,
                self.margin,
                self.fetch_timeout,
            )),
        }
    }
}

impl<S> Layer<S> for TokenRefreshLayer {
    type Service = TokenRefresh<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TokenRefresh {
            inner,
            cache: self.cache.clone(),
        }
    }
}

/// The service of [`TokenRefreshLayer`]. See the layer for an example.
pub struct TokenRefresh<S> {
    inner: S,
    cache: Arc<Cache>,
}

impl<S: Clone> Clone for TokenRefresh<S> {
    fn clone(&self) -> Self {
        TokenRefresh {
            inner: self.inner.clone(),
            cache: self.cache.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for TokenRefresh<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRefresh")
            .field("inner", &self.inner)
            .field("cache", &self.cache)
            .finish()
    }
}

impl<S> TokenRefresh<S> {
    towline_core::inner_service_accessors!();
}

impl<S, B, ResBody> Service<Request<B>> for TokenRefresh<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    B: Replayable,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // A retry layer above that offers to replay keeps the only copy of the request.
        let offer = ReplayOffer::current();
        let replayed = offer == Some(ReplayOffer::Replaying);
        let deferred = (offer == Some(ReplayOffer::Available)).then_some(None);
        let cache = self.cache.clone();
        match self.cache.fresh() {
            Some((header, generation)) => {
                let template = match offer {
                    None => replay_request(&request),
                    Some(_) => None,
                };
                request
                    .headers_mut()
                    .insert(cache.header_name.clone(), header);
                // Only a replay of our own calls the service again: then keep the service
                // `poll_ready` readied for this call, and replay with a clone of it.
                let (future, service) = if template.is_some() {
                    let clone = self.inner.clone();
                    let mut service = mem::replace(&mut self.inner, clone);
                    (service.call(request), Some(service))
                } else {
                    (self.inner.call(request), None)
                };
                ResponseFuture {
                    state: State::Calling { future },
                    service,
                    request: template,
                    generation,
                    replayed,
                    deferred,
                    cache,
                }
            }
            None => {
                let clone = self.inner.clone();
                let service = mem::replace(&mut self.inner, clone);
                ResponseFuture {
                    // No token yet, or one about to expire: fetch first (single-flight).
                    state: State::Refreshing {
                        refresh: Box::pin(cache.clone().refresh(None)),
                    },
                    service: Some(service),
                    request: Some(request),
                    generation: 0,
                    replayed,
                    deferred,
                    cache,
                }
            }
        }
    }
}

pin_project! {
    /// The response future of [`TokenRefresh`].
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future>,
        // The service to send with after a refresh, if this future may send again.
        service: Option<S>,
        // While an attempt is in flight, a copy of the request for the one replay after a
        // refresh (none when the retry layer above replays); while refreshing, the request
        // to send once the token is there. One slot for both keeps the future small.
        request: Option<Request<B>>,
        // The token generation the attempt in flight carries.
        generation: u64,
        // Whether this attempt follows a refresh (its own, or the one the retry layer above
        // replays for): a 401 now is final.
        replayed: bool,
        // `Some` when a retry layer above replays for us; then, once a 401 was seen, the error
        // to end with if it does not.
        deferred: Option<Option<BoxError>>,
        cache: Arc<Cache>,
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("replayed", &self.replayed)
            .finish_non_exhaustive()
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling {
            #[pin]
            future: F,
        },
        // Getting a token: before the first send, or for the replay after a 401.
        Refreshing {
            refresh: CurrentFuture,
        },
        // Waiting for the service to be ready, then sending with the (new) token.
        Readying {
            current: Option<Arc<Current>>,
        },
        Done,
    }
}

/// What a response or error says about the token.
enum Verdict {
    /// Not an auth failure: return it.
    Pass,
    /// Refresh and replay (once).
    Refresh,
    /// An auth failure no refresh fixes.
    Fail(AuthReason),
}

fn verdict<T>(result: &Result<Response<T>, BoxError>) -> Verdict {
    let reason = match result {
        Ok(response) if response.status() == StatusCode::UNAUTHORIZED => AuthReason::Unknown,
        Ok(_) => return Verdict::Pass,
        Err(error) => match towline_core::find::<ApiError>(&**error) {
            Some(api) => match api.auth_reason() {
                Some(reason)
                    if api.status == StatusCode::UNAUTHORIZED
                        || matches!(api.kind, ApiErrorKind::Auth(_)) =>
                {
                    reason
                }
                _ => return Verdict::Pass,
            },
            None => return Verdict::Pass,
        },
    };
    // A 401 that names no reason is most often an expired token (Attraqt: "refresh the access
    // token and retry"); one refresh tells.
    match reason {
        AuthReason::Expired | AuthReason::InvalidToken | AuthReason::Unknown => Verdict::Refresh,
        reason => Verdict::Fail(reason),
    }
}

/// The typed error ending a call whose credentials were refused.
fn auth_error<T>(reason: AuthReason, result: Result<Response<T>, BoxError>) -> BoxError {
    let cause: BoxError = match result {
        Ok(response) => response.status().to_string().into(),
        Err(error) => error,
    };
    Box::new(AuthError::new(reason).with_source(cause))
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    B: Replayable,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx)).map_err(Into::into);
                    match verdict(&result) {
                        Verdict::Pass => {
                            this.state.set(State::Done);
                            return Poll::Ready(result);
                        }
                        Verdict::Fail(reason) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(auth_error(reason, result)));
                        }
                        Verdict::Refresh
                            if *this.replayed
                                || (this.request.is_none() && this.deferred.is_none()) =>
                        {
                            // A 401 right after a refresh (or a body that cannot be replayed):
                            // stop, never loop.
                            this.state.set(State::Done);
                            return Poll::Ready(Err(auth_error(AuthReason::InvalidToken, result)));
                        }
                        Verdict::Refresh => {
                            tracing::debug!(
                                generation = *this.generation,
                                "401: refreshing the token"
                            );
                            *this.replayed = true;
                            // The copy in `request` is what the replay sends.
                            if let Some(otherwise) = this.deferred {
                                *otherwise = Some(auth_error(AuthReason::InvalidToken, result));
                            }
                            let refresh = this.cache.clone().refresh(Some(*this.generation));
                            this.state.set(State::Refreshing {
                                refresh: Box::pin(refresh),
                            });
                        }
                    }
                }
                StateProj::Refreshing { refresh } => {
                    let current = match ready!(refresh.as_mut().poll(cx)) {
                        Ok(current) => current,
                        Err(error) => {
                            this.state.set(State::Done);
                            return Poll::Ready(Err(error));
                        }
                    };
                    if let Some(otherwise) = this.deferred.as_mut().and_then(Option::take) {
                        // The token is new: the retry layer above sends its copy again.
                        this.state.set(State::Done);
                        return Poll::Ready(Err(Box::new(ReplayRequested::new(otherwise))));
                    }
                    // Ask for readiness again: a no-op before the first send (the service is
                    // still ready from `poll_ready`), needed before the replay.
                    this.state.set(State::Readying {
                        current: Some(current),
                    });
                }
                StateProj::Readying { current } => {
                    let Some(service) = this.service.as_mut() else {
                        this.state.set(State::Done);
                        return Poll::Ready(Err("auth future polled after completion".into()));
                    };
                    if let Err(error) = ready!(service.poll_ready(cx)) {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(error.into()));
                    }
                    let (Some(current), Some(mut request)) = (current.take(), this.request.take())
                    else {
                        this.state.set(State::Done);
                        return Poll::Ready(Err("auth future polled after completion".into()));
                    };
                    // The first send after fetching a token: keep a copy for a replay, unless
                    // the retry layer above keeps one.
                    if !*this.replayed && this.deferred.is_none() {
                        *this.request = replay_request(&request);
                    }
                    request
                        .headers_mut()
                        .insert(this.cache.header_name.clone(), current.header.clone());
                    *this.generation = current.generation;
                    let future = service.call(request);
                    this.state.set(State::Calling { future });
                }
                StateProj::Done => {
                    return Poll::Ready(Err("auth future polled after completion".into()));
                }
            }
        }
    }
}
