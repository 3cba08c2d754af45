//! [`RateLimitLayer`] and its settings.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::Layer;
use towline_core::HintReader;

use crate::Quota;
use crate::config::Config;
use crate::gates::Gates;
use crate::memory::InMemoryStore;
use crate::service::RateLimit;
use crate::store::GateStore;

/// The default longest wait at a closed gate: 60 s, the same as the retry layer's longest
/// server wait. A longer one (IXON keeps a tripped limit for 10 minutes) fails at once with
/// [`RateLimited`](towline_core::RateLimited) carrying the instant, rather than holding the
/// call silently.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(60);

/// The default spread of released waiters: up to 100 ms after the gate opens, so that a crowd
/// held by one 429 does not hit the server in the same millisecond.
pub const DEFAULT_RELEASE_SPREAD: Duration = Duration::from_millis(100);

/// The default longest time one response may close a gate: 10 minutes, IXON's documented lock
/// after its burst limit trips (the longest wait a vendor towline supports documents). A hint
/// beyond it (`Retry-After: 99999999999`, a date in 2099, a server clock hours ahead) closes
/// the gate for this long, not for the hint's hour.
pub const DEFAULT_MAX_CLOSE: Duration = Duration::from_secs(600);

/// Holds every request to a key while the server said to wait, and paces calls to a quota.
///
/// When a response (or a decoded [`ApiError`](towline_core::ApiError)) with status 429 or 503
/// carries a wait hint (`Retry-After`, `X-Wait-Seconds`, `RateLimit-Reset`,
/// `X-RateLimit-Reset`, or your header), the gate for its key closes until the hinted instant
/// (at most [`max_close`](Self::max_close) away), for every clone of the layer. Requests to
/// that key wait, without polling, until it opens (released over a small spread), or fail at
/// once with [`RateLimited`](towline_core::RateLimited) if the wait is longer than
/// [`max_wait`](Self::max_wait) or ends at or past the call's
/// [`Deadline`](towline_core::Deadline). Requests to other keys are not held.
///
/// The key is the request's authority (`host:port`), or what [`key_by`](Self::key_by) says.
/// One layer value is one domain of gates: its clones share them, and [`gates`](Self::gates)
/// shows them.
///
/// Every duration setting takes any value up to `Duration::MAX` without panicking.
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
            .field("max_close", &self.config.max_close)
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
    /// Gates per authority in an [`InMemoryStore`] (keeping at most
    /// [`DEFAULT_MAX_KEYS`](crate::DEFAULT_MAX_KEYS) keys), the four standard hint headers,
    /// [`DEFAULT_MAX_WAIT`], [`DEFAULT_MAX_CLOSE`], [`DEFAULT_RELEASE_SPREAD`], no quota.
    ///
    /// ```
    /// let layer = towline_ratelimit::RateLimitLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        RateLimitLayer {
            config: Arc::new(Config {
                store: Arc::new(InMemoryStore::default()),
                hints: HintReader::new(),
                max_wait: DEFAULT_MAX_WAIT,
                max_close: DEFAULT_MAX_CLOSE,
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
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = towline_ratelimit::RateLimitLayer::new().max_wait(Duration::from_secs(5));
    /// # let _ = layer;
    /// ```
    pub fn max_wait(mut self, limit: Duration) -> Self {
        self.config_mut().max_wait = limit;
        self
    }

    /// The longest one response may close a gate, whatever its hint says. See
    /// [`DEFAULT_MAX_CLOSE`]. A gate closed for longer than [`max_wait`](Self::max_wait) makes
    /// every call to its key fail at once until it opens, and logs a `tracing` warning.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = towline_ratelimit::RateLimitLayer::new().max_close(Duration::from_secs(120));
    /// # let _ = layer;
    /// ```
    pub fn max_close(mut self, limit: Duration) -> Self {
        self.config_mut().max_close = limit;
        self
    }

    /// Spreads released waiters uniformly over `spread` after the gate opens (zero: all at once).
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = towline_ratelimit::RateLimitLayer::new().spread(Duration::ZERO);
    /// # let _ = layer;
    /// ```
    pub fn spread(mut self, spread: Duration) -> Self {
        self.config_mut().spread = spread;
        self
    }

    /// Reads wait hints with `hints` (e.g. a vendor's own header).
    ///
    /// ```
    /// use towline_core::HintReader;
    /// let layer = towline_ratelimit::RateLimitLayer::new().hints(HintReader::new());
    /// # let _ = layer;
    /// ```
    pub fn hints(mut self, hints: HintReader) -> Self {
        self.config_mut().hints = hints;
        self
    }

    /// Paces calls to each key so that `quota` is never exceeded. A call that gives up while
    /// it waits for its slot (dropped, refused) gives the slot back.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_ratelimit::{Quota, RateLimitLayer};
    ///
    /// let layer = RateLimitLayer::new().quota(Quota::new(10, Duration::from_secs(1)));
    /// # let _ = layer;
    /// ```
    pub fn quota(mut self, quota: Quota) -> Self {
        self.config_mut().quota = Some(quota);
        self
    }

    /// Keeps gates and quotas in `store` (shared by many replicas, say, or an
    /// [`InMemoryStore`] with another bound).
    ///
    /// ```
    /// use towline_ratelimit::{InMemoryStore, RateLimitLayer};
    ///
    /// let layer = RateLimitLayer::new().store(InMemoryStore::with_max_keys(100_000));
    /// # let _ = layer;
    /// ```
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

    /// A handle on this layer's gates (shared by its clones): lists the closed ones and
    /// reopens one. See [`Gates`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let layer = towline_ratelimit::RateLimitLayer::new();
    /// assert!(layer.gates().closed().await.unwrap().is_empty());
    /// # }
    /// ```
    pub fn gates(&self) -> Gates {
        Gates::new(self.config.store.clone())
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
