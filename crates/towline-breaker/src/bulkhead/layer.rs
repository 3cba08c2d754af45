//! [`BulkheadLayer`] and its configuration.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tower::Layer;

use super::compartment::{Compartment, Limits};
use super::service::Bulkhead;
use crate::registry::{DEFAULT_MAX_KEYS, KeyFn, Registry};

/// What a layer's services share.
pub(crate) struct Config {
    pub(crate) registry: Registry<Compartment>,
    pub(crate) key: Option<Arc<KeyFn>>,
}

/// Lets at most `max_concurrent` calls per key be in flight at once; a few more may wait for
/// a place, for a bounded time; the rest fail at once with
/// [`BulkheadFull`](towline_core::BulkheadFull), not sent.
///
/// Each key (the request's authority, `host:port`, or what [`key_by`](Self::key_by) says) has
/// its own places, shared by every clone of the layer and of its services, so one slow server
/// cannot take every connection and task of the client. A call takes its place in its
/// response future, not in `poll_ready`, and holds it until the response head arrives (or the
/// future is dropped). A call that finds no place:
///
/// - joins its key's queue if fewer than [`queue`](Self::queue) calls wait there (default 0,
///   Polly's and .NET's `ConcurrencyLimiter` default: refuse at once), and waits for a place
///   in order of arrival, at most [`max_wait`](Self::max_wait) (default: no limit of its own)
///   and never past its deadline (the [`CallContext`](towline_core::CallContext)'s);
/// - otherwise, or when its wait runs out, fails with `BulkheadFull` ([`ErrorKind::BulkheadFull`](
///   towline_core::ErrorKind::BulkheadFull), certainly not sent: the retry layer does not
///   retry it, since a retry would only join the same queue again).
///
/// A waiting call holds the inner service it was made ready with (the layer keeps a clone),
/// and sends its request only once it has a place.
///
/// **Keys.** As the circuit breaker, at most [`max_keys`](Self::max_keys) keys (default
/// [`DEFAULT_MAX_KEYS`]); a new key forgets up to 32 idle ones, oldest first (no call in
/// flight or waiting). When every kept key is busy, a new key's calls are not limited (and a
/// warning is logged). A request without a key is not limited.
///
/// ```
/// use std::time::Duration;
/// use http::{Request, Response};
/// use tower::{Layer, ServiceExt, service_fn};
/// use towline_breaker::BulkheadLayer;
/// use towline_core::{Error, ErrorKind};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// // A server that takes a second per answer.
/// let slow = service_fn(|_req: Request<()>| async {
///     tokio::time::sleep(Duration::from_secs(1)).await;
///     Ok::<_, std::convert::Infallible>(Response::new(()))
/// });
/// let service = BulkheadLayer::new(1).layer(slow);
/// let request = || Request::get("http://api.example/items").body(()).unwrap();
///
/// let first = tokio::spawn(service.clone().oneshot(request()));
/// tokio::task::yield_now().await;
/// // One call in flight: the second finds no place and no queue.
/// let err = Error::from(service.clone().oneshot(request()).await.unwrap_err());
/// assert_eq!(err.kind(), ErrorKind::BulkheadFull);
/// assert!(first.await.unwrap().is_ok());
/// # }
/// ```
#[derive(Clone)]
pub struct BulkheadLayer {
    config: Arc<Config>,
    limits: Limits,
    max_keys: usize,
}

impl fmt::Debug for BulkheadLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadLayer")
            .field("max_concurrent", &self.limits.max_concurrent)
            .field("queue", &self.limits.max_waiting)
            .field("max_wait", &self.limits.max_wait)
            .field("max_keys", &self.max_keys)
            .field("key_by", &self.config.key.is_some())
            .finish()
    }
}

impl BulkheadLayer {
    /// At most `max_concurrent` calls per authority in flight at once (at least 1, at most
    /// tokio's `Semaphore::MAX_PERMITS`), no queue, at most [`DEFAULT_MAX_KEYS`] keys.
    ///
    /// ```
    /// let layer = towline_breaker::BulkheadLayer::new(16);
    /// assert_eq!(layer.max_concurrent(), 16);
    /// assert_eq!(towline_breaker::BulkheadLayer::new(0).max_concurrent(), 1);
    /// ```
    pub fn new(max_concurrent: usize) -> Self {
        let limits = Limits {
            max_concurrent: max_concurrent.clamp(1, Semaphore::MAX_PERMITS),
            max_waiting: 0,
            max_wait: None,
        };
        Self::build(limits, DEFAULT_MAX_KEYS, None)
    }

    fn build(limits: Limits, max_keys: usize, key: Option<Arc<KeyFn>>) -> Self {
        BulkheadLayer {
            config: Arc::new(Config {
                registry: Registry::new(limits, max_keys),
                key,
            }),
            limits,
            max_keys,
        }
    }

