//! One key's circuit: its state machine and its sliding window of outcomes.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::time::Instant;
use towline_core::CircuitOpen;

use crate::registry::Entry;
use crate::settings::Settings;
use crate::state::CircuitState;
use crate::time::{FAR_FUTURE, after, nanos, nanos_since};
use crate::window::{BUCKETS, Window};

/// `closed_generation` while the circuit is not plainly closed.
const NOT_CLOSED: u64 = u64::MAX;

/// What a call was judged to be, for its circuit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The server answered: it is up.
    Success,
    /// The server failed (network, timeout, 5xx).
    Failure,
    /// Says nothing about the server's health (a 429, a call refused below, a cancelled call).
    Ignored,
}

/// What every circuit of a layer reads: the settings and what is derived from them once.
pub(crate) struct Policy {
    pub(crate) settings: Settings,
    pub(crate) origin: Instant,
    pub(crate) bucket_ns: u64,
    pub(crate) ratio_ppm: u64,
    /// Whether keys may be logged (authorities, not `key_by` keys).
    pub(crate) log_keys: bool,
}

impl Policy {
    /// `settings` must have been validated.
    pub(crate) fn new(settings: Settings, log_keys: bool) -> Self {
        Policy {
            bucket_ns: (nanos(settings.sampling_window) / BUCKETS as u64).max(1),
            ratio_ppm: settings.ratio_ppm(),
            origin: Instant::now(),
            settings,
            log_keys,
        }
    }
}

/// A key's circuit, shared by every call to that key.
pub(crate) struct Circuit {
    pub(crate) key: Arc<str>,
    policy: Arc<Policy>,
    /// The generation while closed, or [`NOT_CLOSED`]: a closed circuit admits a call with
    /// one atomic load, without its lock.
    closed_generation: AtomicU64,
    /// Outside the lock: a success while closed counts without it.
    window: Window,
    /// Failures in a row; a success resets it without the lock.
    consecutive: AtomicU32,
    inner: Mutex<Inner>,
}

struct Inner {
    phase: Phase,
    /// Bumped on every transition, so an outcome admitted under an older phase is ignored.
    generation: u64,
    /// Failed probes in a row since the circuit last closed: the break doubles with each.
    reopened: u32,
}

enum Phase {
    Closed,
    Open {
        until: Instant,
    },
    HalfOpen {
        since: Instant,
        in_flight: u32,
        successes: u32,
    },
    ForcedOpen,
}

impl Phase {
    /// The phase's name in the `towline.circuit.state` event.
    fn name(&self) -> &'static str {
        match self {
            Phase::Closed => "closed",
            Phase::Open { .. } => "open",
            Phase::HalfOpen { .. } => "half_open",
            Phase::ForcedOpen => "forced_open",
        }
    }
}

/// The `towline.circuit.state` event of a transition (level `$level`), one per transition.
/// The key is shown only when it is an authority (see `Circuit::shown_key`).
macro_rules! state_event {
    ($level:expr, $key:expr, $from:expr, $to:expr, $message:literal $(, $field:ident = $value:expr)?) => {
        tracing::event!(
            name: "towline.circuit.state",
            target: "towline::breaker",
            $level,
            towline.circuit.key = $key,
            towline.circuit.from = $from,
            towline.circuit.to = $to,
            $(towline.circuit.$field = $value,)?
            $message
        )
    };
}

/// What a circuit says to a call.
pub(crate) enum Admission {
    /// Send it; its outcome counts in the window of `generation`.
    Closed {
        generation: u64,
    },
    /// Send it as a probe of the half-open `generation`.
    Probe {
        generation: u64,
    },
    Refused(CircuitOpen),
}

