//! Reading towline's span and event fields back, for the metrics and the timeline.

use std::fmt;

use tracing::field::{Field, Visit};

use crate::names;

/// The fields of a call or attempt span, and of a decision event, that telemetry reads.
#[derive(Clone, Debug, Default)]
pub(crate) struct Fields {
    pub(crate) method: Option<String>,
    pub(crate) address: Option<String>,
    pub(crate) port: Option<i64>,
    pub(crate) status: Option<i64>,
    pub(crate) error_type: Option<String>,
    pub(crate) resend_count: Option<i64>,
    pub(crate) attempts: Option<i64>,
    /// A decision event's reason (retry, gate wait, token refresh).
    pub(crate) reason: Option<String>,
    /// A decision event's delay or wait (a retry's, a gate's, a circuit's break, the time
    /// before a hedge), or a token
    /// fetch's duration, in milliseconds.
    pub(crate) delay_ms: Option<u64>,
    /// How a token fetch ended.
    pub(crate) refresh_outcome: Option<String>,
    /// A circuit transition's states.
    pub(crate) circuit_from: Option<String>,
    pub(crate) circuit_to: Option<String>,
}

impl Fields {
    fn set_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            names::METHOD => &mut self.method,
            names::SERVER_ADDRESS => &mut self.address,
            names::ERROR_TYPE => &mut self.error_type,
            names::RETRY_REASON | names::GATE_REASON | names::AUTH_REFRESH_REASON => {
                &mut self.reason
            }
            names::AUTH_REFRESH_OUTCOME => &mut self.refresh_outcome,
            names::CIRCUIT_FROM => &mut self.circuit_from,
            names::CIRCUIT_TO => &mut self.circuit_to,
            _ => return,
        };
        *slot = Some(value.to_owned());
    }

    fn set_int(&mut self, field: &Field, value: i64) {
        match field.name() {
            names::SERVER_PORT => self.port = Some(value),
            names::STATUS_CODE => self.status = Some(value),
            names::RESEND_COUNT => self.resend_count = Some(value),
            names::ATTEMPTS => self.attempts = Some(value),
            names::RETRY_DELAY_MS
            | names::GATE_WAIT_MS
            | names::AUTH_REFRESH_DURATION_MS
            | names::CIRCUIT_BREAK_MS
            | names::HEDGE_DELAY_MS => {
                self.delay_ms = u64::try_from(value).ok();
            }
            _ => {}
        }
    }

    /// How the span or event ended, for a person: the status, or the error type.
    pub(crate) fn outcome(&self) -> String {
        match (self.status, &self.error_type) {
            (Some(status), _) => status.to_string(),
            (None, Some(error)) => error.clone(),
            (None, None) => "?".to_owned(),
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set_str(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set_int(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set_int(field, i64::try_from(value).unwrap_or(i64::MAX));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields (Display) arrive here; only string-valued ones are read.
        if matches!(
            field.name(),
            names::METHOD | names::SERVER_ADDRESS | names::ERROR_TYPE
        ) {
            let text = format!("{value:?}");
            self.set_str(field, text.trim_matches('"'));
        }
    }
}
