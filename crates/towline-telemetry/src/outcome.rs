//! What a span records when its call or attempt ends: the status, or why there is none.

use http::{Method, Response};
use towline_core::{ApiError, Attempts, BoxError, ErrorKind, Retried};
use tracing::Span;

use crate::names;

/// The method as the conventions name it: one of the nine they list, or `_OTHER` (the sent
/// method then goes in `http.request.method_original`).
pub(crate) fn method_name(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "_OTHER",
    }
}

/// Records `error.type` for an error: the status of a decoded API error (`"422"`), otherwise
/// the kind's name. Low cardinality by construction: never the error's message.
fn record_error_type(span: &Span, error: &BoxError) {
    let kind = towline_core::classify(error);
    match towline_core::find::<ApiError>(&**error) {
        Some(api) if kind == ErrorKind::Api => span.record(names::ERROR_TYPE, api.status.as_str()),
        _ => span.record(names::ERROR_TYPE, kind.name()),
    };
}

/// Records a finished call's or attempt's outcome on its span.
pub(crate) fn record<B>(span: &Span, result: &Result<Response<B>, BoxError>) {
    if span.is_disabled() {
        return;
    }
    match result {
        Ok(response) => {
            let status = response.status().as_u16();
            span.record(names::STATUS_CODE, i64::from(status));
            if status >= 400 {
                span.record(names::ERROR_TYPE, response.status().as_str());
                span.record("otel.status_code", "error");
            }
            if let Some(attempts) = Attempts::from_extensions(response.extensions()) {
                span.record(names::ATTEMPTS, attempts.count() as i64);
            }
        }
        Err(error) => {
            record_error_type(span, error);
            span.record("otel.status_code", "error");
            if let Some(api) = towline_core::find::<ApiError>(&**error) {
                span.record(names::STATUS_CODE, i64::from(api.status.as_u16()));
            }
            if let Some(retried) = towline_core::find::<Retried>(&**error) {
                span.record(names::ATTEMPTS, retried.attempts().count() as i64);
            }
        }
    }
}

/// Records that the future was dropped before it finished (a deadline, a lost hedge race, a
/// caller's `select!`).
pub(crate) fn record_cancelled(span: &Span) {
    span.record(names::ERROR_TYPE, "cancelled");
    span.record("otel.status_code", "error");
}
