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
}

impl fmt::Debug for TokenRefreshBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRefreshBuilder")
            .field("header", &self.header)
            .field("scheme", &self.scheme)
            .field("margin", &self.margin)
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

    /// Refreshes a token that expires within `margin`, before using it.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
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
