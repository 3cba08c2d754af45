//! [`Timeline`]: what the resilience layers did during each call, drawn from the same spans
//! and events the exporters see.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::fields::Fields;
use crate::names;

/// The most finished calls a [`Timeline`] keeps (the most recent).
pub const TIMELINE_CALLS: usize = 1_000;
/// The most entries one call's timeline keeps (the first ones; retries are bounded anyway).
pub const TIMELINE_ENTRIES: usize = 64;

/// A [`tracing_subscriber::Layer`] that keeps, for each finished call, a compact timeline:
/// each attempt with its start, duration and outcome, each retry with its reason and delay,
/// each wait at a gate, each token refresh it waited for and each change of its circuit.
/// For examples, tests and debugging: it keeps
/// the last [`TIMELINE_CALLS`] calls in memory until [`take`](Self::take)n.
///
/// It reads the spans of [`CallSpanLayer`](crate::CallSpanLayer) and
/// [`AttemptSpanLayer`](crate::AttemptSpanLayer) and towline's decision events (see
/// [`names`](crate::names)); times are on tokio's clock.
///
/// ```
/// use http::{Request, Response};
/// use tower::{BoxError, ServiceBuilder, ServiceExt};
/// use tracing_subscriber::layer::SubscriberExt;
/// use towline_telemetry::{AttemptSpanLayer, CallSpanLayer, Timeline};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let timeline = Timeline::new();
/// let _guard =
///     tracing::subscriber::set_default(tracing_subscriber::registry().with(timeline.clone()));
///
/// let client = ServiceBuilder::new()
///     .layer(CallSpanLayer::new())
///     .layer(AttemptSpanLayer::new())
///     .service_fn(|_: Request<()>| async { Ok::<_, BoxError>(Response::new(())) });
/// client.oneshot(Request::get("http://api.example/").body(()).unwrap()).await.unwrap();
///
/// let calls = timeline.take();
/// assert_eq!(calls.len(), 1);
/// assert_eq!(calls[0].outcome, "200");
/// println!("{}", calls[0]);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Timeline {
    calls: Arc<Mutex<VecDeque<CallTimeline>>>,
}

impl fmt::Debug for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeline").finish_non_exhaustive()
    }
}

impl Timeline {
    /// An empty timeline; add it to a subscriber (clones share what it keeps).
    pub fn new() -> Self {
        Timeline::default()
    }

    /// The calls finished since the last `take`, oldest first.
    pub fn take(&self) -> Vec<CallTimeline> {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        calls.drain(..).collect()
    }
}

/// One finished call, as [`Timeline`] saw it. Its `Display` is a few lines for a person.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CallTimeline {
    /// The request method.
    pub method: String,
    /// The host called.
    pub server: String,
    /// The final status (`"200"`) or error type (`"deadline_exceeded"`).
    pub outcome: String,
    /// From the call's start to its end.
    pub duration: Duration,
    /// What happened, in order.
    pub entries: Vec<Entry>,
}

/// One thing that happened during a call, `at` this long after it started.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Entry {
    /// Since the call started.
    pub at: Duration,
    /// What happened.
    pub what: Happening,
}

/// What happened: an attempt, or a decision of a resilience layer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Happening {
    /// A request was sent; `outcome` is its status or error type.
    Attempt {
        /// 1 for the first request of the call.
        number: u32,
        /// The status (`"503"`) or error type.
        outcome: String,
        /// Until its response head (or error).
        took: Duration,
    },
    /// The retry layer decided to send the request again.
    Retry {
        /// The reason (`"503"`, `"timeout"`, ...).
        reason: String,
        /// How long it waits first.
        delay: Duration,
    },
    /// The retry budget refused a retry.
    BudgetRefused,
    /// A hedge went out: a second copy of the request, its first attempt being slow.
    Hedge {
        /// How long the first attempt had run.
        after: Duration,
    },
    /// The call was held at a rate-limit gate.
    GateWait {
        /// `"closed"` or `"quota"`.
        reason: String,
        /// How long it is held.
        wait: Duration,
    },
    /// The token was fetched, and the call waited for it; the entry is at the fetch's start.
    TokenRefresh {
        /// `"initial"`, `"expired"` or `"rejected"` (a background `"expiring"` refresh keeps
        /// no call waiting and is in no call's timeline).
        reason: String,
        /// `"ok"`, or the error's kind.
        outcome: String,
        /// How long the fetch took.
        took: Duration,
    },
    /// The call's circuit changed state (its outcome opened or closed it, or it was the
    /// probe of a half-open circuit).
    CircuitChange {
        /// `"closed"`, `"open"`, `"half_open"` or `"forced_open"`.
        from: String,
        /// The state entered, named as `from`.
        to: String,
        /// When it opens: how long calls fail fast.
        break_for: Option<Duration>,
    },
}

