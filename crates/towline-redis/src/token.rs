//! [`RedisTokenSource`]: one token per key for every replica, fetched by one of them at a time.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use redis::Script;
use tokio::time::Instant;
use towline_auth::{Token, TokenFuture, TokenSource};
use towline_core::BoxError;

use crate::connection::Redis;
use crate::policy::OnFailure;

/// The default lease of the replica that fetches: 30 s, the token layer's default fetch
/// timeout (`towline_auth::DEFAULT_FETCH_TIMEOUT`), so that a lease outlives the fetch it
/// guards; a holder that dies frees it at the latest then.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The default interval at which a replica waiting for another's fetch looks for the new
/// token: 25 ms, a fraction of a token endpoint's answer time, a few hundred cheap `GET`s
/// at most over the whole lease.
pub const DEFAULT_POLL: Duration = Duration::from_millis(25);

/// A token with no expiry is kept in Redis this long (1 h), then fetched again: no key lives
/// forever.
const NO_EXPIRY_TTL: Duration = Duration::from_secs(3600);

/// Reads the token, unless it is the one a 401 refused: then deletes it (only that one: a
/// newer token another replica stored meanwhile stays). KEYS: the token. ARGV: the refused
/// secret, or "". Answers `{value, pttl}` or nil.
static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local value = redis.call('GET', KEYS[1])
if not value then return nil end
local secret = string.match(value, '^e:%d+:(.*)$') or string.match(value, '^n:(.*)$')
if secret == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return nil
end
return {value, redis.call('PTTL', KEYS[1])}
",
    )
});

/// Stores the new token and gives the lease back if it is still this replica's. KEYS: the
/// token, the lease. ARGV: the value, its TTL in ms, the holder.
static STORE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return 1
",
    )
});

/// Gives the lease back if it is still this replica's. KEYS: the lease. ARGV: the holder.
static UNLEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// A [`TokenSource`] that shares the tokens of `S` through Redis: every replica with the same
/// Redis, prefix and name uses one token, and one replica at a time fetches a new one.
///
/// On a fetch (the token layer asks when it has no valid token, before one expires, or after
/// a 401):
///
/// 1. the token stored in `<prefix>token:<name>` is used while it is not due for
///    replacement (its TTL, counted by Redis, above `refresh_before` and above half its
///    lifetime); its expiry crosses as that TTL, so replicas' clocks do not matter;
/// 2. otherwise the replica takes the lease `<prefix>token:<name>:lease` (`SET NX PX`, with
///    an expiry, so a holder that dies frees it), fetches from `S`, stores the token with a
///    TTL of its lifetime and gives the lease back;
/// 3. a replica that finds the lease taken uses the stored token while it is still valid, or
///    waits for the new one, looking every [`DEFAULT_POLL`] (a bounded poll: the layer's
///    fetch timeout bounds the wait), and takes the lease itself if it is freed without one.
///
/// A 401 drops the stored token only if it is still the one that failed
/// ([`TokenSource::rejected`]): a late 401 for an old token never throws away the new one.
/// The token is never logged; `Debug` shows no token. While Redis does not answer, the
/// [`OnFailure`] policy decides: `Open` fetches from `S` for this replica alone, `Closed`
/// fails the fetch.
///
/// ```no_run
/// use std::time::Duration;
/// use towline_auth::{Token, TokenRefreshLayer, from_fn};
/// use towline_redis::{OnFailure, Redis, RedisTokenSource};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let login = from_fn(|| async { Token::new("t0k3n").map(|t| t.expires_in(Duration::from_secs(900))) });
/// let redis = Redis::open("redis://127.0.0.1:6379/").unwrap();
/// let shared = RedisTokenSource::new(login, redis, "attraqt:client-42", OnFailure::Closed);
/// let layer = TokenRefreshLayer::new(shared);
/// # let _ = layer;
/// # }
/// ```
pub struct RedisTokenSource<S> {
    source: S,
    redis: Redis,
    key: String,
    lease_key: String,
    policy: OnFailure,
    lease: Duration,
    poll: Duration,
    refresh_before: Duration,
    /// The secret a 401 refused, until a fetch has dropped it from Redis.
    rejected: Mutex<Option<String>>,
    /// Names this replica as a lease holder.
    holder: String,
}

