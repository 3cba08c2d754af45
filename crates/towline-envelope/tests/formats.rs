//! The public formats (RFC 9457, Google APIs, Stripe, GitHub, JSON:API) on realistic bodies
//! modelled on each API's documentation; detection that does not confuse one format for
//! another; `Decoder::only` and custom formats; success bodies that are never errors; retry
//! hints from headers and body; and bodies that are not JSON at all.

use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;
use towline_core::{
    ApiCode, ApiError, ApiErrorKind, ApiFormat, AuthReason, DEFAULT_HINT_CAP, HintReader,
    HintSource, Target,
};
use towline_envelope::{Decoder, ErrorFormat, Format};

// ------------------------------------------------------------------------------- fixtures

const PROBLEM_OUT_OF_CREDIT: &[u8] = include_bytes!("fixtures/problem_out_of_credit.json");
const PROBLEM_VALIDATION: &[u8] = include_bytes!("fixtures/problem_validation.json");
const GOOGLE_RESOURCE_EXHAUSTED: &[u8] = include_bytes!("fixtures/google_resource_exhausted.json");
const GOOGLE_INVALID_ARGUMENT: &[u8] = include_bytes!("fixtures/google_invalid_argument.json");
const GOOGLE_UNAUTHENTICATED: &[u8] = include_bytes!("fixtures/google_unauthenticated.json");
const STRIPE_CARD_ERROR: &[u8] = include_bytes!("fixtures/stripe_card_error.json");
const STRIPE_AUTHENTICATION_ERROR: &[u8] =
    include_bytes!("fixtures/stripe_authentication_error.json");
const STRIPE_INVALID_API_KEY: &[u8] = include_bytes!("fixtures/stripe_invalid_api_key.json");
const STRIPE_RATE_LIMIT_ERROR: &[u8] = include_bytes!("fixtures/stripe_rate_limit_error.json");
const STRIPE_RATE_LIMIT_CODE: &[u8] = include_bytes!("fixtures/stripe_rate_limit_code.json");
const GITHUB_VALIDATION_FAILED: &[u8] = include_bytes!("fixtures/github_validation_failed.json");
const GITHUB_NOT_FOUND: &[u8] = include_bytes!("fixtures/github_not_found.json");
const JSONAPI_SINGLE: &[u8] = include_bytes!("fixtures/jsonapi_single.json");
const JSONAPI_MULTIPLE: &[u8] = include_bytes!("fixtures/jsonapi_multiple.json");
const HTML_500: &[u8] = include_bytes!("fixtures/html_500.html");

// The vendor fixtures (see tests/vendors.rs), for the detection table.
const IXON_REQUIRED_HEADER: &[u8] = include_bytes!("fixtures/ixon_required_header.json");
const IXON_INVALID_VALUE_AUTHORIZATION: &[u8] =
    include_bytes!("fixtures/ixon_invalid_value_authorization.json");
const IXON_2FA_REQUIRED: &[u8] = include_bytes!("fixtures/ixon_2fa_required.json");
const IXON_SSO_CODE_STATE_INVALID: &[u8] =
    include_bytes!("fixtures/ixon_sso_code_state_invalid.json");
const ATTRAQT_ERROR: &[u8] = include_bytes!("fixtures/attraqt_error.json");
const OPEN2B_MALFORMED: &[u8] = include_bytes!("fixtures/open2b_malformed.json");
const TELECOMX_SINGLE: &[u8] = include_bytes!("fixtures/telecomx_single.js");
const TELECOMX_MULTIPLE: &[u8] = include_bytes!("fixtures/telecomx_multiple.json");

// -------------------------------------------------------------------------------- helpers

fn content_type(value: &'static str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
    headers
}

fn json() -> HeaderMap {
    content_type("application/json")
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap()
}

/// Decodes an error response with the default decoder.
fn decode_with(code: u16, headers: &HeaderMap, body: &'static [u8]) -> ApiError {
    let err = towline_envelope::decode(status(code), headers, Bytes::from_static(body))
        .unwrap_or_else(|| panic!("a {code} is always an error"));
    assert_eq!(err.status, status(code));
    assert_eq!(err.body, Bytes::from_static(body));
    err
}

fn decode(code: u16, body: &'static [u8]) -> ApiError {
    decode_with(code, &json(), body)
}

fn text(code: &str) -> Option<ApiCode> {
    Some(ApiCode::Text(code.to_owned()))
}

fn pointer(p: &str) -> Option<Target> {
    Some(Target::Pointer(p.to_owned()))
}

fn field(name: &str) -> Option<Target> {
    Some(Target::Field(name.to_owned()))
}

// =============================================================================== RFC 9457

#[test]
fn problem_json_content_type_decodes_a_problem() {
    let headers = content_type("application/problem+json");
    let err = decode_with(403, &headers, PROBLEM_OUT_OF_CREDIT);
    assert_eq!(err.format, ApiFormat::Problem);
    assert_eq!(err.code, text("https://example.com/probs/out-of-credit"));
    assert_eq!(
        err.message.as_deref(),
        Some("Your current balance is 30, but that costs 50.")
    );
    assert_eq!(err.kind, ApiErrorKind::Forbidden);
    assert!(err.details.is_empty());
    assert_eq!(err.target, None);

    // Parameters and case do not matter.
    let headers = content_type("Application/Problem+JSON; charset=utf-8");
    assert_eq!(
        decode_with(403, &headers, PROBLEM_OUT_OF_CREDIT).format,
        ApiFormat::Problem
    );
    // The shape alone is enough too.
    assert_eq!(
        decode(403, PROBLEM_OUT_OF_CREDIT).format,
        ApiFormat::Problem
    );
}

