//! What counts against a circuit: read from core's typed error model.

use http::{HeaderMap, StatusCode};
use towline_core::{ApiError, BoxError, ErrorKind, HintReader, classify, find};

use crate::circuit::Verdict;

/// The verdict on a response that arrived.
pub(crate) fn response(status: StatusCode, headers: &HeaderMap) -> Verdict {
    // The headers are read only for a 503.
    status_verdict(status, || HintReader::new().read(headers).is_some())
}

/// The verdict on an error.
pub(crate) fn error(error: &BoxError) -> Verdict {
    match classify(error) {
        ErrorKind::Network { .. } | ErrorKind::Timeout => Verdict::Failure,
        ErrorKind::Api => match find::<ApiError>(&**error) {
            Some(api) => status_verdict(api.status, || api.retry_hint.is_some()),
            None => Verdict::Ignored,
        },
        // The server answered: it is up, whatever it said.
        ErrorKind::Redirected | ErrorKind::Auth | ErrorKind::BodyTooLarge => Verdict::Success,
        // Nothing about the server's health: refused or cut short on our side.
        ErrorKind::RateLimited
        | ErrorKind::DeadlineExceeded
        | ErrorKind::RetryBudgetExhausted
        | ErrorKind::CircuitOpen
        | ErrorKind::BulkheadFull
        | ErrorKind::StoreUnavailable
        | ErrorKind::Other => Verdict::Ignored,
    }
}

/// 500, 502, 503 and 504 are failures: the server (or its gateway) is unwell. A 429, or a 503
/// with a wait hint (Open2b's quota), is the server managing its load, healthy: the rate-limit
/// layer honours its wait, and opening the circuit would add a break the server did not ask
/// for. Every other status is an answer: a success for the circuit.
fn status_verdict(status: StatusCode, has_hint: impl FnOnce() -> bool) -> Verdict {
    match status.as_u16() {
        429 => Verdict::Ignored,
        503 if has_hint() => Verdict::Ignored,
        500 | 502 | 503 | 504 => Verdict::Failure,
        _ => Verdict::Success,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use towline_core::{ApiFormat, AuthError, AuthReason, Elapsed, TimeoutPhase};

    fn status(code: u16) -> Verdict {
        response(StatusCode::from_u16(code).unwrap(), &HeaderMap::new())
    }

    #[test]
    fn five_hundreds_fail_four_hundreds_answer_429_says_nothing() {
        for code in [500, 502, 503, 504] {
            assert_eq!(status(code), Verdict::Failure, "{code}");
        }
        for code in [200, 204, 301, 400, 401, 404, 408, 409, 422, 501, 505] {
            assert_eq!(status(code), Verdict::Success, "{code}");
        }
        assert_eq!(status(429), Verdict::Ignored);
    }

    #[test]
    fn a_503_with_a_wait_hint_says_nothing() {
        let mut headers = HeaderMap::new();
        headers.insert("x-wait-seconds", HeaderValue::from_static("3"));
        assert_eq!(
            response(StatusCode::SERVICE_UNAVAILABLE, &headers),
            Verdict::Ignored
        );
    }

    #[test]
    fn errors_by_kind() {
        let reset: BoxError = std::io::Error::from(std::io::ErrorKind::ConnectionReset).into();
        assert_eq!(error(&reset), Verdict::Failure);
        let refused: BoxError = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        assert_eq!(error(&refused), Verdict::Failure);
        let timeout: BoxError =
            Elapsed::new(std::time::Duration::from_secs(1), TimeoutPhase::Head).into();
        assert_eq!(error(&timeout), Verdict::Failure);
        let api: BoxError = ApiError::new(StatusCode::BAD_GATEWAY, ApiFormat::Unrecognized).into();
        assert_eq!(error(&api), Verdict::Failure);
        let api: BoxError = ApiError::new(StatusCode::NOT_FOUND, ApiFormat::Unrecognized).into();
        assert_eq!(error(&api), Verdict::Success);
        let auth: BoxError = AuthError::new(AuthReason::Expired).into();
        assert_eq!(error(&auth), Verdict::Success);
        let other: BoxError = "a bug".into();
        assert_eq!(error(&other), Verdict::Ignored);
        // A bulkhead below refused it: nothing about the server.
        let full: BoxError =
            towline_core::BulkheadFull::new("h", 1, 1, std::time::Duration::ZERO).into();
        assert_eq!(error(&full), Verdict::Ignored);
    }
}
