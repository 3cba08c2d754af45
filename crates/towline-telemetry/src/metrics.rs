//! [`OtelMetrics`]: OpenTelemetry metrics from towline's spans and decision events.

use std::fmt;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use tokio::time::Instant;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::fields::Fields;
use crate::names;

/// The conventions' advisory bucket boundaries for `http.client.request.duration`, in seconds.
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// A [`tracing_subscriber::Layer`] that turns towline's spans and decision events into
/// OpenTelemetry metrics through the `opentelemetry` API (your SDK exports them):
///
/// | metric | kind | attributes |
/// |---|---|---|
/// | `http.client.request.duration` (s) | histogram, per attempt | `http.request.method`, `server.address`, `server.port`, `http.response.status_code`, `error.type` |
/// | `towline.call.duration` (s) | histogram, per call | the same, for the call's final outcome |
/// | `towline.retries` | counter | `towline.retry.reason` |
/// | `towline.retry.budget_refusals` | counter | |
/// | `towline.gate.waits` | counter | `towline.gate.reason` |
/// | `towline.auth.refreshes` | counter | `towline.auth.reason`, `towline.auth.outcome` |
/// | `towline.circuit.transitions` | counter | `towline.circuit.from`, `towline.circuit.to` |
/// | `towline.hedges` | counter | |
///
/// Attributes are bounded: no URL, path or query, and a reason is one of a few names. The
/// spans come from [`CallSpanLayer`](crate::CallSpanLayer) and
/// [`AttemptSpanLayer`](crate::AttemptSpanLayer), at INFO: a filter in front of this layer
/// must let `towline` through at INFO.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// use towline_telemetry::OtelMetrics;
///
/// // With your SDK's meter provider installed as the global one:
/// let subscriber = tracing_subscriber::registry().with(OtelMetrics::global());
/// let _guard = tracing::subscriber::set_default(subscriber);
/// ```
#[derive(Clone)]
pub struct OtelMetrics {
    attempt_duration: Histogram<f64>,
    call_duration: Histogram<f64>,
    retries: Counter<u64>,
    budget_refusals: Counter<u64>,
    gate_waits: Counter<u64>,
    auth_refreshes: Counter<u64>,
    circuit_transitions: Counter<u64>,
    hedges: Counter<u64>,
}

impl fmt::Debug for OtelMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtelMetrics").finish_non_exhaustive()
    }
}

impl OtelMetrics {
    /// The instruments, made from `meter`.
    ///
    /// ```
    /// let meter = opentelemetry::global::meter("my-service");
    /// let metrics = towline_telemetry::OtelMetrics::new(&meter);
    /// # let _ = metrics;
    /// ```
    pub fn new(meter: &Meter) -> Self {
        let duration = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(DURATION_BUCKETS.to_vec())
                .build()
        };
        let counter = |name: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_description(description)
                .build()
        };
        OtelMetrics {
            attempt_duration: duration(
                names::CLIENT_REQUEST_DURATION,
                "Duration of HTTP client requests (each attempt).",
            ),
            call_duration: duration(
                names::CALL_DURATION,
                "Duration of whole calls: attempts, waits and refreshes.",
            ),
            retries: counter(names::RETRIES, "Requests sent again, by reason."),
            budget_refusals: counter(names::BUDGET_REFUSALS, "Retries the retry budget refused."),
            gate_waits: counter(names::GATE_WAITS, "Calls held at a rate-limit gate."),
            auth_refreshes: counter(
                names::AUTH_REFRESHES,
                "Token fetches, by reason and outcome.",
            ),
            circuit_transitions: counter(
                names::CIRCUIT_TRANSITIONS,
                "Circuit breaker transitions, by the states left and entered.",
            ),
            hedges: counter(names::HEDGES, "Hedged copies of slow requests sent."),
        }
    }

    /// The instruments, from the global meter provider's meter named `towline`.
    ///
    /// ```
    /// let metrics = towline_telemetry::OtelMetrics::global();
    /// # let _ = metrics;
    /// ```
    pub fn global() -> Self {
        OtelMetrics::new(&opentelemetry::global::meter("towline"))
    }
}

/// Kept in a call's or attempt's span until it closes.
struct Timing {
    start: Instant,
    fields: Fields,
    is_call: bool,
}

fn attributes(fields: &Fields) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(5);
    if let Some(method) = &fields.method {
        attributes.push(KeyValue::new(names::METHOD, method.clone()));
    }
    if let Some(address) = &fields.address {
        attributes.push(KeyValue::new(names::SERVER_ADDRESS, address.clone()));
    }
    if let Some(port) = fields.port {
        attributes.push(KeyValue::new(names::SERVER_PORT, port));
    }
    if let Some(status) = fields.status {
        attributes.push(KeyValue::new(names::STATUS_CODE, status));
    }
    if let Some(error) = &fields.error_type {
        attributes.push(KeyValue::new(names::ERROR_TYPE, error.clone()));
    }
    attributes
}

impl<S> tracing_subscriber::Layer<S> for OtelMetrics
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let name = attrs.metadata().name();
        if name != names::CALL_SPAN && name != names::ATTEMPT_SPAN {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(Timing {
            start: Instant::now(),
            fields,
            is_call: name == names::CALL_SPAN,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(timing) = span.extensions_mut().get_mut::<Timing>()
        {
            values.record(&mut timing.fields);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(timing) = span.extensions_mut().remove::<Timing>() else {
            return;
        };
        let seconds = timing.start.elapsed().as_secs_f64();
        let attributes = attributes(&timing.fields);
        if timing.is_call {
            self.call_duration.record(seconds, &attributes);
        } else {
            self.attempt_duration.record(seconds, &attributes);
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let name = event.metadata().name();
        let counter = match name {
            names::RETRY_EVENT => &self.retries,
            names::BUDGET_REFUSED_EVENT => {
                self.budget_refusals.add(1, &[]);
                return;
            }
            names::HEDGE_EVENT => {
                self.hedges.add(1, &[]);
                return;
            }
            names::GATE_WAIT_EVENT => &self.gate_waits,
            names::AUTH_REFRESH_EVENT => &self.auth_refreshes,
            names::CIRCUIT_STATE_EVENT => &self.circuit_transitions,
            _ => return,
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let other = || "_OTHER".to_owned();
        let attributes = match name {
            names::RETRY_EVENT => vec![KeyValue::new(
                names::RETRY_REASON,
                fields.reason.unwrap_or_else(other),
            )],
            names::GATE_WAIT_EVENT => vec![KeyValue::new(
                names::GATE_REASON,
                fields.reason.unwrap_or_else(other),
            )],
            names::AUTH_REFRESH_EVENT => vec![
                KeyValue::new(
                    names::AUTH_REFRESH_REASON,
                    fields.reason.unwrap_or_else(other),
                ),
                KeyValue::new(
                    names::AUTH_REFRESH_OUTCOME,
                    fields.refresh_outcome.unwrap_or_else(other),
                ),
            ],
            _ => vec![
                KeyValue::new(
                    names::CIRCUIT_FROM,
                    fields.circuit_from.unwrap_or_else(other),
                ),
                KeyValue::new(names::CIRCUIT_TO, fields.circuit_to.unwrap_or_else(other)),
            ],
        };
        counter.add(1, &attributes);
    }
}
