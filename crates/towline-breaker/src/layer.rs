//! [`CircuitBreakerLayer`] and its configuration.

use std::fmt;
use std::sync::Arc;

use tower::Layer;

use crate::circuit::{Circuit, Policy};
use crate::handle::Circuits;
use crate::registry::{DEFAULT_MAX_KEYS, KeyFn, Registry};
use crate::service::CircuitBreaker;
use crate::settings::{InvalidSettings, Settings};

/// What a layer's services share.
pub(crate) struct Config {
    pub(crate) registry: Arc<Registry<Circuit>>,
    pub(crate) key: Option<Arc<KeyFn>>,
}

/// Stops calls to a key whose server keeps failing, and lets probes find out when it recovers.
///
/// Each key (the request's authority, `host:port`, or what [`key_by`](Self::key_by) says) has
/// a circuit, shared by every clone of the layer and of its services. While it is closed,
/// calls go and their outcomes are counted (see [`Settings`] for when it opens). An open
/// circuit fails each call at once with [`CircuitOpen`](towline_core::CircuitOpen)
/// ([`ErrorKind::CircuitOpen`](towline_core::ErrorKind::CircuitOpen)), without sending it,
/// until the break ends; then `probes` calls go, and their outcome closes or re-opens it.
///
/// **What counts.** Read from core's typed model, on the response head: network errors,
/// timeouts and the statuses 500, 502, 503 and 504 (as responses or decoded
/// [`ApiError`](towline_core::ApiError)s) are failures; any other answer (2xx, 3xx, 4xx, an
/// auth error) is a success, since the server answered. Nothing at all is counted for a 429 or
/// a 503 with a wait hint (the server is managing its load and said when to come back: the
/// rate-limit layer holds calls until then, and a break on top would be one the server did not
/// ask for), for a call refused on our side (rate limited, deadline passed, an unknown error),
/// or for a call whose future was dropped before its answer (a cancelled probe gives its place
/// back).
///
/// **Keys.** The layer keeps at most [`max_keys`](Self::max_keys) circuits (default
/// [`DEFAULT_MAX_KEYS`]); a new key forgets up to 32 idle ones, oldest first (closed with an
/// empty window, or open and not called for a window past the break), so the cost of a call
/// does not grow with the number of keys. When every kept circuit is busy, a new key's calls
/// go unwatched (and a warning is logged) rather than a busy key's history being lost. A
/// request without a key (no authority, `key_by` says `None`) is not watched.
///
/// ```
/// use std::time::Duration;
/// use http::{Request, Response, StatusCode};
/// use tower::{BoxError, Layer, ServiceExt, service_fn};
/// use towline_breaker::{CircuitBreakerLayer, Settings};
/// use towline_core::{Error, ErrorKind};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let settings = Settings::new().min_throughput(4).failure_ratio(0.5);
/// let layer = CircuitBreakerLayer::with_settings(settings).unwrap();
/// let service = layer.layer(service_fn(|_req: Request<()>| async {
///     Ok::<_, BoxError>(Response::builder().status(StatusCode::BAD_GATEWAY).body(()).unwrap())
/// }));
///
/// for _ in 0..4 {
///     let request = Request::get("http://api.example/items").body(()).unwrap();
///     assert_eq!(service.clone().oneshot(request).await.unwrap().status(), 502);
/// }
/// // 4 calls, all failed: open. The next call is not sent.
/// let request = Request::get("http://api.example/items").body(()).unwrap();
/// let err = Error::from(service.oneshot(request).await.unwrap_err());
/// assert_eq!(err.kind(), ErrorKind::CircuitOpen);
/// # }
/// ```
#[derive(Clone)]
pub struct CircuitBreakerLayer {
    config: Arc<Config>,
    settings: Settings,
    max_keys: usize,
}

impl fmt::Debug for CircuitBreakerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("settings", &self.settings)
            .field("max_keys", &self.max_keys)
            .field("key_by", &self.config.key.is_some())
            .finish()
    }
}

impl Default for CircuitBreakerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl CircuitBreakerLayer {
    /// A circuit per authority with the default [`Settings`] (Microsoft's standard resilience
    /// handler's: 10 % failures over 30 s with at least 100 calls, a 5 s break) and at most
    /// [`DEFAULT_MAX_KEYS`] keys.
    ///
    /// ```
    /// let layer = towline_breaker::CircuitBreakerLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        Self::build(Settings::default(), DEFAULT_MAX_KEYS, None)
    }

    /// A circuit per authority with `settings`, refused with the reason if one is out of range.
    ///
    /// ```
    /// use towline_breaker::{CircuitBreakerLayer, InvalidSettings, Settings};
    ///
    /// assert!(CircuitBreakerLayer::with_settings(Settings::new().min_throughput(20)).is_ok());
    /// assert_eq!(
    ///     CircuitBreakerLayer::with_settings(Settings::new().min_throughput(0)).unwrap_err(),
    ///     InvalidSettings::MinThroughput
    /// );
    /// ```
    pub fn with_settings(settings: Settings) -> Result<Self, InvalidSettings> {
        settings.validate()?;
        Ok(Self::build(settings, DEFAULT_MAX_KEYS, None))
    }

    fn build(settings: Settings, max_keys: usize, key: Option<Arc<KeyFn>>) -> Self {
        let policy = Policy::new(settings.clone(), key.is_none());
        CircuitBreakerLayer {
            config: Arc::new(Config {
                registry: Arc::new(Registry::new(policy, max_keys)),
                key,
            }),
            settings,
            max_keys,
        }
    }

    /// Keeps at most `max_keys` circuits (at least 1). Configure before cloning the layer or
    /// calling [`circuits`](Self::circuits): this starts a new, empty set of circuits.
    ///
    /// ```
    /// let layer = towline_breaker::CircuitBreakerLayer::new().max_keys(100_000);
    /// # let _ = layer;
    /// ```
    pub fn max_keys(self, max_keys: usize) -> Self {
        Self::build(self.settings, max_keys.max(1), self.config.key.clone())
    }

    /// Keys circuits by what `key` returns (a tenant, an API key: never logged); `None` is not
    /// watched. Configure before cloning the layer or calling [`circuits`](Self::circuits):
    /// this starts a new, empty set of circuits.
    ///
    /// ```
    /// use towline_breaker::CircuitBreakerLayer;
    ///
    /// // One circuit per host and first path segment (one per backend behind a gateway).
    /// let layer = CircuitBreakerLayer::new().key_by(|parts: &http::request::Parts| {
    ///     let host = parts.uri.host()?;
    ///     let segment = parts.uri.path().split('/').nth(1).unwrap_or("");
    ///     Some(format!("{host}/{segment}"))
    /// });
    /// # let _ = layer;
    /// ```
    pub fn key_by(
        self,
        key: impl Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self::build(self.settings, self.max_keys, Some(Arc::new(key)))
    }

    /// The settings in force.
    ///
    /// ```
    /// let layer = towline_breaker::CircuitBreakerLayer::new();
    /// assert_eq!(layer.settings().clone(), towline_breaker::Settings::new());
    /// ```
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A handle on this layer's circuits (shared by its clones): each key's state, forcing a
    /// circuit open or closed. See [`Circuits`].
    ///
    /// ```
    /// let layer = towline_breaker::CircuitBreakerLayer::new();
    /// assert!(layer.circuits().is_empty());
    /// ```
    pub fn circuits(&self) -> Circuits {
        Circuits::new(self.config.registry.clone())
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreaker<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker {
            inner,
            config: self.config.clone(),
        }
    }
}