#[test]
fn problem_errors_extension_becomes_details_with_pointers() {
    let headers = content_type("application/problem+json");
    let err = decode_with(422, &headers, PROBLEM_VALIDATION);
    assert_problem_validation(&err);
}

fn assert_problem_validation(err: &ApiError) {
    assert_eq!(err.format, ApiFormat::Problem);
    assert_eq!(err.code, text("https://example.net/validation-error"));
    // No `detail`: the title is the message.
    assert_eq!(err.message.as_deref(), Some("Your request is not valid."));
    assert_eq!(err.kind, ApiErrorKind::Validation);
    assert_eq!(err.details.len(), 2);
    assert_eq!(err.details[0].target, pointer("#/age"));
    assert_eq!(
        err.details[0].message.as_deref(),
        Some("must be a positive integer")
    );
    assert_eq!(err.details[1].target, pointer("#/profile/color"));
    assert_eq!(
        err.details[1].message.as_deref(),
        Some("must be 'green', 'red' or 'blue'")
    );
    for detail in &err.details {
        assert_eq!(detail.format, ApiFormat::Problem);
        assert_eq!(detail.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

#[test]
fn problem_shaped_body_under_plain_json_is_a_problem() {
    let err = decode(422, PROBLEM_VALIDATION);
    assert_problem_validation(&err);
}

#[test]
fn problem_about_blank_has_no_code() {
    let body: &[u8] =
        br#"{"type":"about:blank","title":"Not Found","status":404,"instance":"/orders/17"}"#;
    let err = decode_with(404, &content_type("application/problem+json"), body);
    assert_eq!(err.format, ApiFormat::Problem);
    assert_eq!(err.code, None);
    assert_eq!(err.message.as_deref(), Some("Not Found"));
    assert_eq!(err.kind, ApiErrorKind::NotFound);
    assert_eq!(decode(404, body).format, ApiFormat::Problem);
}

#[test]
fn problem_content_type_wins_over_the_body_shape() {
    // A Google-shaped body labelled as a problem is read as a problem (with nothing in it).
    let err = decode_with(
        429,
        &content_type("application/problem+json"),
        GOOGLE_RESOURCE_EXHAUSTED,
    );
    assert_eq!(err.format, ApiFormat::Problem);
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
}

// ============================================================================ Google APIs

#[test]
fn google_resource_exhausted_with_retry_info_gives_a_body_hint() {
    let err = decode(429, GOOGLE_RESOURCE_EXHAUSTED);
    assert_eq!(err.format, ApiFormat::Google);
    assert_eq!(err.code, text("RESOURCE_EXHAUSTED"));
    assert!(
        err.message
            .as_deref()
            .unwrap()
            .starts_with("Quota exceeded for quota metric 'Read requests'")
    );
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
    let hint = err.retry_hint.expect("RetryInfo is read");
    assert_eq!(hint.wait(), Duration::from_secs(30));
    assert_eq!(hint.source(), &HintSource::Body);
    // ErrorInfo and Help are not field violations.
    assert!(err.details.is_empty());
}

#[test]
fn google_retry_delay_as_a_duration_object() {
    let body: &[u8] = br#"{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":{"seconds":1,"nanos":500000000}}]}}"#;
    let hint = decode(429, body).retry_hint.unwrap();
    assert_eq!(hint.wait(), Duration::from_millis(1500));
    assert_eq!(hint.source(), &HintSource::Body);
}

#[test]
fn google_retry_info_is_capped_like_header_hints() {
    let body: &[u8] = br#"{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"999999s"}]}}"#;
    let hint = decode(429, body).retry_hint.unwrap();
    assert_eq!(hint.source(), &HintSource::Body);
    assert_eq!(hint.requested(), Duration::from_secs(999_999));
    assert!(hint.wait() <= DEFAULT_HINT_CAP, "wait {:?}", hint.wait());
    assert!(hint.was_capped());
}

#[test]
fn google_invalid_argument_field_violations_become_details() {
    let err = decode(400, GOOGLE_INVALID_ARGUMENT);
    assert_eq!(err.format, ApiFormat::Google);
    assert_eq!(err.code, text("INVALID_ARGUMENT"));
    assert_eq!(
        err.message.as_deref(),
        Some("Request contains an invalid argument.")
    );
    assert_eq!(err.kind, ApiErrorKind::Validation);
    assert_eq!(err.retry_hint, None);
    assert_eq!(err.details.len(), 2);
    assert_eq!(err.details[0].target, field("instance.machine_type"));
    assert!(
        err.details[0]
            .message
            .as_deref()
            .unwrap()
            .contains("Machine type does not exist")
    );
    assert_eq!(err.details[1].target, field("instance.labels[\"Env\"]"));
    for detail in &err.details {
        assert_eq!(detail.format, ApiFormat::Google);
        assert_eq!(detail.status, StatusCode::BAD_REQUEST);
        assert_eq!(detail.kind, ApiErrorKind::Validation);
    }
}

#[test]
fn google_unauthenticated_is_a_refreshable_invalid_token() {
    let err = decode(401, GOOGLE_UNAUTHENTICATED);
    assert_eq!(err.format, ApiFormat::Google);
    assert_eq!(err.code, text("UNAUTHENTICATED"));
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::InvalidToken));
    assert!(err.auth_reason().unwrap().is_refreshable());
}

#[test]
fn google_without_a_status_name_keeps_the_numeric_code() {
    let body: &[u8] = br#"{"error":{"code":404,"message":"Requested entity was not found."}}"#;
    let err = decode(404, body);
    assert_eq!(err.format, ApiFormat::Google);
    assert_eq!(err.code, Some(ApiCode::Number(404)));
    assert_eq!(err.kind, ApiErrorKind::NotFound);
}

// ================================================================================= Stripe

#[test]
fn stripe_card_error_names_the_parameter() {
    let err = decode(402, STRIPE_CARD_ERROR);
    assert_eq!(err.format, ApiFormat::Stripe);
    assert_eq!(err.code, text("incorrect_number"));
    assert_eq!(
        err.message.as_deref(),
        Some("Your card number is incorrect.")
    );
    assert_eq!(err.target, Some(Target::Parameter("number".to_owned())));
    assert_eq!(err.kind, ApiErrorKind::PaymentDeclined);
}

#[test]
fn stripe_authentication_error_is_invalid_credentials() {
    let err = decode(401, STRIPE_AUTHENTICATION_ERROR);
    assert_eq!(err.format, ApiFormat::Stripe);
    // No `code`: the type stands in.
    assert_eq!(err.code, text("authentication_error"));
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::CredentialsInvalid));
    assert!(!err.auth_reason().unwrap().is_refreshable());
    assert_eq!(err.target, None);
}

