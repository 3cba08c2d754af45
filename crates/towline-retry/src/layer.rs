//! [`RetryLayer`] and the configuration its services share.

use std::fmt;
use std::sync::{Arc, Mutex};

use tower::Layer;
#[cfg(doc)]
use towline_core::{Attempts, CredentialsRefreshed, Deadline, Resend};

use crate::budget::RetryBudget;
use crate::classify::StandardClassifier;
use crate::policy::RetryPolicy;
use crate::service::Retry;
use crate::shared::Shared;

/// Retries failed attempts: jittered backoff, a retry budget, idempotency rules, server wait
/// hints, the call's [`Deadline`], and request-body replay.
///
/// One layer value is one policy domain: its services and their clones share the budget and
/// the random numbers. See the crate docs for an example.
///
/// While it holds a copy of the request, it promises the layers below, in the request's
/// `CallContext`, to send an attempt again after a credentials refresh ([`Resend::OnRefresh`]):
/// a token-refresh layer then keeps no copy of its own and, after a refresh on a 401, ends the
/// attempt with [`CredentialsRefreshed`]. That resend goes out at once, once per attempt,
/// without spending the budget or counting as a retry ([`Attempts::replays`] counts it).
#[derive(Clone)]
pub struct RetryLayer<C = StandardClassifier> {
    shared: Arc<Shared<C>>,
}

impl<C> fmt::Debug for RetryLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RetryLayer").field(&self.shared).finish()
    }
}

impl Default for RetryLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryLayer {
    /// The standard policy ([`RetryPolicy::new`]).
    pub fn new() -> Self {
        Self::with_policy(RetryPolicy::new())
    }
}

impl<C> RetryLayer<C> {
    /// Retries as `policy` says.
    pub fn with_policy(policy: RetryPolicy<C>) -> Self {
        let rng = match policy.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        RetryLayer {
            shared: Arc::new(Shared {
                policy,
                rng: Mutex::new(rng),
            }),
        }
    }
}

impl<C> RetryLayer<C> {
    /// The retry budget its services share, if its policy has one: give it to a
    /// [`HedgeLayer`](crate::HedgeLayer) below, so that hedges and retries spend one budget.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_retry::{HedgeLayer, RetryLayer};
    ///
    /// let retry = RetryLayer::new();
    /// let budget = retry.budget().expect("the standard policy has a budget").clone();
    /// let hedge = HedgeLayer::after(Duration::from_millis(200)).budget(budget);
    /// # let _ = hedge;
    /// ```
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.shared.policy.budget.as_ref()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared<C>> {
        &self.shared
    }
}

impl<S, C> Layer<S> for RetryLayer<C> {
    type Service = Retry<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            shared: self.shared.clone(),
        }
    }
}
