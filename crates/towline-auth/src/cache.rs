//! The token cache shared by a layer's clones: one fetch at a time, owned by the cache.
//!
//! A fetch runs in a task of its own (`tokio::spawn`), bounded by the fetch timeout, and
//! publishes its outcome on a `watch` channel. Callers only subscribe: dropping one (its own
//! deadline, a `select!`) cancels nothing and starts nothing, and a caller that is never
//! polled again cannot hold up the others.

use std::error::Error as StdError;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tokio::sync::watch;
use tokio::time::Instant;
use towline_core::{AuthError, AuthReason, BoxError, classify};

use crate::token::InvalidToken;
use crate::token::{Token, TokenSource};

/// The first wait before a failed background refresh is tried again; it doubles per failure.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between background refresh attempts.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The token in use, ready to attach.
pub(crate) struct Current {
    /// `"<scheme> <secret>"` (or the bare secret), marked sensitive.
    pub(crate) header: HeaderValue,
    /// From here on, a call still uses the token but starts a background refresh.
    refresh_at: Option<Instant>,
    /// From here on, the token is no longer used: calls wait for a new one.
    expires_at: Option<Instant>,
    /// Which fetch produced it: a 401 for an older generation just replays.
    pub(crate) generation: u64,
    /// The token itself, to tell the source which one a 401 refused.
    token: Token,
}

impl Current {
    fn is_valid(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

/// What a call does after looking at the cache.
enum Next {
    Use(Arc<Current>),
    Wait(Subscription),
}

/// Why a token is fetched: the `towline.auth.reason` of the `towline.auth.refresh` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    /// No token was ever fetched (or none was ever fetched successfully).
    Initial,
    /// The token is inside its refresh margin, still in use: a background refresh.
    Expiring,
    /// The token expired: calls wait for the new one.
    Expired,
    /// A 401 refused the token.
    Rejected,
}

impl Why {
    fn name(self) -> &'static str {
        match self {
            Why::Initial => "initial",
            Why::Expiring => "expiring",
            Why::Expired => "expired",
            Why::Rejected => "rejected",
        }
    }
}

/// What a fetch hands its subscribers: the token, or why there is none.
type Outcome = Result<Arc<Current>, Arc<dyn StdError + Send + Sync>>;

/// The subscriber's end of a fetch: `None` until the fetch ends.
type Subscription = watch::Receiver<Option<Outcome>>;

struct State {
    current: Option<Arc<Current>>,
    generation: u64,
    /// The fetch in flight, if any: callers subscribe instead of fetching again.
    inflight: Option<Subscription>,
    /// Background refreshes that failed in a row, for the backoff.
    failures: u32,
    /// No background refresh before this instant (after a failed one).
    retry_at: Option<Instant>,
}

pub(crate) struct Cache {
    source: Box<dyn TokenSource>,
    pub(crate) header_name: HeaderName,
    scheme: Option<String>,
    margin: Duration,
    fetch_timeout: Duration,
    state: Mutex<State>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No token here, ever.
        f.debug_struct("TokenCache")
            .field("header", &self.header_name)
            .field("scheme", &self.scheme)
            .field("margin", &self.margin)
            .field("fetch_timeout", &self.fetch_timeout)
            .finish_non_exhaustive()
    }
}