#[test]
fn stripe_rate_limit_error_is_rate_limited() {
    let err = decode(429, STRIPE_RATE_LIMIT_ERROR);
    assert_eq!(err.format, ApiFormat::Stripe);
    assert_eq!(err.code, text("rate_limit_error"));
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
}

#[test]
fn stripe_invalid_api_key_401_is_an_auth_error() {
    let err = decode(401, STRIPE_INVALID_API_KEY);
    assert_eq!(err.format, ApiFormat::Stripe);
    assert!(
        matches!(err.kind, ApiErrorKind::Auth(_)),
        "a 401 is an auth error, got {:?}",
        err.kind
    );
}

#[test]
fn stripe_429_with_invalid_request_error_type_is_rate_limited() {
    let err = decode(429, STRIPE_RATE_LIMIT_CODE);
    assert_eq!(err.format, ApiFormat::Stripe);
    assert_eq!(err.code, text("rate_limit"));
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
}

#[test]
fn stripe_missing_resource_is_not_found() {
    let body: &[u8] = br#"{"error":{"code":"resource_missing","doc_url":"https://stripe.com/docs/error-codes/resource-missing","message":"No such customer: 'cus_NffrFeUfNV2Hib'","param":"id","type":"invalid_request_error"}}"#;
    let err = decode(404, body);
    assert_eq!(err.format, ApiFormat::Stripe);
    assert_eq!(err.code, text("resource_missing"));
    assert_eq!(err.kind, ApiErrorKind::NotFound);
    assert_eq!(err.target, Some(Target::Parameter("id".to_owned())));
}

// ================================================================================= GitHub

#[test]
fn github_validation_failed_lists_its_errors() {
    let err = decode(422, GITHUB_VALIDATION_FAILED);
    assert_eq!(err.format, ApiFormat::GitHub);
    assert_eq!(err.message.as_deref(), Some("Validation Failed"));
    assert_eq!(err.kind, ApiErrorKind::Validation);
    assert_eq!(err.details.len(), 2);
    assert_eq!(err.details[0].code, text("missing_field"));
    assert_eq!(err.details[0].target, field("title"));
    assert_eq!(err.details[0].message, None);
    assert_eq!(err.details[1].code, text("custom"));
    assert_eq!(err.details[1].target, field("name"));
    assert_eq!(
        err.details[1].message.as_deref(),
        Some("name is too long (maximum is 50 characters)")
    );
}

#[test]
fn github_not_found_with_documentation_url() {
    let err = decode(404, GITHUB_NOT_FOUND);
    assert_eq!(err.format, ApiFormat::GitHub);
    assert_eq!(err.message.as_deref(), Some("Not Found"));
    assert_eq!(err.kind, ApiErrorKind::NotFound);
    assert!(err.details.is_empty());
    assert_eq!(err.code, None);
}

// =============================================================================== JSON:API

#[test]
fn jsonapi_single_error_with_a_string_status_and_a_pointer() {
    let headers = content_type("application/vnd.api+json");
    let err = decode_with(422, &headers, JSONAPI_SINGLE);
    assert_eq!(err.format, ApiFormat::JsonApi);
    assert_eq!(
        err.message.as_deref(),
        Some("First name must contain at least two characters.")
    );
    assert_eq!(err.target, pointer("/data/attributes/firstName"));
    assert_eq!(err.kind, ApiErrorKind::Validation);
    assert!(err.details.is_empty());
    // The shape alone is enough too.
    assert_eq!(decode(422, JSONAPI_SINGLE), err);
}

#[test]
fn jsonapi_several_errors_become_details() {
    let headers = content_type("application/vnd.api+json");
    let err = decode_with(422, &headers, JSONAPI_MULTIPLE);
    assert_eq!(err.format, ApiFormat::JsonApi);
    assert_eq!(err.code, text("123"));
    assert_eq!(err.target, pointer("/data/attributes/firstName"));
    assert_eq!(err.details.len(), 3);
    let statuses: Vec<u16> = err.details.iter().map(|d| d.status.as_u16()).collect();
    assert_eq!(
        statuses,
        [422, 422, 400],
        "each item's string status is read"
    );
    let codes: Vec<_> = err.details.iter().map(|d| d.code.clone()).collect();
    assert_eq!(codes, [text("123"), text("225"), text("226")]);
    assert_eq!(err.details[1].target, pointer("/data/attributes/password"));
    assert_eq!(
        err.details[2].target,
        Some(Target::Parameter("include".to_owned()))
    );
    for detail in &err.details {
        assert_eq!(detail.kind, ApiErrorKind::Validation);
    }
}