impl<S> fmt::Debug for RedisTokenSource<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No token, no name (it may be a client id), no refused value.
        f.debug_struct("RedisTokenSource")
            .field("redis", &self.redis)
            .field("policy", &self.policy)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl<S: TokenSource> RedisTokenSource<S> {
    /// Shares the tokens of `source` under `name` (one per API key or client: the same name on
    /// every replica), with [`DEFAULT_LEASE`], [`DEFAULT_POLL`], and a replacement due 60 s
    /// before expiry (the token layer's default margin).
    pub fn new(source: S, redis: Redis, name: &str, policy: OnFailure) -> Self {
        let holder = format!(
            "{}-{:x}",
            std::process::id(),
            RandomState::new().build_hasher().finish()
        );
        RedisTokenSource {
            source,
            key: redis.key("token", name),
            lease_key: redis.key("token", &format!("{name}:lease")),
            redis,
            policy,
            lease: DEFAULT_LEASE,
            poll: DEFAULT_POLL,
            refresh_before: Duration::from_secs(60),
            rejected: Mutex::new(None),
            holder,
        }
    }

    /// How long the fetching replica holds the lease at most (at least 1 ms).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(1));
        self
    }

    /// How often a waiting replica looks for the new token (at least 1 ms).
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll.max(Duration::from_millis(1));
        self
    }

    /// A stored token is replaced once less than this is left of it (or less than half its
    /// lifetime): keep it at most the token layer's `refresh_margin`.
    pub fn refresh_before(mut self, margin: Duration) -> Self {
        self.refresh_before = margin;
        self
    }

    async fn fetch_shared(&self) -> Result<Token, BoxError> {
        match self.fetch_via_redis().await {
            Ok(token) => Ok(token),
            Err(error) if self.policy == OnFailure::Closed => Err(error),
            Err(error) => {
                tracing::warn!(%error, "redis token store unavailable: fetching for this replica alone");
                self.source.fetch().await
            }
        }
    }

    async fn fetch_via_redis(&self) -> Result<Token, BoxError> {
        let refused = self
            .rejected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        loop {
            let stored = self.read(refused.as_deref().unwrap_or("")).await?;
            // The refused token is gone from Redis now (or was never there).
            if refused.is_some() {
                let mut rejected = self.rejected.lock().unwrap_or_else(PoisonError::into_inner);
                if *rejected == refused {
                    *rejected = None;
                }
            }
            if let Some(stored) = &stored
                && !stored.due(self.refresh_before)
            {
                return Ok(stored.token.clone());
            }
            if self.take_lease().await? {
                // Another holder may have stored a new token between the read and the lease.
                let secret = refused.as_deref().unwrap_or("");
                if let Some(stored) = self.read(secret).await?
                    && !stored.due(self.refresh_before)
                {
                    self.unlease().await;
                    return Ok(stored.token);
                }
                return self.fetch_as_holder().await;
            }
            if let Some(stored) = stored {
                // Another replica is fetching its successor: this one is still good.
                return Ok(stored.token);
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn read(&self, refused: &str) -> Result<Option<Stored>, BoxError> {
        let (key, refused) = (self.key.clone(), refused.to_owned());
        let found: Option<(String, i64)> = self
            .redis
            .run("read the shared token", |mut c| async move {
                READ.key(key).arg(refused).invoke_async(&mut c).await
            })
            .await?;
        Ok(found.and_then(|(value, ttl)| Stored::decode(&value, ttl)))
    }

    async fn take_lease(&self) -> Result<bool, BoxError> {
        let (key, holder) = (self.lease_key.clone(), self.holder.clone());
        let lease = millis(self.lease);
        let taken: Option<String> = self
            .redis
            .run("take the token lease", |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(holder)
                    .arg("NX")
                    .arg("PX")
                    .arg(lease)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(taken.is_some())
    }

    /// Gives the lease back if it is still this replica's (a failure leaves it to expire).
    async fn unlease(&self) {
        let (key, holder) = (self.lease_key.clone(), self.holder.clone());
        let _ = self
            .redis
            .run("give the token lease back", |mut c| async move {
                UNLEASE
                    .key(key)
                    .arg(holder)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
    }

    async fn fetch_as_holder(&self) -> Result<Token, BoxError> {
        let token = match self.source.fetch().await {
            Ok(token) => token,
            Err(error) => {
                // Free the lease now rather than at its expiry: another replica may do better.
                self.unlease().await;
                return Err(error);
            }
        };
        let (value, ttl) = Stored::encode(&token);
        if ttl.is_zero() {
            return Ok(token);
        }
        let keys = [self.key.clone(), self.lease_key.clone()];
        let holder = self.holder.clone();
        let ttl = millis(ttl);
        let stored = self
            .redis
            .run("store the shared token", |mut c| async move {
                STORE
                    .key(&keys[..])
                    .arg(value)
                    .arg(ttl)
                    .arg(holder)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await;
        if let Err(error) = stored {
            // The token is good: use it here; the others fetch their own after the lease.
            tracing::warn!(%error, "redis token store: the new token was not shared");
        }
        Ok(token)
    }
}

impl<S: TokenSource> TokenSource for RedisTokenSource<S> {
    fn fetch(&self) -> TokenFuture<'_> {
        Box::pin(self.fetch_shared())
    }

    fn rejected(&self, token: &Token) {
        *self.rejected.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(token.secret().to_owned());
        self.source.rejected(token);
    }
}

/// A token as stored: `e:<lifetime ms>:<secret>` (it expires with the key's TTL) or
/// `n:<secret>` (it does not expire; the key lives [`NO_EXPIRY_TTL`]).
struct Stored {
    token: Token,
    /// Time left, by Redis's clock, and the lifetime it was stored with (`None`: no expiry).
    left: Duration,
    lifetime: Option<Duration>,
}

impl Stored {
    fn encode(token: &Token) -> (String, Duration) {
        match token.expiry() {
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                (format!("e:{}:{}", millis(left), token.secret()), left)
            }
            None => (format!("n:{}", token.secret()), NO_EXPIRY_TTL),
        }
    }

    fn decode(value: &str, ttl_ms: i64) -> Option<Stored> {
        let left = Duration::from_millis(u64::try_from(ttl_ms).ok()?);
        if let Some(secret) = value.strip_prefix("n:") {
            let token = Token::new(secret).ok()?;
            return Some(Stored {
                token,
                left,
                lifetime: None,
            });
        }
        let (lifetime, secret) = value.strip_prefix("e:")?.split_once(':')?;
        let lifetime = Duration::from_millis(lifetime.parse().ok()?);
        let token = Token::new(secret).ok()?.expires_in(left);
        Some(Stored {
            token,
            left,
            lifetime: Some(lifetime),
        })
    }

    /// Whether it should be replaced now: less than `margin` left, or less than half its
    /// lifetime (the token layer's own rule, so a short-lived token is not fetched on every
    /// call). A token without expiry is never due.
    fn due(&self, margin: Duration) -> bool {
        self.lifetime
            .is_some_and(|lifetime| self.left <= margin.min(lifetime / 2))
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
