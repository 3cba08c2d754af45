//! [`Redis`]: one reconnecting connection, a key prefix and a time limit per operation.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};
use towline_core::{BoxError, StoreUnavailable};

/// The default limit on one Redis operation: 100 ms. A Redis on the same network answers in
/// about a millisecond; one that takes a hundred is in trouble, and a call should not pay more
/// than that before the store's failure policy answers instead.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(100);

/// The default prefix of every key towline writes: `towline:`.
pub const DEFAULT_PREFIX: &str = "towline:";

/// The longest wait between two reconnection attempts: 1 s, so that sharing resumes within
/// about a second of Redis coming back.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

/// A connection to one Redis (or Valkey) server, shared by clones, that the stores of this
/// crate use: redis-rs's [`ConnectionManager`] (one multiplexed connection, reconnected
/// automatically after an I/O error), the prefix of every key, and the time limit of every
/// operation.
///
/// Made without connecting (the first operation connects), so a service starts while Redis is
/// down. It must be made inside a tokio runtime, whose tasks carry the connection: a store
/// belongs to the runtime it was made in.
///
/// ```
/// use std::time::Duration;
/// use towline_redis::Redis;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let redis = Redis::open("redis://127.0.0.1:6379/")
///     .unwrap()
///     .prefix("billing:")
///     .op_timeout(Duration::from_millis(50));
/// assert_eq!(redis.key("gate", "api.example"), "billing:gate:api.example");
/// # }
/// ```
#[derive(Clone)]
pub struct Redis {
    client: Client,
    manager: ConnectionManager,
    prefix: Arc<str>,
    op_timeout: Duration,
    runtime: tokio::runtime::Handle,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No URL: it may carry a password.
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// A connection to `url` (`redis://host:port/db`, `rediss://` needs a TLS feature of
    /// redis-rs), made on first use, with [`DEFAULT_PREFIX`] and [`DEFAULT_OP_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// A URL redis-rs cannot read, or no tokio runtime to run the connection on.
    pub fn open(url: &str) -> Result<Redis, BoxError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "towline-redis needs a tokio runtime to run its connection on")?;
        let client = Client::open(url)?;
        let manager = ConnectionManager::new_lazy_with_config(
            client.clone(),
            Self::manager_config(DEFAULT_OP_TIMEOUT),
        )?;
        Ok(Redis {
            client,
            manager,
            prefix: Arc::from(DEFAULT_PREFIX),
            op_timeout: DEFAULT_OP_TIMEOUT,
            runtime,
        })
    }

    /// Reconnects a few times with a short backoff; each attempt is bounded like an operation.
    /// After the last failed attempt, the next operation starts a new round.
    fn manager_config(op_timeout: Duration) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(RECONNECT_MAX_DELAY)
            .set_connection_timeout(Some(op_timeout))
            .set_response_timeout(Some(op_timeout))
    }

    /// Every key starts with `prefix` (a service's name, a tenant), so that towline's keys
    /// never meet another program's. See [`DEFAULT_PREFIX`].
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into());
        self
    }

    /// Every operation gives up after `limit` (and the store's failure policy answers). See
    /// [`DEFAULT_OP_TIMEOUT`]. Any value, `Duration::MAX` included, is accepted.
    pub fn op_timeout(mut self, limit: Duration) -> Self {
        self.op_timeout = limit;
        self
    }

    /// The time limit of one operation.
    pub fn limit(&self) -> Duration {
        self.op_timeout
    }

    /// The Redis key for `name` of `kind`: `<prefix><kind>:<name>`.
    pub fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    /// Runs `op` on the connection, bounded by the operation limit: its error, or the timeout,
    /// as [`StoreUnavailable`] saying what failed.
    pub(crate) async fn run<T, F, Fut>(&self, what: &'static str, op: F) -> Result<T, BoxError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let limit = self.op_timeout;
        let unavailable = StoreUnavailable::new("redis", what);
        match tokio::time::timeout(limit, op(self.manager.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(unavailable.with_source(error).into()),
            Err(elapsed) => Err(unavailable.with_timeout(limit).with_source(elapsed).into()),
        }
    }

    /// A connection of its own for pub/sub, within the operation limit.
    pub(crate) async fn pubsub(&self) -> Result<redis::aio::PubSub, BoxError> {
        let limit = self.op_timeout;
        match tokio::time::timeout(limit, self.client.get_async_pubsub()).await {
            Ok(connected) => Ok(connected?),
            Err(elapsed) => Err(elapsed.into()),
        }
    }

    /// Runs `future` as a task of the store's runtime: work that must outlive its caller.
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        drop(self.runtime.spawn(future));
    }
}
