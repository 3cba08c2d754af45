//! The example bodies of the four vendor documents (IXON, Attraqt, Open2b, Telecom X), copied
//! verbatim into `tests/fixtures/`, and the tables of those documents, decoded into the fields
//! each document implies.

use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use towline_core::{ApiCode, ApiError, ApiErrorKind, ApiFormat, AuthReason, HintSource, Target};
use towline_envelope::{Decoder, Format};

// ------------------------------------------------------------------------------- helpers

/// Decodes with the default (auto-detecting) decoder and no headers; the response must be
/// an error.
fn decode(status: u16, body: &'static [u8]) -> ApiError {
    decode_with(status, &HeaderMap::new(), body)
}

fn decode_with(status: u16, headers: &HeaderMap, body: &'static [u8]) -> ApiError {
    let status = StatusCode::from_u16(status).unwrap();
    let err = towline_envelope::decode(status, headers, Bytes::from_static(body))
        .unwrap_or_else(|| panic!("a {status} with this body must decode to an error"));
    // Whatever the format, the raw body is kept and the envelope carries the HTTP status.
    assert_eq!(err.body, Bytes::from_static(body));
    assert!(!err.body_truncated);
    assert_eq!(err.status, status);
    err
}

fn json_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers
}

fn text_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers
}

fn header(name: &str) -> Option<Target> {
    Some(Target::Header(name.to_owned()))
}

fn field(name: &str) -> Option<Target> {
    Some(Target::Field(name.to_owned()))
}

fn text(code: &str) -> Option<ApiCode> {
    Some(ApiCode::Text(code.to_owned()))
}

// ================================================================================== IXON
// Seed 000, "Common errors". Content errors are 4xx (400 here); authorization errors 401.

const IXON_REQUIRED_HEADER: &[u8] = include_bytes!("fixtures/ixon_required_header.json");
const IXON_INVALID_VALUE_API_COMPANY: &[u8] =
    include_bytes!("fixtures/ixon_invalid_value_api_company.json");
const IXON_INVALID_VALUE_AUTHORIZATION: &[u8] =
    include_bytes!("fixtures/ixon_invalid_value_authorization.json");
const IXON_2FA_REQUIRED: &[u8] = include_bytes!("fixtures/ixon_2fa_required.json");
const IXON_VALUE_TOO_SHORT: &[u8] = include_bytes!("fixtures/ixon_value_too_short.json");
const IXON_VALUE_TOO_LONG: &[u8] = include_bytes!("fixtures/ixon_value_too_long.json");
const IXON_MUST_START_WITH_TYPE: &[u8] =
    include_bytes!("fixtures/ixon_authorization_must_start_with_type.json");
const IXON_REGEX_MISMATCH: &[u8] = include_bytes!("fixtures/ixon_regex_mismatch.json");
const IXON_SSO_REQUIRED: &[u8] = include_bytes!("fixtures/ixon_sso_required.json");
const IXON_SSO_CODE_STATE_INVALID: &[u8] =
    include_bytes!("fixtures/ixon_sso_code_state_invalid.json");

/// The common shape of a single-entry IXON error: the envelope takes the entry's fields and
/// keeps no details.
fn assert_ixon_single(err: &ApiError, message: &str, target: Option<Target>, kind: ApiErrorKind) {
    assert_eq!(err.format, ApiFormat::Ixon);
    assert_eq!(err.code, None, "IXON sends no code");
    assert_eq!(err.message.as_deref(), Some(message));
    assert_eq!(err.target, target);
    assert_eq!(err.kind, kind);
    assert!(err.details.is_empty(), "one entry: no details");
    assert_eq!(err.retry_hint, None);
}

#[test]
fn ixon_required_header_on_api_company_is_a_validation_error_on_a_header() {
    let err = decode(400, IXON_REQUIRED_HEADER);
    assert_ixon_single(
        &err,
        "Required header",
        header("Api-Company"),
        ApiErrorKind::Validation,
    );
    assert_eq!(err.auth_reason(), None);
}