impl Cache {
    pub(crate) fn new(
        source: Box<dyn TokenSource>,
        header_name: HeaderName,
        scheme: Option<String>,
        margin: Duration,
        fetch_timeout: Duration,
    ) -> Self {
        Cache {
            source,
            header_name,
            scheme,
            margin,
            fetch_timeout,
            state: Mutex::new(State {
                current: None,
                generation: 0,
                inflight: None,
                failures: 0,
                retry_at: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The header value and generation of the cached token while it is valid: the fast path,
    /// no waiting. Inside the refresh margin it also starts one background refresh (unless
    /// one is in flight or a failed one is backing off). Copies just those two under the
    /// lock: cloning the `Arc<Current>` would cost two more atomic operations per call.
    pub(crate) fn fresh(self: &Arc<Self>) -> Option<(HeaderValue, u64)> {
        let mut state = self.lock();
        let current = state.current.as_ref()?;
        // The clock is read only for a token that expires.
        let Some(refresh_at) = current.refresh_at else {
            return Some((current.header.clone(), current.generation));
        };
        let now = Instant::now();
        if now < refresh_at {
            return Some((current.header.clone(), current.generation));
        }
        if !current.is_valid(now) {
            return None;
        }
        let found = (current.header.clone(), current.generation);
        let due = state.retry_at.is_none_or(|at| now >= at);
        if state.inflight.is_none() && due {
            // Without a runtime to run it on, the next call inside the margin tries again.
            if let Ok((flight, _)) = self.begin_fetch(&mut state, Why::Expiring) {
                drop(state);
                flight.spawn();
            }
        }
        Some(found)
    }

    /// A valid token newer than generation `stale` (or any valid one if `stale` is `None`):
    /// the cached one, or the outcome of the fetch in flight or of a new one.
    ///
    /// Cancel-safe: its one await only watches the fetch, which belongs to the cache.
    pub(crate) async fn refresh(
        self: Arc<Self>,
        stale: Option<u64>,
    ) -> Result<Arc<Current>, BoxError> {
        let mut subscription = match self.subscribe(stale)? {
            Next::Use(current) => return Ok(current),
            Next::Wait(subscription) => subscription,
        };
        let outcome = match subscription.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            // The fetch task was dropped unfinished (its runtime shut down, or the source
            // panicked): say so rather than fetch again in a loop.
            Err(_) => None,
        };
        match outcome {
            Some(Ok(current)) => Ok(current),
            Some(Err(error)) => Err(source_failed(Box::new(Shared(error)))),
            None => Err(source_failed(
                "the token fetch ended without an outcome".into(),
            )),
        }
    }

    /// Decides under the lock: the token to use now, or the fetch to wait for (started if
    /// there is none).
    fn subscribe(self: &Arc<Self>, stale: Option<u64>) -> Result<Next, BoxError> {
        let mut state = self.lock();
        let why = if let Some(current) = &state.current {
            match stale {
                // The token that failed is still cached: drop it, so that no other call sends
                // it, and fetch (or join the fetch in flight).
                Some(stale) if current.generation == stale => {
                    self.source.rejected(&current.token);
                    state.current = None;
                    Why::Rejected
                }
                // A newer token came meanwhile (a late 401 for an old one): just use it.
                _ if current.is_valid(Instant::now()) => return Ok(Next::Use(current.clone())),
                _ => Why::Expired,
            }
        } else if state.generation > 0 {
            // Only a 401 empties the cache once a token was fetched: the fetch after it failed.
            Why::Rejected
        } else {
            Why::Initial
        };
        if let Some(subscription) = &state.inflight {
            return Ok(Next::Wait(subscription.clone()));
        }
        let (flight, subscription) = self.begin_fetch(&mut state, why)?;
        drop(state);
        flight.spawn();
        Ok(Next::Wait(subscription))
    }

    /// Marks a fetch in flight in `state`. The caller spawns it once the lock is released:
    /// a runtime that is shutting down drops the task at once, and its drop takes the lock.
    fn begin_fetch(
        self: &Arc<Self>,
        state: &mut State,
        why: Why,
    ) -> Result<(Flight, Subscription), BoxError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| source_failed("no tokio runtime to run the token fetch on".into()))?;
        let (sender, subscription) = watch::channel(None);
        state.inflight = Some(subscription.clone());
        // The refresh event goes in the span of the call that waits for this fetch (which
        // keeps that span open until the fetch ends, at most the fetch timeout if the call is
        // dropped first). A background refresh keeps no call waiting, nor its span open.
        let span = match why {
            Why::Expiring => tracing::Span::none(),
            _ => tracing::Span::current(),
        };
        let flight = Flight {
            cache: self.clone(),
            sender: Some(sender),
            runtime: Some(runtime),
            why,
            started: Instant::now(),
            span,
        };
        Ok((flight, subscription))
    }

    fn header_for(&self, secret: &str) -> Result<HeaderValue, BoxError> {
        let text = match &self.scheme {
            Some(scheme) => format!("{scheme} {secret}"),
            None => secret.to_owned(),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| InvalidToken::NotVisibleAscii)?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// When a token fetched `now` and expiring at `expires_at` should be replaced: `margin`
    /// before it expires, but never before half its lifetime from `now`, so that a token
    /// shorter-lived than the margin is not fetched again on every call.
    fn refresh_at(&self, now: Instant, expires_at: Instant) -> Instant {
        let half_life = expires_at.saturating_duration_since(now) / 2;
        expires_at
            .checked_sub(self.margin.min(half_life))
            .unwrap_or(now)
    }
}

/// The one fetch in flight, run as a task of its own. Dropped unfinished (its runtime shut
/// down, or the source panicked), it clears the in-flight mark, so that the next call fetches
/// again, and its subscribers see the channel close.
struct Flight {
    cache: Arc<Cache>,
    /// `None` once the outcome is published.
    sender: Option<watch::Sender<Option<Outcome>>>,
    /// Where to spawn it; taken when spawned.
    runtime: Option<tokio::runtime::Handle>,
    why: Why,
    started: Instant,
    /// The parent of the refresh event: the waiting call's span, or none.
    span: tracing::Span,
}

impl Flight {
    fn spawn(mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Detached: the fetch belongs to the cache, not to whoever started it.
            drop(runtime.spawn(self.run()));
        }
    }

    async fn run(mut self) {
        let timeout = self.cache.fetch_timeout;
        let fetched = tokio::time::timeout(timeout, self.cache.source.fetch()).await;
        let token = match fetched {
            Ok(token) => token,
            Err(elapsed) => Err(Box::new(FetchTimedOut { timeout, elapsed }) as BoxError),
        };
        self.finish(token);
    }

    /// Stores the token (or the backoff after a failure), clears the in-flight mark and
    /// tells the subscribers, in that order: a caller that comes after the mark is cleared
    /// finds the new token.
    fn finish(&mut self, token: Result<Token, BoxError>) {
        let cache = &self.cache;
        let token = token.and_then(|token| Ok((cache.header_for(token.secret())?, token)));
        let now = Instant::now();
        // Once per fetch, whoever waits for it; the reason, the time and how it ended, never
        // the token.
        tracing::event!(
            name: "towline.auth.refresh",
            target: "towline::auth",
            parent: self.span.id(),
            tracing::Level::INFO,
            towline.auth.reason = self.why.name(),
            towline.auth.duration_ms =
                i64::try_from(now.saturating_duration_since(self.started).as_millis())
                    .unwrap_or(i64::MAX),
            towline.auth.outcome = match &token {
                Ok(_) => "ok",
                Err(error) => classify(error).name(),
            },
            "token refresh ended"
        );
        // Let go of the call's span before its caller hears: the call's span must end with
        // the call, not when this task is dropped a moment later.
        self.span = tracing::Span::none();
        let mut state = cache.lock();
        state.inflight = None;
        let outcome: Outcome = match token {
            Ok((header, token)) => {
                let expires_at = token.expiry();
                state.generation += 1;
                state.failures = 0;
                state.retry_at = None;
                let current = Arc::new(Current {
                    header,
                    refresh_at: expires_at.map(|at| cache.refresh_at(now, at)),
                    expires_at,
                    generation: state.generation,
                    token,
                });
                state.current = Some(current.clone());
                Ok(current)
            }
            Err(error) => {
                state.failures = state.failures.saturating_add(1);
                let wait = retry_wait(state.failures);
                // Never past the expiry: from there on, calls fetch (and wait) themselves.
                let expires_at = state.current.as_ref().and_then(|c| c.expires_at);
                let retry_at = saturating_add(now, wait);
                let retry_at = expires_at.map_or(retry_at, |at| retry_at.min(at));
                state.retry_at = Some(retry_at);
                // The generation and the error, never the token (source errors do not quote it).
                tracing::warn!(
                    generation = state.current.as_ref().map(|c| c.generation),
                    failures = state.failures,
                    retry_in = ?retry_at.saturating_duration_since(now),
                    error = %error,
                    "token fetch failed",
                );
                Err(Arc::from(error))
            }
        };
        drop(state);
        if let Some(sender) = self.sender.take() {
            sender.send_replace(Some(outcome));
        }
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        // Unfinished: no other fetch can have started while the mark was ours.
        if self.sender.is_some() {
            self.cache.lock().inflight = None;
        }
    }
}

/// How long to wait before background refresh attempt `failures + 1`: 1 s, doubling, capped.
fn retry_wait(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    RETRY_FIRST.saturating_mul(1 << doublings).min(RETRY_MAX)
}

/// `now + wait`, or about 30 years from now when that overflows (tokio's own "far future").
fn saturating_add(now: Instant, wait: Duration) -> Instant {
    const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);
    now.checked_add(wait)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}

fn source_failed(error: BoxError) -> BoxError {
    Box::new(AuthError::new(AuthReason::SourceFailed).with_source(error))
}

/// The token fetch took longer than the fetch timeout; the source is tokio's `Elapsed`.
#[derive(Debug)]
struct FetchTimedOut {
    timeout: Duration,
    elapsed: tokio::time::error::Elapsed,
}

impl fmt::Display for FetchTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the token fetch took longer than {:?}", self.timeout)
    }
}

impl StdError for FetchTimedOut {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.elapsed)
    }
}

/// A fetch's error, shared by its subscribers: it shows as the error itself (its message and
/// its source), once per subscriber.
struct Shared(Arc<dyn StdError + Send + Sync>);

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl StdError for Shared {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}