#[test]
fn jsonapi_numeric_status_is_tolerated() {
    let body: &[u8] =
        br#"{"errors":[{"status":409,"title":"Conflict","detail":"Version mismatch"}]}"#;
    let err = decode(409, body);
    assert_eq!(err.format, ApiFormat::JsonApi);
    assert_eq!(err.kind, ApiErrorKind::Conflict);
    assert_eq!(err.message.as_deref(), Some("Version mismatch"));
}

// ============================================================================== Detection

/// Every fixture, the status it comes with, and the format it must be detected as.
const TABLE: [(&str, u16, &[u8], ApiFormat); 22] = [
    (
        "ixon required header",
        400,
        IXON_REQUIRED_HEADER,
        ApiFormat::Ixon,
    ),
    (
        "ixon invalid authorization",
        401,
        IXON_INVALID_VALUE_AUTHORIZATION,
        ApiFormat::Ixon,
    ),
    ("ixon 2fa", 401, IXON_2FA_REQUIRED, ApiFormat::Ixon),
    (
        "ixon sso",
        401,
        IXON_SSO_CODE_STATE_INVALID,
        ApiFormat::Ixon,
    ),
    ("attraqt", 400, ATTRAQT_ERROR, ApiFormat::Attraqt),
    ("open2b", 400, OPEN2B_MALFORMED, ApiFormat::Open2b),
    ("telecomx single", 404, TELECOMX_SINGLE, ApiFormat::TelecomX),
    (
        "telecomx multiple",
        422,
        TELECOMX_MULTIPLE,
        ApiFormat::TelecomX,
    ),
    ("problem", 403, PROBLEM_OUT_OF_CREDIT, ApiFormat::Problem),
    (
        "google 429",
        429,
        GOOGLE_RESOURCE_EXHAUSTED,
        ApiFormat::Google,
    ),
    (
        "google 400",
        400,
        GOOGLE_INVALID_ARGUMENT,
        ApiFormat::Google,
    ),
    ("google 401", 401, GOOGLE_UNAUTHENTICATED, ApiFormat::Google),
    ("stripe card", 402, STRIPE_CARD_ERROR, ApiFormat::Stripe),
    (
        "stripe auth",
        401,
        STRIPE_AUTHENTICATION_ERROR,
        ApiFormat::Stripe,
    ),
    (
        "stripe api key",
        401,
        STRIPE_INVALID_API_KEY,
        ApiFormat::Stripe,
    ),
    (
        "stripe rate limit",
        429,
        STRIPE_RATE_LIMIT_ERROR,
        ApiFormat::Stripe,
    ),
    (
        "stripe rate_limit code",
        429,
        STRIPE_RATE_LIMIT_CODE,
        ApiFormat::Stripe,
    ),
    (
        "github 422",
        422,
        GITHUB_VALIDATION_FAILED,
        ApiFormat::GitHub,
    ),
    ("github 404", 404, GITHUB_NOT_FOUND, ApiFormat::GitHub),
    ("jsonapi single", 422, JSONAPI_SINGLE, ApiFormat::JsonApi),
    (
        "jsonapi multiple",
        422,
        JSONAPI_MULTIPLE,
        ApiFormat::JsonApi,
    ),
    ("html", 500, HTML_500, ApiFormat::Unrecognized),
];

#[test]
fn detection_does_not_confuse_formats() {
    for (name, code, body, expected) in TABLE {
        for headers in [json(), HeaderMap::new(), content_type("text/plain")] {
            let err = decode_with(code, &headers, body);
            assert_eq!(err.format, expected, "{name}");
        }
    }
}

#[test]
fn each_fixture_has_the_shape_of_exactly_one_format() {
    for (name, code, body, expected) in TABLE {
        let claimed: Vec<Format> = Format::ALL
            .into_iter()
            // Open2b chosen explicitly turns any short non-Open2b reply into an Open2b error
            // (see open2b_chosen_reads_other_replies_as_text).
            .filter(|f| *f != Format::Open2b || expected == ApiFormat::Open2b)
            .filter(|f| {
                let err = Decoder::only(*f)
                    .decode(status(code), &HeaderMap::new(), body)
                    .unwrap();
                assert!(
                    err.format == *f || err.format == ApiFormat::Unrecognized,
                    "{name}: only({f}) gave {}",
                    err.format
                );
                err.format == *f
            })
            .collect();
        let mut expected: Vec<Format> =
            Format::ALL.into_iter().filter(|f| *f == expected).collect();
        // Known overlap: Open2b's `{"error":{"type":...}}` also has Stripe's shape; detection
        // tries Open2b first (it needs `"status":"error"` too), so auto-detection is right.
        if name == "open2b" {
            expected.push(Format::Stripe);
        }
        assert_eq!(claimed, expected, "{name}");
    }
}