impl Circuit {
    pub(crate) fn new(key: Arc<str>, policy: Arc<Policy>) -> Self {
        Circuit {
            key,
            policy,
            closed_generation: AtomicU64::new(0),
            window: Window::default(),
            consecutive: AtomicU32::new(0),
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                generation: 0,
                reopened: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a call may go now.
    pub(crate) fn admit(&self) -> Admission {
        let generation = self.closed_generation.load(Ordering::Acquire);
        if generation != NOT_CLOSED {
            return Admission::Closed { generation };
        }
        let now = Instant::now();
        let mut inner = self.lock();
        match &mut inner.phase {
            Phase::Closed => Admission::Closed {
                generation: inner.generation,
            },
            Phase::Open { until } if now < *until => {
                Admission::Refused(CircuitOpen::new(self.key.clone(), *until))
            }
            Phase::Open { .. } => {
                inner.phase = Phase::HalfOpen {
                    since: now,
                    in_flight: 1,
                    successes: 0,
                };
                inner.generation += 1;
                state_event!(
                    tracing::Level::INFO,
                    self.shown_key(),
                    "open",
                    "half_open",
                    "circuit half-open: a probe goes"
                );
                Admission::Probe {
                    generation: inner.generation,
                }
            }
            Phase::HalfOpen { in_flight, .. } if *in_flight < self.policy.settings.probes => {
                *in_flight += 1;
                Admission::Probe {
                    generation: inner.generation,
                }
            }
            Phase::HalfOpen { .. } => Admission::Refused(CircuitOpen::new(self.key.clone(), now)),
            Phase::ForcedOpen => {
                Admission::Refused(CircuitOpen::new(self.key.clone(), after(now, FAR_FUTURE)))
            }
        }
    }

    /// Counts the outcome of a call admitted under `generation` (as a probe or not).
    pub(crate) fn record(&self, generation: u64, probe: bool, verdict: Verdict) {
        if verdict == Verdict::Ignored && !probe {
            return;
        }
        let now = Instant::now();
        // A success while closed changes no phase: counted without the lock.
        if verdict == Verdict::Success
            && !probe
            && self.closed_generation.load(Ordering::Acquire) == generation
        {
            self.count_success(now);
            return;
        }
        let mut inner = self.lock();
        if inner.generation != generation {
            // Admitted before the last transition: what it says is about an older state.
            return;
        }
        let settings = &self.policy.settings;
        match &mut inner.phase {
            Phase::Closed => {
                if verdict != Verdict::Failure {
                    self.count_success(now);
                    return;
                }
                let bucket = self.policy.bucket(now);
                self.window.record(bucket, true);
                // A success may reset the run at any moment, without the lock: never overwrite it.
                let add = |run: u32| Some(run.saturating_add(1));
                let run =
                    match self
                        .consecutive
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, add)
                    {
                        Ok(before) | Err(before) => before.saturating_add(1),
                    };
                let (calls, failures) = self.window.totals(bucket);
                let by_ratio = calls >= u64::from(settings.min_throughput)
                    && failures * 1_000_000 >= self.policy.ratio_ppm * calls;
                let by_run = settings
                    .consecutive_failures
                    .is_some_and(|limit| run >= limit);
                if by_ratio || by_run {
                    self.open(&mut inner, now);
                }
            }
            Phase::HalfOpen {
                in_flight,
                successes,
                ..
            } => {
                *in_flight = in_flight.saturating_sub(1);
                match verdict {
                    Verdict::Ignored => {}
                    Verdict::Failure => {
                        inner.reopened = inner.reopened.saturating_add(1);
                        self.open(&mut inner, now);
                    }
                    Verdict::Success => {
                        *successes += 1;
                        if *successes >= settings.probes {
                            self.close(&mut inner);
                        }
                    }
                }
            }
            Phase::Open { .. } | Phase::ForcedOpen => {}
        }
    }

    /// Gives back the probe place of a call dropped before its outcome.
    pub(crate) fn cancel_probe(&self, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if let Phase::HalfOpen { in_flight, .. } = &mut inner.phase {
            *in_flight = in_flight.saturating_sub(1);
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant) {
        let pause = self.policy.settings.break_after(inner.reopened);
        let from = inner.phase.name();
        inner.phase = Phase::Open {
            until: after(now, pause),
        };
        self.transition(inner);
        state_event!(
            tracing::Level::WARN,
            self.shown_key(),
            from,
            "open",
            "circuit opened: calls fail fast until the break ends",
            break_ms = i64::try_from(pause.as_millis()).unwrap_or(i64::MAX)
        );
    }

    fn close(&self, inner: &mut Inner) {
        let from = inner.phase.name();
        inner.phase = Phase::Closed;
        inner.reopened = 0;
        self.transition(inner);
        self.closed_generation
            .store(inner.generation, Ordering::Release);
        // A closed circuit closed by hand only starts its counts afresh: no transition.
        if from != "closed" {
            state_event!(
                tracing::Level::INFO,
                self.shown_key(),
                from,
                "closed",
                "circuit closed"
            );
        }
    }

    fn count_success(&self, now: Instant) {
        self.window.record(self.policy.bucket(now), false);
        if self.consecutive.load(Ordering::Relaxed) != 0 {
            self.consecutive.store(0, Ordering::Relaxed);
        }
    }

    /// A new phase: counts start afresh, older calls' outcomes no longer count.
    fn transition(&self, inner: &mut Inner) {
        inner.generation += 1;
        self.window.clear();
        self.consecutive.store(0, Ordering::Relaxed);
        self.closed_generation.store(NOT_CLOSED, Ordering::Release);
    }

    /// Holds the circuit open until [`force_closed`](Self::force_closed).
    pub(crate) fn force_open(&self) {
        let mut inner = self.lock();
        let from = inner.phase.name();
        inner.phase = Phase::ForcedOpen;
        self.transition(&mut inner);
        if from != "forced_open" {
            state_event!(
                tracing::Level::WARN,
                self.shown_key(),
                from,
                "forced_open",
                "circuit forced open"
            );
        }
    }

    /// Closes the circuit now, with fresh counts and the first break.
    pub(crate) fn force_closed(&self) {
        let mut inner = self.lock();
        self.close(&mut inner);
    }

    /// What the circuit is doing now.
    pub(crate) fn state(&self) -> CircuitState {
        let now = Instant::now();
        let inner = self.lock();
        match inner.phase {
            Phase::Closed => {
                let (calls, failures) = self.window.totals(self.policy.bucket(now));
                CircuitState::Closed { calls, failures }
            }
            Phase::Open { until } => CircuitState::Open { until },
            Phase::HalfOpen { in_flight, .. } => CircuitState::HalfOpen {
                probes_in_flight: in_flight,
            },
            Phase::ForcedOpen => CircuitState::ForcedOpen,
        }
    }

    /// Whether forgetting this circuit loses nothing: closed with an empty window, or open
    /// (or half-open with no probe out) for a whole window past its break, nobody calling.
    pub(crate) fn is_idle(&self, now: Instant) -> bool {
        let inner = self.lock();
        let window = self.policy.settings.sampling_window;
        match inner.phase {
            Phase::Closed => self.window.is_empty(self.policy.bucket(now)),
            Phase::Open { until } => after(until, window) <= now,
            Phase::HalfOpen {
                since, in_flight, ..
            } => in_flight == 0 && after(since, window) <= now,
            Phase::ForcedOpen => false,
        }
    }

    /// The key for a log line: only when it is an authority, never a `key_by` key (it may be a
    /// secret).
    fn shown_key(&self) -> &str {
        if self.policy.log_keys {
            &self.key
        } else {
            "<redacted>"
        }
    }
}

impl Entry for Circuit {
    type Policy = Policy;
    const FULL: &'static str =
        "circuit breaker full of busy keys: a new key's calls are not watched";

    fn new(key: Arc<str>, policy: Arc<Policy>) -> Self {
        Circuit::new(key, policy)
    }

    fn is_idle(entry: &Arc<Self>, now: Instant) -> bool {
        entry.is_idle(now)
    }
}

impl Policy {
    /// The bucket `now` falls in.
    pub(crate) fn bucket(&self, now: Instant) -> u64 {
        nanos_since(self.origin, now) / self.bucket_ns
    }
}
