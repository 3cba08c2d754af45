//! [`Shared`]: what a retry layer's services and their futures share.

use std::fmt;
use std::sync::Mutex;

use crate::policy::RetryPolicy;

/// The configuration a layer's services share.
pub(crate) struct Shared<C> {
    pub(crate) policy: RetryPolicy<C>,
    /// The jitter's random numbers (seedable, for reproducible delays).
    pub(crate) rng: Mutex<fastrand::Rng>,
}

impl<C> fmt::Debug for Shared<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_retries", &self.policy.max_retries)
            .field("backoff", &self.policy.backoff)
            .field("budget", &self.policy.budget)
            .finish_non_exhaustive()
    }
}