#[test]
fn decoder_only_skips_detection() {
    // The right format decodes as auto-detection does.
    for (name, code, body, expected) in TABLE {
        let Some(format) = Format::ALL.into_iter().find(|f| *f == expected) else {
            continue;
        };
        let auto = decode(code, body);
        let only = Decoder::only(format)
            .decode(status(code), &json(), body)
            .unwrap();
        assert_eq!(only, auto, "{name}");
    }

    // A Telecom X body is not Google's, whatever the status.
    let err = Decoder::only(Format::Google)
        .decode(StatusCode::NOT_FOUND, &json(), TELECOMX_SINGLE)
        .unwrap();
    assert_eq!(err.format, ApiFormat::Unrecognized);
    assert_eq!(err.kind, ApiErrorKind::NotFound);
    // A JSON body that did not match keeps its obvious message.
    assert_eq!(err.message.as_deref(), Some("MVNO account not found"));

    // The problem+json content type is not consulted either.
    let err = Decoder::only(Format::Stripe)
        .decode(
            StatusCode::FORBIDDEN,
            &content_type("application/problem+json"),
            PROBLEM_OUT_OF_CREDIT,
        )
        .unwrap();
    assert_eq!(err.format, ApiFormat::Unrecognized);

    // Nor the JSON:API one.
    let err = Decoder::only(Format::GitHub)
        .decode(
            StatusCode::UNPROCESSABLE_ENTITY,
            &content_type("application/vnd.api+json"),
            JSONAPI_SINGLE,
        )
        .unwrap();
    assert_eq!(err.format, ApiFormat::Unrecognized);
}

#[test]
fn open2b_chosen_reads_other_replies_as_text() {
    // Open2b's non-200 replies are not JSON: with Open2b chosen, any short reply is its text.
    let err = Decoder::only(Format::Open2b)
        .decode(StatusCode::NOT_FOUND, &json(), &b"Not Found"[..])
        .unwrap();
    assert_eq!(err.format, ApiFormat::Open2b);
    assert_eq!(err.kind, ApiErrorKind::NotFound);
    assert_eq!(err.message.as_deref(), Some("Not Found"));
}

#[test]
fn open2b_chosen_keeps_json_out_of_the_message() {
    for body in [
        GITHUB_NOT_FOUND,
        &br#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest"}"#[..],
    ] {
        let err = Decoder::only(Format::Open2b)
            .decode(StatusCode::NOT_FOUND, &json(), body)
            .unwrap();
        assert_eq!(err.kind, ApiErrorKind::NotFound);
        assert_eq!(err.format, ApiFormat::Unrecognized);
        assert_eq!(
            err.message.as_deref(),
            Some("Not Found"),
            "a JSON body that is not Open2b's is read as JSON, not as a text message"
        );
    }
}

// ========================================================================== Custom formats

/// Acme sends `{"fault": {"id": 17, "text": "..."}}`.
struct Acme;

impl ErrorFormat for Acme {
    fn name(&self) -> &'static str {
        "acme"
    }

    fn decode(&self, status: StatusCode, body: &Value) -> Option<ApiError> {
        let fault = body.get("fault")?;
        let mut err = ApiError::new(status, ApiFormat::Custom(self.name()));
        err.code = fault.get("id")?.as_i64().map(ApiCode::Number);
        err.message = fault.get("text")?.as_str().map(str::to_owned);
        Some(err)
    }
}

/// Claims every object with `"status": "error"`, including IXON's and Open2b's.
struct Greedy {
    in_band: bool,
}

impl ErrorFormat for Greedy {
    fn name(&self) -> &'static str {
        "greedy"
    }

    fn decode(&self, status: StatusCode, body: &Value) -> Option<ApiError> {
        (body.get("status")? == "error").then(|| ApiError::new(status, ApiFormat::Custom("greedy")))
    }

    fn has_in_band_errors(&self) -> bool {
        self.in_band
    }
}

#[test]
fn custom_format_is_tried_before_the_builtins() {
    let decoder = Decoder::new().with_format(Greedy { in_band: false });
    let err = decoder
        .decode(
            StatusCode::UNAUTHORIZED,
            &json(),
            IXON_INVALID_VALUE_AUTHORIZATION,
        )
        .unwrap();
    assert_eq!(err.format, ApiFormat::Custom("greedy"));
    assert_eq!(
        err.body,
        Bytes::from_static(IXON_INVALID_VALUE_AUTHORIZATION)
    );

    // Even before the content type's say.
    let body: &[u8] = br#"{"status":"error","title":"x","type":"about:blank"}"#;
    let err = decoder
        .decode(
            StatusCode::BAD_REQUEST,
            &content_type("application/problem+json"),
            body,
        )
        .unwrap();
    assert_eq!(err.format, ApiFormat::Custom("greedy"));
}

#[test]
fn custom_format_that_declines_falls_back_to_the_builtins() {
    let decoder = Decoder::new().with_format(Acme);
    let err = decoder
        .decode(
            StatusCode::UNAUTHORIZED,
            &json(),
            IXON_INVALID_VALUE_AUTHORIZATION,
        )
        .unwrap();
    assert_eq!(err.format, ApiFormat::Ixon);

    let err = decoder
        .decode(
            StatusCode::TOO_MANY_REQUESTS,
            &json(),
            &br#"{"fault":{"id":17,"text":"quota exceeded"}}"#[..],
        )
        .unwrap();
    assert_eq!(err.format, ApiFormat::Custom("acme"));
    assert_eq!(err.code, Some(ApiCode::Number(17)));
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
}

#[test]
fn custom_formats_are_tried_in_the_order_added() {
    let decoder = Decoder::new()
        .with_format(Acme)
        .with_format(Greedy { in_band: false });
    let body: &[u8] = br#"{"status":"error","fault":{"id":1,"text":"both"}}"#;
    let err = decoder
        .decode(StatusCode::BAD_REQUEST, &json(), body)
        .unwrap();
    assert_eq!(err.format, ApiFormat::Custom("acme"));
}

