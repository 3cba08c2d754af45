//! [`Cutoff`]: the per-attempt limit a timeout layer above set, applied to a body read here.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep, sleep_until};
use towline_core::{AttemptLimit, BoxError, Elapsed, TimeoutPhase};

/// The attempt's limit (from `CallContext::attempt_limit`) while this layer reads a body.
///
/// A timeout layer above covers the head and this body read with one timer, and can only
/// say "head" when it fires: it cannot see that the head came long ago. So this layer ends the
/// read itself at the same instant, in the body phase. It wins deterministically: the timeout
/// layer polls its inner future (this one) before its own timer, and this cutoff compares the
/// clock with the limit on every poll instead of waiting for its own timer to be fired, so
/// the order in which the two timers fire at that instant does not matter.
pub(crate) struct Cutoff {
    limit: Option<AttemptLimit>,
    // Made the first time the read has to wait (most error bodies arrive with their head).
    timer: Option<Pin<Box<Sleep>>>,
}

impl Cutoff {
    pub(crate) fn new(limit: Option<AttemptLimit>) -> Self {
        Cutoff { limit, timer: None }
    }

    /// Called when the read is pending: `Ready` with the error once the limit has passed,
    /// otherwise `Pending` with a wake-up registered for the limit.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<BoxError> {
        let Some(limit) = self.limit else {
            return Poll::Pending;
        };
        let expired = || Box::new(Elapsed::new(limit.limit(), TimeoutPhase::Body)) as BoxError;
        if Instant::now() >= limit.until() {
            return Poll::Ready(expired());
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(sleep_until(limit.until())));
        timer.as_mut().poll(cx).map(|()| expired())
    }
}

impl std::fmt::Debug for Cutoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cutoff")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}