    /// Lets up to `max_waiting` calls per key wait for a place (default 0: a call that finds
    /// no place fails at once). Configure before cloning the layer: this starts a new, empty
    /// set of keys.
    ///
    /// ```
    /// let layer = towline_breaker::BulkheadLayer::new(8).queue(32);
    /// assert_eq!(layer.queue_len(), 32);
    /// ```
    pub fn queue(self, max_waiting: usize) -> Self {
        let limits = Limits {
            max_waiting,
            ..self.limits
        };
        Self::build(limits, self.max_keys, self.config.key.clone())
    }

    /// A queued call waits at most `max_wait` for a place (default: no limit but the call's
    /// deadline). `Duration::MAX` is no limit. Configure before cloning the layer: this starts
    /// a new, empty set of keys.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let layer = towline_breaker::BulkheadLayer::new(8)
    ///     .queue(32)
    ///     .max_wait(Duration::from_millis(500));
    /// assert_eq!(layer.max_wait_time(), Some(Duration::from_millis(500)));
    /// ```
    pub fn max_wait(self, max_wait: Duration) -> Self {
        let limits = Limits {
            max_wait: Some(max_wait),
            ..self.limits
        };
        Self::build(limits, self.max_keys, self.config.key.clone())
    }

    /// Keeps at most `max_keys` keys (at least 1). Configure before cloning the layer: this
    /// starts a new, empty set of keys.
    ///
    /// ```
    /// let layer = towline_breaker::BulkheadLayer::new(8).max_keys(100_000);
    /// # let _ = layer;
    /// ```
    pub fn max_keys(self, max_keys: usize) -> Self {
        Self::build(self.limits, max_keys.max(1), self.config.key.clone())
    }

    /// Keys the limit by what `key` returns (a tenant, an API key: never logged); `None` is
    /// not limited. Configure before cloning the layer: this starts a new, empty set of keys.
    ///
    /// ```
    /// use towline_breaker::BulkheadLayer;
    ///
    /// // At most 4 calls in flight per tenant, whatever the host.
    /// let layer = BulkheadLayer::new(4).key_by(|parts: &http::request::Parts| {
    ///     let tenant = parts.headers.get("x-tenant")?.to_str().ok()?;
    ///     Some(tenant.to_owned())
    /// });
    /// # let _ = layer;
    /// ```
    pub fn key_by(
        self,
        key: impl Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self::build(self.limits, self.max_keys, Some(Arc::new(key)))
    }

    /// The most calls per key in flight at once.
    ///
    /// ```
    /// assert_eq!(towline_breaker::BulkheadLayer::new(3).max_concurrent(), 3);
    /// ```
    pub fn max_concurrent(&self) -> usize {
        self.limits.max_concurrent
    }

    /// The most calls per key waiting for a place.
    ///
    /// ```
    /// assert_eq!(towline_breaker::BulkheadLayer::new(3).queue_len(), 0);
    /// ```
    pub fn queue_len(&self) -> usize {
        self.limits.max_waiting
    }

    /// The longest a queued call waits, if the layer sets a limit (the deadline applies too).
    ///
    /// ```
    /// assert_eq!(towline_breaker::BulkheadLayer::new(3).max_wait_time(), None);
    /// ```
    pub fn max_wait_time(&self) -> Option<std::time::Duration> {
        self.limits.max_wait
    }

    /// How many places of `key` are taken now: calls in flight, and places handed to a waiting
    /// call that has not been polled since (`0` for a key the layer keeps nothing for).
    ///
    /// ```
    /// assert_eq!(towline_breaker::BulkheadLayer::new(3).in_flight("api.example"), 0);
    /// ```
    pub fn in_flight(&self, key: &str) -> usize {
        self.config
            .registry
            .get(key)
            .map_or(0, |compartment| compartment.in_flight())
    }

    /// How many calls of `key` wait for a place now.
    ///
    /// ```
    /// assert_eq!(towline_breaker::BulkheadLayer::new(3).waiting("api.example"), 0);
    /// ```
    pub fn waiting(&self, key: &str) -> usize {
        self.config
            .registry
            .get(key)
            .map_or(0, |compartment| compartment.waiting())
    }

    /// How many keys the layer keeps, idle ones not yet forgotten included.
    ///
    /// ```
    /// assert_eq!(towline_breaker::BulkheadLayer::new(3).keys(), 0);
    /// ```
    pub fn keys(&self) -> usize {
        self.config.registry.len()
    }

    /// Forgets every idle key now (new keys forget a few at a time).
    ///
    /// ```
    /// towline_breaker::BulkheadLayer::new(3).sweep();
    /// ```
    pub fn sweep(&self) {
        self.config.registry.sweep();
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = Bulkhead<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Bulkhead {
            inner,
            config: self.config.clone(),
        }
    }
}