#[test]
fn custom_only_skips_the_builtins() {
    let decoder = Decoder::custom_only().with_format(Acme);
    let err = decoder
        .decode(
            StatusCode::UNAUTHORIZED,
            &json(),
            IXON_INVALID_VALUE_AUTHORIZATION,
        )
        .unwrap();
    assert_eq!(err.format, ApiFormat::Unrecognized);
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::Unknown));
    // Nor are Open2b's in-band errors looked for.
    assert!(!decoder.has_in_band_errors());
    assert_eq!(
        decoder.decode(StatusCode::OK, &json(), OPEN2B_MALFORMED),
        None
    );
}

#[test]
fn custom_in_band_format_is_asked_about_success_bodies() {
    let body: &[u8] = br#"{"status":"error","reason":"nope"}"#;
    let in_band = Decoder::custom_only().with_format(Greedy { in_band: true });
    assert!(in_band.has_in_band_errors());
    let err = in_band.decode(StatusCode::OK, &json(), body).unwrap();
    assert_eq!(err.format, ApiFormat::Custom("greedy"));
    assert_eq!(err.status, StatusCode::OK);

    let not_in_band = Decoder::custom_only().with_format(Greedy { in_band: false });
    assert_eq!(not_in_band.decode(StatusCode::OK, &json(), body), None);
}

// ========================================================================= Success bodies

const SUCCESS_BODIES: [&str; 24] = [
    // IXON: success shares the error envelope.
    r#"{"type":"Device","data":[{"publicId":"a7bJ8Kc2Lm3n","name":"Pump station 3","online":true}],"moreAfter":null,"status":"success"}"#,
    r#"{"type":"AccessTokenList","data":[],"moreAfter":"bGFzdA","status":"success"}"#,
    // Open2b.
    r#"{"status":"ok","response":{"ids":[1042],"count":1}}"#,
    r#"{"status":"ok"}"#,
    // Nulls and zeroes where errors would be.
    r#"{"error":null}"#,
    r#"{"error":{},"status":"ok"}"#,
    r#"{"code":0,"message":"ok"}"#,
    r#"{"errors":[]}"#,
    r#"{"data":{"type":"articles","id":"1","attributes":{"title":"JSON:API paints my bikeshed!"}},"errors":[]}"#,
    // Google-looking success: a list, and an operation that itself failed (the GET did not).
    r#"{"kind":"drive#fileList","nextPageToken":"V1*3|0|CjkxW","files":[{"kind":"drive#file","id":"1a2b","name":"report.pdf"}]}"#,
    r#"{"name":"operations/123","done":true,"error":{"code":3,"message":"bad input","status":"INVALID_ARGUMENT"}}"#,
    // Stripe-looking success.
    r#"{"id":"ch_3MmlLrLkdIwHu7ix0snN0B15","object":"charge","amount":1099,"currency":"usd","paid":true,"status":"succeeded","failure_code":null,"failure_message":null}"#,
    r#"{"object":"list","data":[],"has_more":false,"url":"/v1/customers"}"#,
    // GitHub-looking success.
    r#"{"id":1296269,"name":"Hello-World","full_name":"octocat/Hello-World","html_url":"https://github.com/octocat/Hello-World","message":"ok","documentation_url":"https://docs.github.com/rest"}"#,
    // Telecom X success.
    r#"{"mvnoAccount":{"id":17,"status":"active","code":"subscription"}}"#,
    // Problem-looking.
    r#"{"type":"https://example.com/ok","title":"Accepted","status":200}"#,
    // Arrays and scalars.
    r#"[]"#,
    r#"[{"status":"error","error":{"field":"name","type":"Malformed","description":"x"}}]"#,
    r#""error""#,
    r#"42"#,
    r#"null"#,
    r#"true"#,
    // Not JSON at all.
    "",
    "OK",
];

#[test]
fn success_bodies_are_never_errors() {
    for code in [200, 201, 202, 204, 206] {
        for body in SUCCESS_BODIES {
            for headers in [json(), HeaderMap::new()] {
                assert_eq!(
                    towline_envelope::decode(status(code), &headers, body),
                    None,
                    "{code}: {body}"
                );
                for format in Format::ALL {
                    assert_eq!(
                        Decoder::only(format).decode(status(code), &headers, body),
                        None,
                        "only({format}) {code}: {body}"
                    );
                }
            }
        }
    }
}

#[test]
fn success_status_with_an_error_shaped_body_of_a_non_in_band_format_is_a_success() {
    // Only Open2b reports errors in a 2xx; these formats never do.
    for (name, _, body, expected) in TABLE {
        if expected == ApiFormat::Open2b {
            continue;
        }
        assert_eq!(
            towline_envelope::decode(StatusCode::OK, &json(), body),
            None,
            "{name}"
        );
    }
}

// ============================================================================= Retry hints

#[test]
fn retry_after_on_a_429_lands_in_the_retry_hint() {
    let mut headers = json();
    headers.insert("retry-after", HeaderValue::from_static("120"));
    let err = decode_with(429, &headers, GITHUB_NOT_FOUND);
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
    let hint = err.retry_hint.unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(120));
    assert_eq!(hint.source(), &HintSource::RetryAfter);
}

#[test]
fn retry_after_as_a_past_http_date_is_zero() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "retry-after",
        HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    let err = decode_with(503, &headers, b"");
    assert_eq!(err.kind, ApiErrorKind::Unavailable);
    let hint = err.retry_hint.unwrap();
    assert_eq!(hint.wait(), Duration::ZERO);
    assert_eq!(hint.source(), &HintSource::RetryAfter);
}