#[test]
fn ixon_invalid_value_on_api_company_is_a_validation_error_not_an_auth_error() {
    let err = decode(400, IXON_INVALID_VALUE_API_COMPANY);
    assert_ixon_single(
        &err,
        "Invalid value",
        header("Api-Company"),
        ApiErrorKind::Validation,
    );
    // "Invalid value" means a bad token only on Authorization.
    assert_eq!(err.auth_reason(), None);
}

#[test]
fn ixon_invalid_value_on_authorization_is_a_refreshable_invalid_token() {
    let err = decode(401, IXON_INVALID_VALUE_AUTHORIZATION);
    assert_ixon_single(
        &err,
        "Invalid value",
        header("Authorization"),
        ApiErrorKind::Auth(AuthReason::InvalidToken),
    );
    assert_eq!(err.auth_reason(), Some(AuthReason::InvalidToken));
    assert!(err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn ixon_2fa_required_is_two_factor_required_without_target() {
    let err = decode(401, IXON_2FA_REQUIRED);
    assert_ixon_single(
        &err,
        "2FA is required",
        None,
        ApiErrorKind::Auth(AuthReason::TwoFactorRequired),
    );
    // A new token without an OTP will not help.
    assert!(!err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn ixon_value_too_short_on_authorization_is_token_too_short() {
    let err = decode(401, IXON_VALUE_TOO_SHORT);
    assert_ixon_single(
        &err,
        "Value is too short",
        header("Authorization"),
        ApiErrorKind::Auth(AuthReason::TokenTooShort),
    );
    assert!(!err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn ixon_value_too_long_on_authorization_is_token_too_long() {
    let err = decode(401, IXON_VALUE_TOO_LONG);
    assert_ixon_single(
        &err,
        "Value is too long",
        header("Authorization"),
        ApiErrorKind::Auth(AuthReason::TokenTooLong),
    );
    assert!(!err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn ixon_authorization_must_start_with_a_type_is_a_malformed_header() {
    let err = decode(401, IXON_MUST_START_WITH_TYPE);
    assert_ixon_single(
        &err,
        "Authorization must start with a type and have a credentials",
        header("Authorization"),
        ApiErrorKind::Auth(AuthReason::MalformedHeader),
    );
    assert!(!err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn ixon_value_does_not_match_regex_is_a_malformed_token() {
    let err = decode(401, IXON_REGEX_MISMATCH);
    assert_ixon_single(
        &err,
        "Value does not match regex expression",
        header("Authorization"),
        ApiErrorKind::Auth(AuthReason::TokenMalformed),
    );
    assert!(!err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn ixon_sso_required_is_sso_required_without_target() {
    let err = decode(401, IXON_SSO_REQUIRED);
    assert_ixon_single(
        &err,
        "SSO is required",
        None,
        ApiErrorKind::Auth(AuthReason::SsoRequired),
    );
    assert!(!err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn ixon_invalid_sso_code_and_state_are_two_sso_invalid_details() {
    let err = decode(401, IXON_SSO_CODE_STATE_INVALID);
    assert_eq!(err.format, ApiFormat::Ixon);
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::SsoInvalid));
    assert_eq!(err.auth_reason(), Some(AuthReason::SsoInvalid));
    // The envelope shows its first entry.
    assert_eq!(err.message.as_deref(), Some("Invalid value"));
    assert_eq!(err.target, field("ssoAuthentication.code"));
    assert_eq!(err.details.len(), 2);
    let targets: Vec<_> = err.details.iter().map(|d| d.target.clone()).collect();
    assert_eq!(
        targets,
        [
            field("ssoAuthentication.code"),
            field("ssoAuthentication.state")
        ]
    );
    for detail in &err.details {
        assert_eq!(detail.format, ApiFormat::Ixon);
        assert_eq!(detail.status, StatusCode::UNAUTHORIZED);
        assert_eq!(detail.message.as_deref(), Some("Invalid value"));
        assert_eq!(detail.kind, ApiErrorKind::Auth(AuthReason::SsoInvalid));
    }
    assert!(!err.auth_reason().unwrap().is_refreshable());

    // The document does not give the status; sent as a 400 the entries still say SSO.
    let err = decode(400, IXON_SSO_CODE_STATE_INVALID);
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::SsoInvalid));
}

#[test]
fn ixon_auth_entry_after_a_header_entry_gives_the_envelope_its_reason() {
    // Both headers wrong at once: the entries of the two documented bodies in one envelope.
    let body: &[u8] = br#"{"type":"Error","data":[{"message":"Required header","propertyName":"Api-Company"},{"message":"Invalid value","propertyName":"Authorization"}],"moreAfter":null,"status":"error"}"#;
    let err = decode(401, body);
    assert_eq!(err.format, ApiFormat::Ixon);
    assert_eq!(err.details.len(), 2);
    assert_eq!(
        err.details[1].kind,
        ApiErrorKind::Auth(AuthReason::InvalidToken)
    );
    assert_eq!(err.auth_reason(), Some(AuthReason::InvalidToken));
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::InvalidToken));
}

#[test]
fn ixon_fixtures_are_ixon_under_a_json_content_type_too() {
    for (status, body) in [
        (400, IXON_REQUIRED_HEADER),
        (400, IXON_INVALID_VALUE_API_COMPANY),
        (401, IXON_INVALID_VALUE_AUTHORIZATION),
        (401, IXON_2FA_REQUIRED),
        (401, IXON_VALUE_TOO_SHORT),
        (401, IXON_VALUE_TOO_LONG),
        (401, IXON_MUST_START_WITH_TYPE),
        (401, IXON_REGEX_MISMATCH),
        (401, IXON_SSO_REQUIRED),
        (401, IXON_SSO_CODE_STATE_INVALID),
    ] {
        let err = decode_with(status, &json_headers(), body);
        assert_eq!(err.format, ApiFormat::Ixon);
        let only = Decoder::only(Format::Ixon)
            .decode(
                StatusCode::from_u16(status).unwrap(),
                &HeaderMap::new(),
                body,
            )
            .unwrap();
        assert_eq!(only, err, "Decoder::only(Ixon) decodes alike");
    }
}

#[test]
fn ixon_server_errors_without_a_body_are_unrecognized_server_errors() {
    // "Server errors can be recognized by an HTTP response with a 5xx code", incl. a 504
    // after 60 seconds; the page shows no body for them.
    for status in [500, 502, 504] {
        let err = decode(status, b"");
        assert_eq!(err.format, ApiFormat::Unrecognized);
        assert_eq!(err.kind, ApiErrorKind::Server);
        assert_eq!(err.message, None);
    }
}

// =============================================================================== Attraqt
// Seed 001, "Error body example".

/// The document's template, verbatim: `{"code": {{Error number}}, "message": {{Error message}},
/// "details": []}`. It is not JSON.
const ATTRAQT_TEMPLATE: &[u8] = include_bytes!("fixtures/attraqt_error_template.txt");
/// A realistic instance of that template (not printed in the document): the placeholders are
/// filled with a number (gRPC 3, INVALID_ARGUMENT, as the body code is google.rpc.Status's)
/// and a message.
const ATTRAQT_ERROR: &[u8] = include_bytes!("fixtures/attraqt_error.json");

#[test]
fn attraqt_error_body_keeps_its_number_apart_from_the_status() {
    let err = decode(400, ATTRAQT_ERROR);
    assert_eq!(err.format, ApiFormat::Attraqt);
    assert_eq!(err.code, Some(ApiCode::Number(3)));
    assert_eq!(
        err.message.as_deref(),
        Some("invalid argument: items[0].id is required")
    );
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(err.kind, ApiErrorKind::Validation);
    assert_eq!(err.target, None);
    assert!(err.details.is_empty());
    assert_eq!(err.auth_reason(), None);
}

#[test]
fn attraqt_template_as_printed_is_not_json_and_is_unrecognized() {
    let err = decode(400, ATTRAQT_TEMPLATE);
    assert_eq!(err.format, ApiFormat::Unrecognized);
    assert_eq!(err.kind, ApiErrorKind::Validation);
    assert_eq!(err.code, None);
    assert!(err.details.is_empty());
}

#[test]
fn attraqt_401_means_refresh_the_token_and_retry() {
    // "401 Unauthorized: Refresh the access token and retry the call."
    let err = decode(
        401,
        br#"{"code": 16, "message": "unauthenticated: token expired", "details": []}"#,
    );
    assert_eq!(err.format, ApiFormat::Attraqt);
    assert_eq!(err.code, Some(ApiCode::Number(16)));
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::InvalidToken));
    assert!(err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn attraqt_403_is_forbidden_not_auth() {
    // "403 Forbidden: fix service account roles" (never a token refresh).
    let err = decode(
        403,
        br#"{"code": 7, "message": "permission denied: missing role items.write", "details": []}"#,
    );
    assert_eq!(err.format, ApiFormat::Attraqt);
    assert_eq!(err.code, Some(ApiCode::Number(7)));
    assert_eq!(err.kind, ApiErrorKind::Forbidden);
    assert_eq!(err.auth_reason(), None);
}

#[test]
fn attraqt_429_honours_retry_after() {
    // "429 Too Many Requests: Check the Retry-After HTTP header."
    let mut headers = json_headers();
    headers.insert("retry-after", HeaderValue::from_static("7"));
    let err = decode_with(
        429,
        &headers,
        br#"{"code": 8, "message": "resource exhausted", "details": []}"#,
    );
    assert_eq!(err.format, ApiFormat::Attraqt);
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
    let hint = err.retry_hint.expect("Retry-After is read");
    assert_eq!(hint.wait(), Duration::from_secs(7));
    assert_eq!(hint.source(), &HintSource::RetryAfter);
}

#[test]
fn attraqt_5xx_are_server_or_unavailable() {
    let body: &[u8] = br#"{"code": 14, "message": "unavailable", "details": []}"#;
    assert_eq!(decode(500, body).kind, ApiErrorKind::Server);
    assert_eq!(decode(502, body).kind, ApiErrorKind::Server);
    assert_eq!(decode(503, body).kind, ApiErrorKind::Unavailable);
    assert_eq!(decode(504, body).kind, ApiErrorKind::Server);
    assert_eq!(decode(503, body).format, ApiFormat::Attraqt);
}

// ================================================================================ Open2b
// Seed 002: errors are in-band, in an HTTP 200; other replies are not JSON.

const OPEN2B_MALFORMED: &[u8] = include_bytes!("fixtures/open2b_malformed.json");

/// Decodes an Open2b in-band error sent with HTTP 200.
fn open2b_in_band(body: &[u8]) -> ApiError {
    let err = towline_envelope::decode(StatusCode::OK, &json_headers(), body.to_vec())
        .expect("an Open2b error inside a 200 is an error");
    assert_eq!(err.format, ApiFormat::Open2b);
    assert_eq!(err.status, StatusCode::OK);
    assert_eq!(err.retry_hint, None);
    assert!(err.details.is_empty());
    err
}

#[test]
fn open2b_malformed_in_a_200_is_a_validation_error_on_a_field() {
    let err = open2b_in_band(OPEN2B_MALFORMED);
    assert_eq!(err.code, text("Malformed"));
    assert_eq!(
        err.message.as_deref(),
        Some("Name is not syntactically correct")
    );
    assert_eq!(err.target, field("name"));
    assert_eq!(err.kind, ApiErrorKind::Validation);
    assert_eq!(err.body, Bytes::from_static(OPEN2B_MALFORMED));
    // Explicitly chosen, Open2b decodes alike.
    let only = Decoder::only(Format::Open2b)
        .decode(StatusCode::OK, &HeaderMap::new(), OPEN2B_MALFORMED)
        .unwrap();
    assert_eq!(only, err);
}

/// One row of the "Common errors" table, with the placeholders filled in.
fn open2b_row(field_name: &str, kind: &str, description: &str) -> ApiError {
    let body = serde_json::json!({
        "status": "error",
        "error": { "field": field_name, "type": kind, "description": description },
    });
    let err = open2b_in_band(body.to_string().as_bytes());
    assert_eq!(err.code, text(kind));
    assert_eq!(err.message.as_deref(), Some(description));
    err
}

#[test]
fn open2b_unknown_field() {
    let err = open2b_row("unknown", "UnknownField", "Field 'colour' is unknown");
    assert_eq!(err.target, field("unknown"));
    assert_eq!(err.kind, ApiErrorKind::Validation);
}

#[test]
fn open2b_access_denied_is_forbidden() {
    let err = open2b_row(
        "costPrice",
        "AccessDenied",
        "Access denied to field costPrice",
    );
    assert_eq!(err.target, field("costPrice"));
    assert_eq!(err.kind, ApiErrorKind::Forbidden);
    assert_eq!(err.auth_reason(), None);
}

#[test]
fn open2b_missing() {
    let err = open2b_row("name", "Missing", "name is required");
    assert_eq!(err.target, field("name"));
    assert_eq!(err.kind, ApiErrorKind::Validation);
}

#[test]
fn open2b_missing_combination() {
    let err = open2b_row(
        "zipCode",
        "MissingCombination",
        "zipCode is required if country is provided",
    );
    assert_eq!(err.target, field("zipCode"));
    assert_eq!(err.kind, ApiErrorKind::Validation);
}

#[test]
fn open2b_malformed() {
    let err = open2b_row("email", "Malformed", "email is not syntactically correct");
    assert_eq!(err.target, field("email"));
    assert_eq!(err.kind, ApiErrorKind::Validation);
}

#[test]
fn open2b_invalid_value() {
    let err = open2b_row("country", "InvalidValue", "country is not a valid value");
    assert_eq!(err.target, field("country"));
    assert_eq!(err.kind, ApiErrorKind::Validation);
}

#[test]
fn open2b_invalid_combination() {
    let err = open2b_row(
        "discount",
        "InvalidCombination",
        "discount is not allowed if coupon is provided",
    );
    assert_eq!(err.target, field("discount"));
    assert_eq!(err.kind, ApiErrorKind::Validation);
}

#[test]
fn open2b_method_not_available_targets_the_method() {
    let err = open2b_row(
        "commerce.orders.find",
        "InvalidValue",
        "commerce.orders.find is not available for this installation",
    );
    assert_eq!(
        err.target,
        Some(Target::Method("commerce.orders.find".to_owned()))
    );
    assert_eq!(err.kind, ApiErrorKind::Validation);
}

#[test]
fn open2b_forbidden_malformed_key_auto_detected_is_unrecognized_with_the_text() {
    let body: &[u8] = b"Forbidden, malformed key";
    let err = decode_with(403, &text_headers(), body);
    assert_eq!(err.format, ApiFormat::Unrecognized);
    assert_eq!(err.message.as_deref(), Some("Forbidden, malformed key"));
    assert_eq!(err.kind, ApiErrorKind::Forbidden);
    assert_eq!(err.code, None);
}

#[test]
fn open2b_forbidden_key_replies_with_open2b_chosen_are_invalid_credentials() {
    for text in ["Forbidden, malformed key", "Forbidden, missing key"] {
        let err = Decoder::only(Format::Open2b)
            .decode(
                StatusCode::FORBIDDEN,
                &text_headers(),
                text.as_bytes().to_vec(),
            )
            .unwrap();
        assert_eq!(err.format, ApiFormat::Open2b);
        assert_eq!(err.status, StatusCode::FORBIDDEN);
        assert_eq!(err.message.as_deref(), Some(text));
        assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::CredentialsInvalid));
        assert!(!err.auth_reason().unwrap().is_refreshable());
        assert_eq!(err.body, Bytes::from(text));
    }
}

#[test]
fn open2b_other_non_json_replies_keep_their_status_kind() {
    // The "Other errors" table: status and the text sent instead of JSON.
    let rows: [(u16, &str, ApiErrorKind); 8] = [
        (404, "Not Found", ApiErrorKind::NotFound),
        (405, "Invalid Content-Length header", ApiErrorKind::Other),
        (405, "Invalid Content-Type header", ApiErrorKind::Other),
        (405, "Method Not Allowed", ApiErrorKind::Other),
        (405, "Missing Content-Length header", ApiErrorKind::Other),
        (405, "Missing Content-Type header", ApiErrorKind::Other),
        (
            400,
            "Bad Request, malformed JSON data",
            ApiErrorKind::Validation,
        ),
        (503, "Service Unavailable", ApiErrorKind::Unavailable),
    ];
    for (status, text, kind) in rows {
        let status = StatusCode::from_u16(status).unwrap();
        let auto =
            towline_envelope::decode(status, &text_headers(), text.as_bytes().to_vec()).unwrap();
        assert_eq!(auto.format, ApiFormat::Unrecognized, "{text}");
        assert_eq!(auto.message.as_deref(), Some(text));
        assert_eq!(auto.kind, kind, "{text}");

        let chosen = Decoder::only(Format::Open2b)
            .decode(status, &text_headers(), text.as_bytes().to_vec())
            .unwrap();
        assert_eq!(chosen.format, ApiFormat::Open2b, "{text}");
        assert_eq!(chosen.message.as_deref(), Some(text));
        assert_eq!(chosen.kind, kind, "{text}: not a key problem");
    }
}

#[test]
fn open2b_503_with_x_wait_seconds_gives_a_retry_hint() {
    let mut headers = text_headers();
    headers.insert("x-wait-seconds", HeaderValue::from_static("42"));
    for decoder in [Decoder::new(), Decoder::only(Format::Open2b)] {
        let err = decoder
            .decode(
                StatusCode::SERVICE_UNAVAILABLE,
                &headers,
                &b"Service Unavailable"[..],
            )
            .unwrap();
        assert_eq!(err.kind, ApiErrorKind::Unavailable);
        let hint = err.retry_hint.expect("X-Wait-Seconds is read");
        assert_eq!(hint.wait(), Duration::from_secs(42));
        assert_eq!(hint.source(), &HintSource::XWaitSeconds);
    }
}

#[test]
fn open2b_success_in_a_200_is_not_an_error() {
    let body: &[u8] = br#"{"status":"ok","response":{"ids":[1042,1043],"count":2}}"#;
    assert_eq!(
        towline_envelope::decode(StatusCode::OK, &json_headers(), body),
        None
    );
    assert_eq!(
        Decoder::only(Format::Open2b).decode(StatusCode::OK, &json_headers(), body),
        None
    );
}

// ============================================================================= Telecom X
// Seed 003, "Example error message"; the status is the one in the body.

/// Verbatim: a JavaScript object literal with unquoted keys.
const TELECOMX_SINGLE: &[u8] = include_bytes!("fixtures/telecomx_single.js");
/// Verbatim, including the `" message"` key with a leading space.
const TELECOMX_MULTIPLE: &[u8] = include_bytes!("fixtures/telecomx_multiple.json");

#[test]
fn telecomx_single_error_written_as_a_javascript_literal() {
    let err = decode(404, TELECOMX_SINGLE);
    assert_eq!(err.format, ApiFormat::TelecomX);
    assert_eq!(err.code, text("mvnoAccount"));
    assert_eq!(err.message.as_deref(), Some("MVNO account not found"));
    // `code` is "the path of the property that has errored".
    assert_eq!(err.target, field("mvnoAccount"));
    assert_eq!(err.kind, ApiErrorKind::NotFound);
    assert!(err.details.is_empty());
    assert_eq!(err.auth_reason(), None);
}

#[test]
fn telecomx_multiple_errors_become_details_with_their_own_status() {
    let err = decode(422, TELECOMX_MULTIPLE);
    assert_eq!(err.format, ApiFormat::TelecomX);
    assert_eq!(err.code, text("multiple"));
    assert_eq!(err.kind, ApiErrorKind::Validation);
    assert_eq!(err.target, None, "\"multiple\" is not a property");
    // The envelope has no message of its own: the first inner one is shown.
    assert_eq!(err.message.as_deref(), Some("User not found"));
    assert_eq!(err.details.len(), 3);

    let expected = [
        (404, "userId", "User not found", ApiErrorKind::NotFound),
        (
            422,
            "address.street",
            "Invalid street",
            ApiErrorKind::Validation,
        ),
        // Written `" message"` in the document.
        (404, "address.zip", "Zip is missing", ApiErrorKind::NotFound),
    ];
    for (detail, (status, path, message, kind)) in err.details.iter().zip(expected) {
        assert_eq!(detail.format, ApiFormat::TelecomX);
        assert_eq!(detail.status.as_u16(), status, "{path}");
        assert_eq!(detail.code, text(path));
        assert_eq!(detail.target, field(path));
        assert_eq!(detail.message.as_deref(), Some(message), "{path}");
        assert_eq!(detail.kind, kind, "{path}");
        assert!(detail.details.is_empty());
    }
}

/// A row of the "General error messages" table as the API would send it.
fn telecomx_401(code: &str, message: &str) -> ApiError {
    let body = serde_json::json!({
        "error": { "code": code, "status": 401, "message": message }
    });
    let err = towline_envelope::decode(StatusCode::UNAUTHORIZED, &json_headers(), body.to_string())
        .unwrap();
    assert_eq!(err.format, ApiFormat::TelecomX);
    assert_eq!(err.status, StatusCode::UNAUTHORIZED);
    assert_eq!(err.code, text(code));
    assert_eq!(err.message.as_deref(), Some(message));
    assert_eq!(err.target, None, "{code} is not a property path");
    err
}

#[test]
fn telecomx_401_expired() {
    let err = telecomx_401("expired", "Session has expired, please login");
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::Expired));
    assert!(err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn telecomx_401_credentials_invalid() {
    let err = telecomx_401(
        "credentials_invalid",
        "Authorization required, please login",
    );
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::CredentialsInvalid));
    assert!(!err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn telecomx_401_format_error() {
    let err = telecomx_401(
        "format_error",
        "Authorization header format is Authorization: Bearer <token>",
    );
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::MalformedHeader));
    assert!(!err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn telecomx_401_invalid_token_undecipherable() {
    let err = telecomx_401("invalid_token", "Undecipherable");
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::InvalidToken));
    assert!(err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn telecomx_401_invalid_token_ip_address_not_authenticated() {
    let err = telecomx_401("invalid_token", "IP address not authenticated");
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::IpNotAllowed));
    // A new token from the same address will not help.
    assert!(!err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn telecomx_401_invalid_token_please_login() {
    let err = telecomx_401("invalid_token", "Please login");
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::InvalidToken));
    assert!(err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn telecomx_path_and_check_name_the_property() {
    // "path: Path of the property that has errored - if available"; 409 Conflict.
    let body: &[u8] = br#"{"error":{"code":"email","path":"user.email","status":409,"message":"Email address is already in use","check":"unique"}}"#;
    let err = decode(409, body);
    assert_eq!(err.format, ApiFormat::TelecomX);
    assert_eq!(err.code, text("email"));
    assert_eq!(err.target, field("user.email"));
    assert_eq!(err.kind, ApiErrorKind::Conflict);
}

#[test]
fn telecomx_status_table_kinds() {
    // "HTTP response codes used": 400, 403, 404, 409, 422, 500.
    for (status, kind) in [
        (400, ApiErrorKind::Validation),
        (403, ApiErrorKind::Forbidden),
        (404, ApiErrorKind::NotFound),
        (409, ApiErrorKind::Conflict),
        (422, ApiErrorKind::Validation),
        (500, ApiErrorKind::Server),
    ] {
        let body = format!(
            r#"{{"error":{{"code":"subscription","status":{status},"message":"status {status}"}}}}"#
        );
        let status = StatusCode::from_u16(status).unwrap();
        let err = towline_envelope::decode(status, &json_headers(), body).unwrap();
        assert_eq!(err.format, ApiFormat::TelecomX);
        assert_eq!(err.kind, kind, "{status}");
    }
}
