//! [`OnFailure`]: what a store does while Redis cannot answer.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};

use towline_ratelimit::Quota;

/// What a shared store does when Redis does not answer within its time limit (down, slow,
/// refusing): every operation is bounded, so a call never hangs on Redis either way.
///
/// ```
/// use std::num::NonZeroU32;
/// use towline_redis::OnFailure;
///
/// // Eight replicas share the key: each keeps an eighth of the quota while Redis is away.
/// let open = OnFailure::Open { replicas: NonZeroU32::new(8).unwrap() };
/// assert_ne!(open, OnFailure::Closed);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OnFailure {
    /// Keep calling, from state in this process: gates closed by this replica's own
    /// responses, and the quota divided by `replicas` (at least one call per window each),
    /// so that the replicas together stay within it while each counts alone. Sharing resumes
    /// as soon as Redis answers again.
    Open {
        /// How many replicas share the quota.
        replicas: NonZeroU32,
    },
    /// Fail the call, unsent, with [`StoreUnavailable`](towline_core::StoreUnavailable):
    /// for a quota that must never be exceeded, even at the cost of calls while Redis is away.
    Closed,
}

impl OnFailure {
    /// The quota one replica keeps alone while failing open.
    pub(crate) fn local_quota(&self, quota: Quota) -> Quota {
        match self {
            OnFailure::Open { replicas } => {
                Quota::new((quota.calls() / replicas.get()).max(1), quota.per())
            }
            OnFailure::Closed => quota,
        }
    }
}

/// Whether Redis failed last time: logs once when it goes away and once when it is back,
/// not on every call in between.
#[derive(Debug, Default)]
pub(crate) struct Health {
    down: AtomicBool,
}

impl Health {
    pub(crate) fn failed(&self, policy: OnFailure, error: &dyn std::error::Error) {
        if !self.down.swap(true, Ordering::Relaxed) {
            let policy = match policy {
                OnFailure::Open { .. } => "failing open: local state, divided quota",
                OnFailure::Closed => "failing closed: calls fail unsent",
            };
            tracing::warn!(%error, policy, "redis store unavailable");
        }
    }

    pub(crate) fn answered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("redis store answers again: state shared again");
        }
    }
}