#[test]
fn x_wait_seconds_on_a_503_lands_in_the_retry_hint() {
    let mut headers = HeaderMap::new();
    headers.insert("x-wait-seconds", HeaderValue::from_static("30"));
    let err = decode_with(503, &headers, b"Service Unavailable");
    assert_eq!(err.format, ApiFormat::Unrecognized);
    assert_eq!(err.kind, ApiErrorKind::Unavailable);
    let hint = err.retry_hint.unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(30));
    assert_eq!(hint.source(), &HintSource::XWaitSeconds);
}

#[test]
fn x_ratelimit_reset_counts_only_when_the_quota_is_used_up() {
    let mut headers = json();
    headers.insert("x-ratelimit-reset", HeaderValue::from_static("45"));
    headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
    let err = decode_with(429, &headers, GITHUB_NOT_FOUND);
    let hint = err.retry_hint.unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(45));
    assert_eq!(hint.source(), &HintSource::XRateLimitReset);

    headers.insert("x-ratelimit-remaining", HeaderValue::from_static("12"));
    assert_eq!(
        decode_with(429, &headers, GITHUB_NOT_FOUND).retry_hint,
        None
    );
}

#[test]
fn header_hints_are_capped_by_the_decoders_hint_reader() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("7200"));
    let err = Decoder::new()
        .hints(HintReader::new().cap(Duration::from_secs(60)))
        .decode(StatusCode::TOO_MANY_REQUESTS, &headers, &b""[..])
        .unwrap();
    let hint = err.retry_hint.unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(60));
    assert_eq!(hint.requested(), Duration::from_secs(7200));
}

#[test]
fn garbage_hint_headers_are_ignored() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("soon"));
    headers.insert("x-wait-seconds", HeaderValue::from_static("-5"));
    let err = decode_with(429, &headers, b"");
    assert_eq!(err.retry_hint, None);
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
}

// ======================================================================= Not JSON, broken JSON

#[test]
fn html_500_is_an_unrecognized_server_error() {
    let err = decode_with(500, &content_type("text/html"), HTML_500);
    assert_eq!(err.format, ApiFormat::Unrecognized);
    assert_eq!(err.kind, ApiErrorKind::Server);
    assert_eq!(err.code, None);
    assert_eq!(err.message.as_deref(), Some("<!DOCTYPE html>"));
    assert!(err.details.is_empty());

    assert_eq!(
        decode_with(502, &HeaderMap::new(), HTML_500).kind,
        ApiErrorKind::Server
    );
    assert_eq!(
        decode_with(503, &HeaderMap::new(), HTML_500).kind,
        ApiErrorKind::Unavailable
    );
    assert_eq!(
        towline_envelope::decode(StatusCode::OK, &HeaderMap::new(), HTML_500),
        None
    );
}

#[test]
fn empty_body() {
    for (code, kind) in [
        (400, ApiErrorKind::Validation),
        (401, ApiErrorKind::Auth(AuthReason::Unknown)),
        (404, ApiErrorKind::NotFound),
        (429, ApiErrorKind::RateLimited),
        (500, ApiErrorKind::Server),
    ] {
        let err = decode_with(code, &json(), b"");
        assert_eq!(err.format, ApiFormat::Unrecognized);
        assert_eq!(err.kind, kind);
        assert_eq!(err.message, None);
        assert!(err.body.is_empty());
    }
    let err = decode_with(500, &json(), b" \r\n\t ");
    assert_eq!(err.message, None);
}

#[test]
fn invalid_utf8() {
    for body in [
        &b"\xff\xfe\xfd garbage"[..],
        &b"{\"error\":{\"code\":\"x\xff\",\"status\":404,\"message\":\"m\"}}"[..],
        &b"Forbidden, \xc3\x28 key"[..],
    ] {
        let err = decode_with(500, &json(), body);
        assert_eq!(err.format, ApiFormat::Unrecognized);
        assert_eq!(err.kind, ApiErrorKind::Server);
        assert_eq!(err.message, None, "not text: no message");
        let err = Decoder::only(Format::Open2b)
            .decode(StatusCode::FORBIDDEN, &HeaderMap::new(), body)
            .unwrap();
        assert_eq!(err.message, None);
        assert_eq!(
            towline_envelope::decode(StatusCode::OK, &json(), body),
            None
        );
    }
}

#[test]
fn status_written_as_a_string_is_read() {
    // Telecom X with `"status": "404"` (a string where the page says Number).
    let body: &[u8] =
        br#"{"error":{"code":"mvnoAccount","status":"404","message":"MVNO account not found"}}"#;
    let err = decode(404, body);
    assert_eq!(err.format, ApiFormat::TelecomX);
    assert_eq!(err.kind, ApiErrorKind::NotFound);
    assert_eq!(err.code, text("mvnoAccount"));

    // A problem with a string status is still a problem when labelled as one.
    let body: &[u8] = br#"{"title":"Not Found","status":"404"}"#;
    let err = decode_with(404, &content_type("application/problem+json"), body);
    assert_eq!(err.format, ApiFormat::Problem);
    assert_eq!(err.message.as_deref(), Some("Not Found"));
}

