//! Whether a call may go now, later, or not at all: the gate, then the quota.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep, sleep_until};
use towline_core::{BoxError, Deadline, DeadlineExceeded, RateLimitReason, RateLimited};

use crate::config::Config;
use crate::key::Key;
use crate::store::{GateStore, Reservation, Slot, StoreFuture};
use crate::time::after;

/// How long a call starting now may wait.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_wait: Duration,
    /// What is left of the call's deadline, if it has one.
    deadline: Option<Duration>,
}

impl Limits {
    fn new(config: &Config, now: Instant, deadline: Option<Deadline>) -> Self {
        Limits {
            max_wait: config.max_wait,
            deadline: deadline.map(|d| d.instant().saturating_duration_since(now)),
        }
    }

    /// The longest wait allowed: `max_wait`, or less if the deadline comes first.
    fn latest(&self) -> Duration {
        self.deadline
            .map_or(self.max_wait, |left| left.min(self.max_wait))
    }

    /// Why a gate closed for `closed` may not be waited for, if it may not. A wait of exactly
    /// `max_wait` is allowed; one that ends at the deadline is not (the call would go out
    /// with no time left).
    fn refuse(&self, closed: Duration) -> Option<RateLimitReason> {
        if closed > self.max_wait {
            Some(RateLimitReason::WaitTooLong)
        } else if self.deadline.is_some_and(|left| closed >= left) {
            Some(RateLimitReason::PastDeadline)
        } else {
            None
        }
    }
}

/// A quota slot held for a call not sent yet: given back to the store if the call is dropped
/// or refused before it goes.
pub(crate) struct SlotGuard {
    store: Arc<dyn GateStore>,
    key: Key,
    reservation: Reservation,
    kept: bool,
}

impl SlotGuard {
    /// The call went out: the slot is used.
    pub(crate) fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if !self.kept {
            self.store.release(self.key.as_str(), self.reservation);
        }
    }
}

/// Admission granted: wait this long from `at`, holding this slot (if paced).
pub(crate) struct Admitted {
    pub(crate) at: Instant,
    pub(crate) wait: Duration,
    pub(crate) slot: Option<SlotGuard>,
    /// Whether a closed gate (rather than the quota alone) set the wait.
    pub(crate) gate_closed: bool,
}

/// The lookups of one admission, in order: the gate, then (if paced) a quota slot.
pub(crate) struct Admit {
    now: Instant,
    limits: Limits,
    /// A slot held from an earlier admission (a request that waited and looks again).
    slot: Option<SlotGuard>,
    /// Whether the gate was found closed.
    gate_closed: bool,
    phase: Phase,
    bound: Bound,
}

/// The call's deadline, bounding a lookup that does not answer at once (a remote store):
/// its timer is made only when one is pending, so an in-memory store's calls make none.
struct Bound {
    deadline: Option<Deadline>,
    expiry: Option<Pin<Box<Sleep>>>,
}

impl Bound {
    /// The lookup's answer, or `Err` once the deadline passes while it is still pending: a
    /// store that does not answer (Redis down, its own timeout longer) never holds a call
    /// past its deadline.
    fn poll<T>(
        &mut self,
        lookup: &mut StoreFuture<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, BoxError>> {
        if let Poll::Ready(answer) = Pin::new(lookup).poll(cx) {
            return Poll::Ready(answer);
        }
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let expiry = self
            .expiry
            .get_or_insert_with(|| Box::pin(sleep_until(deadline.instant())));
        ready!(expiry.as_mut().poll(cx));
        Poll::Ready(Err(Box::new(DeadlineExceeded::new(deadline))))
    }
}

enum Phase {
    Gate(StoreFuture<Option<Duration>>),
    Slot(StoreFuture<Slot>),
}

impl Admit {
    /// Starts the admission of a call to `key` (again, for a request that waited, holding
    /// `slot`).
    pub(crate) fn new(
        config: &Config,
        key: &Key,
        deadline: Option<Deadline>,
        slot: Option<SlotGuard>,
    ) -> Self {
        let now = Instant::now();
        Admit {
            now,
            limits: Limits::new(config, now, deadline),
            slot,
            gate_closed: false,
            phase: Phase::Gate(config.store.closed_for(key.as_str())),
            bound: Bound {
                deadline,
                expiry: None,
            },
        }
    }

    /// Drives the lookups: `Ok` with when the call may go, or `Err` (a [`RateLimited`], or
    /// the store's error) if it may not wait that long.
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        config: &Config,
        key: &Key,
    ) -> Poll<Result<Admitted, BoxError>> {
        loop {
            match &mut self.phase {
                Phase::Gate(lookup) => {
                    let closed = ready!(self.bound.poll(lookup, cx))?;
                    let wait = match closed {
                        None => Duration::ZERO,
                        Some(closed) => {
                            if let Some(reason) = self.limits.refuse(closed) {
                                let until = after(self.now, closed);
                                return Poll::Ready(Err(RateLimited::new(until, reason).into()));
                            }
                            // A slot taken before the gate closed again is no longer the
                            // call's: give it back and queue after the gate.
                            self.slot = None;
                            self.gate_closed = true;
                            closed
                                .saturating_add(spread(config.spread))
                                .min(self.limits.latest())
                        }
                    };
                    match config.quota {
                        Some(quota) if self.slot.is_none() => {
                            let latest = self.limits.latest();
                            self.phase = Phase::Slot(config.store.reserve(
                                key.as_str(),
                                quota,
                                wait,
                                latest,
                            ));
                        }
                        _ => return Poll::Ready(Ok(self.admitted(wait))),
                    }
                }
                Phase::Slot(lookup) => match ready!(self.bound.poll(lookup, cx))? {
                    Slot::Reserved(reservation) => {
                        self.slot = Some(SlotGuard {
                            store: config.store.clone(),
                            key: key.clone(),
                            reservation,
                            kept: false,
                        });
                        return Poll::Ready(Ok(self.admitted(reservation.wait())));
                    }
                    Slot::Full { earliest } => {
                        let until = after(self.now, earliest);
                        let error = RateLimited::new(until, RateLimitReason::QuotaExhausted);
                        return Poll::Ready(Err(error.into()));
                    }
                },
            }
        }
    }

    fn admitted(&mut self, wait: Duration) -> Admitted {
        Admitted {
            // The store counted `wait` from its own now, which came after ours: counting it
            // from the answer's arrival never lets a call go before its slot.
            at: Instant::now(),
            wait,
            slot: self.slot.take(),
            gate_closed: self.gate_closed,
        }
    }
}

/// A uniform delay within `spread`, so a crowd held by one gate is released over a moment
/// rather than in one instant.
fn spread(spread: Duration) -> Duration {
    if spread.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}
