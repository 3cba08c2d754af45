//! [`TokenRefreshLayer`] and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use http::header::AUTHORIZATION;
use tower::Layer;
#[cfg(doc)]
use towline_core::{
    ApiError, AuthError, AuthReason, CallContext, CredentialsRefreshed, Replayable, Resend,
};

use crate::cache::Cache;
use crate::service::TokenRefresh;
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
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(30);

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
///   after a refresh — ends with [`AuthError`] and its reason, never a loop.
/// - While the cached token is valid, calls use it at once; inside the refresh margin one
///   refresh runs in the background. The fetch runs as a task of its own, bounded by
///   [`fetch_timeout`](TokenRefreshBuilder::fetch_timeout), whoever waits for it; a call waits
///   no longer than its own deadline. A failing token source gives every waiter [`AuthError`] with [`AuthReason::SourceFailed`]; the next call
///   asks the source again.
/// - The request body must be [`Replayable`] (as for retries). Under a retry layer that
///   promises, in the request's [`CallContext`], to send the attempt again after a refresh
///   ([`Resend::OnRefresh`]: towline's `RetryLayer` does), the layer keeps no copy of the
///   request: after the refresh it ends the attempt with [`CredentialsRefreshed`] and the retry
///   layer sends its own copy at once (once per attempt, not as a retry). One copy per call
///   instead of two; otherwise the same behaviour.
/// - A call waits for a token no longer than its [`Deadline`](towline_core::Deadline); the
///   fetch itself belongs to the cache and goes on for the other callers.
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