#[test]
fn status_of_the_wrong_type_does_not_panic() {
    for status_value in [
        "null",
        "true",
        "404.5",
        "-1",
        "0",
        "99999999999999999999999",
        "\"four oh four\"",
        "[404]",
        "{\"code\":404}",
        "\"\"",
    ] {
        let bodies = [
            format!(
                r#"{{"error":{{"code":"mvnoAccount","status":{status_value},"message":"m"}}}}"#
            ),
            format!(r#"{{"errors":[{{"status":{status_value},"title":"t"}}]}}"#),
            format!(r#"{{"type":"about:blank","title":"t","status":{status_value}}}"#),
            format!(r#"{{"status":{status_value},"error":{{"type":"Malformed"}}}}"#),
            format!(
                r#"{{"error":{{"code":"multiple","status":422,"inner":[{{"code":"a","status":{status_value}}}]}}}}"#
            ),
        ];
        for body in bodies {
            for code in [200, 404, 500] {
                let decoded = towline_envelope::decode(status(code), &json(), body.clone());
                if code >= 400 {
                    let err = decoded.unwrap();
                    assert_eq!(err.status, status(code), "{body}");
                    for detail in &err.details {
                        // A nonsense inner status falls back to the response's.
                        assert!(detail.status.as_u16() >= 100, "{body}");
                    }
                } else {
                    assert_eq!(decoded, None, "{body}");
                }
            }
        }
    }
}

#[test]
fn truncated_json_is_unrecognized_but_kept() {
    let full = GOOGLE_RESOURCE_EXHAUSTED;
    for cut in [1, 2, 10, full.len() / 3, full.len() / 2, full.len() - 2] {
        let body = &full[..cut];
        let err = towline_envelope::decode(StatusCode::TOO_MANY_REQUESTS, &json(), body).unwrap();
        assert_eq!(err.format, ApiFormat::Unrecognized, "cut at {cut}");
        assert_eq!(err.kind, ApiErrorKind::RateLimited);
        assert_eq!(err.body, Bytes::copy_from_slice(body));
        assert_eq!(err.retry_hint, None, "RetryInfo was cut off");
    }
    // A truncated in-band error is indistinguishable from a broken success: not an error.
    let cut = &OPEN2B_MALFORMED[..OPEN2B_MALFORMED.len() - 3];
    assert_eq!(towline_envelope::decode(StatusCode::OK, &json(), cut), None);
}

#[test]
fn long_text_bodies_give_a_bounded_first_line_message() {
    let line = "é".repeat(1000);
    let body = format!("{line}\nsecond line");
    let err =
        towline_envelope::decode(StatusCode::BAD_GATEWAY, &HeaderMap::new(), body.clone()).unwrap();
    let message = err.message.unwrap();
    assert!(message.len() <= 256, "{}", message.len());
    assert!(!message.is_empty());
    assert!(line.starts_with(&message));
    assert_eq!(err.body, Bytes::from(body));
}

// ------------------------------------------------------------- hint precedence and leniency

#[test]
fn a_retry_after_header_wins_over_a_body_retry_info() {
    let mut headers = HeaderMap::new();
    headers.insert("retry-after", HeaderValue::from_static("5"));
    let err = Decoder::new()
        .decode(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            GOOGLE_RESOURCE_EXHAUSTED,
        )
        .unwrap();
    let hint = err.retry_hint.unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(5));
    assert_eq!(hint.source(), &HintSource::RetryAfter);
}

#[test]
fn a_github_secondary_rate_limit_403_is_rate_limited() {
    let body = br#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}"#;
    let err = Decoder::new()
        .decode(StatusCode::FORBIDDEN, &HeaderMap::new(), &body[..])
        .unwrap();
    assert_eq!(err.format, ApiFormat::GitHub);
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
}

#[test]
fn a_byte_order_mark_before_json_is_ignored() {
    let body = [b"\xEF\xBB\xBF".as_slice(), IXON_2FA_REQUIRED].concat();
    let err = Decoder::new()
        .decode(StatusCode::UNAUTHORIZED, &HeaderMap::new(), body)
        .unwrap();
    assert_eq!(err.format, ApiFormat::Ixon);
}

#[test]
fn each_list_of_details_keeps_its_first_ones_and_counts_the_rest() {
    use towline_envelope::MAX_DETAILS;
    let item = |code: usize, inner: &str| {
        format!(r#"{{"code":"c{code}","status":422,"message":"m{code}","inner":[{inner}]}}"#)
    };
    let many = |n: usize| (0..n).map(|i| item(i, "")).collect::<Vec<_>>().join(",");
    // Telecom X nests: 150 inner errors, the first with 150 of its own.
    let mut top: Vec<String> = vec![item(0, &many(150))];
    top.extend((1..150).map(|i| item(i, "")));
    let body = format!(
        r#"{{"error":{{"code":"multiple","status":422,"inner":[{}]}}}}"#,
        top.join(",")
    );
    let err =
        towline_envelope::decode(StatusCode::UNPROCESSABLE_ENTITY, &json(), body.clone()).unwrap();
    assert_eq!(err.format, ApiFormat::TelecomX);
    assert_eq!(err.details.len(), MAX_DETAILS);
    assert_eq!(err.details_omitted, 150 - MAX_DETAILS);
    assert_eq!(err.details[0].details.len(), MAX_DETAILS);
    assert_eq!(err.details[0].details_omitted, 150 - MAX_DETAILS);
    // The first ones, in order; the rest is still in the body.
    let messages: Vec<_> = err
        .details
        .iter()
        .map(|d| d.message.clone().unwrap())
        .collect();
    assert_eq!(messages[..3], ["m0", "m1", "m2"]);
    assert_eq!(messages[MAX_DETAILS - 1], format!("m{}", MAX_DETAILS - 1));
    assert_eq!(err.body, body.as_bytes());
    assert!(err.to_string().ends_with("(+150 more)"), "{err}");
}