impl fmt::Display for CallTimeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {} in {} ms",
            self.method,
            self.server,
            self.outcome,
            self.duration.as_millis()
        )?;
        for entry in &self.entries {
            write!(f, "\n  {:>7} ms  ", entry.at.as_millis())?;
            match &entry.what {
                Happening::Attempt {
                    number,
                    outcome,
                    took,
                } => write!(f, "attempt {number} -> {outcome} ({} ms)", took.as_millis())?,
                Happening::Retry { reason, delay } => {
                    write!(f, "retry after {reason}, in {} ms", delay.as_millis())?
                }
                Happening::BudgetRefused => f.write_str("retry refused by the budget")?,
                Happening::Hedge { after } => write!(
                    f,
                    "hedge sent, the first attempt slow for {} ms",
                    after.as_millis()
                )?,
                Happening::GateWait { reason, wait } => {
                    write!(f, "held at the gate ({reason}) for {} ms", wait.as_millis())?
                }
                Happening::TokenRefresh {
                    reason,
                    outcome,
                    took,
                } => write!(
                    f,
                    "token refresh ({reason}) -> {outcome} ({} ms)",
                    took.as_millis()
                )?,
                Happening::CircuitChange {
                    from,
                    to,
                    break_for,
                } => {
                    write!(f, "circuit {from} -> {to}")?;
                    if let Some(pause) = break_for {
                        write!(f, " for {} ms", pause.as_millis())?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A call in flight, kept in its span.
struct Call {
    start: Instant,
    fields: Fields,
    entries: Vec<Entry>,
    attempts: u32,
}

impl Call {
    fn push(&mut self, at: Instant, what: Happening) {
        if self.entries.len() < TIMELINE_ENTRIES {
            self.entries.push(Entry {
                at: at.saturating_duration_since(self.start),
                what,
            });
        }
    }
}

/// An attempt in flight, kept in its span: when it started and its call's span.
struct Attempt {
    start: Instant,
    call: Id,
    fields: Fields,
}

/// The call span `id` is in (itself included), if any.
fn call_of<S>(ctx: &Context<'_, S>, id: &Id) -> Option<Id>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let span = ctx.span(id)?;
    span.scope()
        .find(|span| span.name() == names::CALL_SPAN)
        .map(|span| span.id())
}

impl<S> tracing_subscriber::Layer<S> for Timeline
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let name = attrs.metadata().name();
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        if name == names::CALL_SPAN {
            attrs.record(&mut fields);
            span.extensions_mut().insert(Call {
                start: Instant::now(),
                fields,
                entries: Vec::new(),
                attempts: 0,
            });
        } else if name == names::ATTEMPT_SPAN
            && let Some(call) = call_of(&ctx, id)
        {
            attrs.record(&mut fields);
            span.extensions_mut().insert(Attempt {
                start: Instant::now(),
                call,
                fields,
            });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(call) = extensions.get_mut::<Call>() {
            values.record(&mut call.fields);
        } else if let Some(attempt) = extensions.get_mut::<Attempt>() {
            values.record(&mut attempt.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let name = event.metadata().name();
        if !matches!(
            name,
            names::RETRY_EVENT
                | names::BUDGET_REFUSED_EVENT
                | names::GATE_WAIT_EVENT
                | names::AUTH_REFRESH_EVENT
                | names::CIRCUIT_STATE_EVENT
                | names::HEDGE_EVENT
        ) {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(call) = scope
            .into_iter()
            .find(|span| span.name() == names::CALL_SPAN)
        else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let unknown = || "?".to_owned();
        let reason = fields.reason.unwrap_or_else(unknown);
        let delay = Duration::from_millis(fields.delay_ms.unwrap_or(0));
        let mut at = Instant::now();
        let what = match name {
            names::RETRY_EVENT => Happening::Retry { reason, delay },
            names::BUDGET_REFUSED_EVENT => Happening::BudgetRefused,
            names::HEDGE_EVENT => Happening::Hedge { after: delay },
            names::GATE_WAIT_EVENT => Happening::GateWait {
                reason,
                wait: delay,
            },
            names::AUTH_REFRESH_EVENT => {
                // Said when the fetch ends; placed where it began, as an attempt is.
                at = at.checked_sub(delay).unwrap_or(at);
                Happening::TokenRefresh {
                    reason,
                    outcome: fields.refresh_outcome.unwrap_or_else(unknown),
                    took: delay,
                }
            }
            _ => Happening::CircuitChange {
                from: fields.circuit_from.unwrap_or_else(unknown),
                to: fields.circuit_to.unwrap_or_else(unknown),
                break_for: fields.delay_ms.map(Duration::from_millis),
            },
        };
        if let Some(call) = call.extensions_mut().get_mut::<Call>() {
            call.push(at, what);
            call.entries.sort_by_key(|entry| entry.at);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let now = Instant::now();
        if let Some(attempt) = span.extensions_mut().remove::<Attempt>() {
            if let Some(call_span) = ctx.span(&attempt.call)
                && let Some(call) = call_span.extensions_mut().get_mut::<Call>()
            {
                call.attempts += 1;
                let number = attempt
                    .fields
                    .resend_count
                    .map_or(call.attempts, |resent| resent.saturating_add(1) as u32);
                let what = Happening::Attempt {
                    number,
                    outcome: attempt.fields.outcome(),
                    took: now.saturating_duration_since(attempt.start),
                };
                call.push(attempt.start, what);
                call.entries.sort_by_key(|entry| entry.at);
            }
            return;
        }
        let Some(call) = span.extensions_mut().remove::<Call>() else {
            return;
        };
        let finished = CallTimeline {
            method: call.fields.method.clone().unwrap_or_default(),
            server: call.fields.address.clone().unwrap_or_default(),
            outcome: call.fields.outcome(),
            duration: now.saturating_duration_since(call.start),
            entries: call.entries,
        };
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        if calls.len() == TIMELINE_CALLS {
            calls.pop_front();
        }
        calls.push_back(finished);
    }
}
