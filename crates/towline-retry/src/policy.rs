//! [`RetryPolicy`]: what a [`RetryLayer`](crate::RetryLayer) retries, how often and how long.

use std::time::Duration;

use http::{HeaderName, Method, Request};
#[cfg(doc)]
use towline_core::{Deadline, RateLimited};

use crate::backoff::Backoff;
use crate::budget::RetryBudget;
use crate::classify::{Classify, StandardClassifier};

/// The default number of retries after the first attempt: 3 (4 attempts in all).
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// The default longest server-requested wait a retry will sleep: 60 s.
///
/// `Retry-After` values for overload are usually seconds; a longer wait (IXON keeps a tripped
/// limit for 10 minutes) is better served by failing fast with [`RateLimited`] and letting
/// the rate-limit layer hold every request to that key, than by one call sleeping for it.
pub const DEFAULT_MAX_HINT_WAIT: Duration = Duration::from_secs(60);

/// The `Idempotency-Key` header (IETF draft `httpapi-idempotency-key-header`, Stripe).
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// How a [`RetryLayer`](crate::RetryLayer) retries: every part replaceable, every default documented.
///
/// ```
/// use std::time::Duration;
/// use towline_retry::{Backoff, Jitter, RetryBudget, RetryLayer, RetryPolicy};
///
/// let policy = RetryPolicy::new()
///     .max_retries(5)
///     .backoff(Backoff::exponential(Duration::from_millis(50), 2.0, Duration::from_secs(2))?.jitter(Jitter::Equal))
///     .budget(RetryBudget::new(Duration::from_secs(10), 5, 0.1)?)
///     .max_total_delay(Duration::from_secs(20))
///     .add_idempotency_keys()
///     .seed(42);
/// let layer = RetryLayer::with_policy(policy);
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RetryPolicy<C = StandardClassifier> {
    pub(crate) classifier: C,
    pub(crate) backoff: Backoff,
    pub(crate) max_retries: u32,
    pub(crate) max_total_delay: Option<Duration>,
    pub(crate) max_hint_wait: Duration,
    pub(crate) budget: Option<RetryBudget>,
    pub(crate) seed: Option<u64>,
    pub(crate) add_idempotency_keys: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryPolicy {
    /// The standard policy: [`StandardClassifier`], [`DEFAULT_MAX_RETRIES`] retries,
    /// [`Backoff::default`] (100 ms doubling to 10 s, full jitter), [`RetryBudget::default`]
    /// (20 % + 10/s over 10 s), hints up to [`DEFAULT_MAX_HINT_WAIT`], no total-delay limit
    /// beyond the call's [`Deadline`], no idempotency keys added.
    pub fn new() -> Self {
        RetryPolicy {
            classifier: StandardClassifier::new(),
            backoff: Backoff::default(),
            max_retries: DEFAULT_MAX_RETRIES,
            max_total_delay: None,
            max_hint_wait: DEFAULT_MAX_HINT_WAIT,
            budget: Some(RetryBudget::default()),
            seed: None,
            add_idempotency_keys: false,
        }
    }
}

impl<C> RetryPolicy<C> {
    /// Decides what to retry with `classifier` instead.
    pub fn classifier<C2: Classify>(self, classifier: C2) -> RetryPolicy<C2> {
        RetryPolicy {
            classifier,
            backoff: self.backoff,
            max_retries: self.max_retries,
            max_total_delay: self.max_total_delay,
            max_hint_wait: self.max_hint_wait,
            budget: self.budget,
            seed: self.seed,
            add_idempotency_keys: self.add_idempotency_keys,
        }
    }

    /// At most `retries` retries after the first attempt.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The delays between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Stops retrying when the delays slept would add up to more than `limit`.
    pub fn max_total_delay(mut self, limit: Duration) -> Self {
        self.max_total_delay = Some(limit);
        self
    }

    /// The longest server-requested wait to sleep; a longer one fails fast with
    /// [`RateLimited`]. See [`DEFAULT_MAX_HINT_WAIT`].
    pub fn max_hint_wait(mut self, limit: Duration) -> Self {
        self.max_hint_wait = limit;
        self
    }

    /// Shares `budget` (usually a clone of one budget per upstream) between the calls.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// No retry budget: every retry the other limits allow happens.
    pub fn no_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// Seeds the jitter's random numbers, so delays repeat from run to run (tests, benches).
    /// Idempotency keys never come from this seed: they stay unique across processes.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Adds an `Idempotency-Key` (128 random bits, the same on every attempt) to POST and PATCH
    /// requests that have none, so that they may be retried after reaching the server. The
    /// server must honour the key (Stripe and others do). The key's random numbers are seeded
    /// per process by the operating system, never by [`seed`](RetryPolicy::seed), so two
    /// processes never send the same key.
    pub fn add_idempotency_keys(mut self) -> Self {
        self.add_idempotency_keys = true;
        self
    }
}

/// Methods RFC 9110 §9.2.2 defines as idempotent: sending them twice has the effect of once.
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Whether sending `request` twice is harmless: an idempotent method, or an idempotency key.
pub(crate) fn resend_after_sent<B>(request: &Request<B>) -> bool {
    is_idempotent(request.method()) || request.headers().contains_key(IDEMPOTENCY_KEY)
}
