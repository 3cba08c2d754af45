//! What real APIs send beyond the seed vendors' shapes (issue 18), on recorded responses from
//! each vendor's public documentation (`tests/fixtures/http/`, each citing its page): rate
//! limits that are not 429/503, bodies of no known format, the current IETF `RateLimit`
//! fields, hints only where a wait is asked for, RFC 9457's wrong-typed members, Stripe's
//! legacy rate limit. These use only what the decoder had before, so each ran against it.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use towline_core::{ApiCode, ApiError, ApiErrorKind, ApiFormat, Target};
use towline_envelope::{Decoder, Format};

mod common;

fn decoded(recorded: &common::Recorded) -> ApiError {
    towline_envelope::decode(recorded.status, &recorded.headers, recorded.body.clone()).unwrap()
}

fn only(format: Format, recorded: &common::Recorded) -> ApiError {
    Decoder::only(format)
        .decode(recorded.status, &recorded.headers, recorded.body.clone())
        .unwrap()
}

// ------------------------------------------------------- 1. rate limits outside 429/503

#[test]
fn google_legacy_403_user_rate_limit_exceeded_is_a_rate_limit() {
    let err = decoded(&fixture!("google_drive_user_rate_limit"));
    assert_eq!(err.format, ApiFormat::Google);
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
    assert_eq!(err.message.as_deref(), Some("User Rate Limit Exceeded"));
}

#[test]
fn google_legacy_403_rate_limit_exceeded_is_a_rate_limit_with_its_error_list() {
    let err = decoded(&fixture!("google_calendar_rate_limit"));
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
    assert_eq!(err.details.len(), 1);
    assert_eq!(
        err.details[0].target,
        Some(Target::Parameter("calendarId".into()))
    );
    assert_eq!(
        err.details[0].message.as_deref(),
        Some("Rate Limit Exceeded")
    );
}

#[test]
fn github_403_with_a_used_up_quota_is_a_rate_limit_with_its_reset() {
    let err = decoded(&fixture!("github_primary_rate_limit"));
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
    assert!(err.retry_hint.is_some());
}

#[test]
fn a_403_is_a_rate_limit_when_only_its_headers_say_so() {
    // GitHub's primary-limit headers, a body that does not mention the limit.
    let primary = fixture!("github_primary_rate_limit");
    let forbidden = fixture!("github_forbidden");
    let err = towline_envelope::decode(primary.status, &primary.headers, forbidden.body).unwrap();
    assert_eq!(err.format, ApiFormat::GitHub);
    assert_eq!(err.kind, ApiErrorKind::RateLimited);

    let secondary = fixture!("github_secondary_rate_limit");
    let mut headers = secondary.headers.clone();
    headers.remove("x-ratelimit-remaining");
    let err = towline_envelope::decode(
        StatusCode::FORBIDDEN,
        &headers,
        &br#"{"message":"Forbidden","documentation_url":"https://docs.github.com/rest"}"#[..],
    )
    .unwrap();
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
    assert_eq!(err.retry_hint.unwrap().wait(), Duration::from_secs(60));
}

#[test]
fn a_plain_403_stays_forbidden_without_a_hint() {
    let err = decoded(&fixture!("github_forbidden"));
    assert_eq!(err.kind, ApiErrorKind::Forbidden);
    assert_eq!(err.retry_hint, None);
}

// ------------------------------------------------ 2. JSON bodies of no known format

#[test]
fn a_json_body_of_no_known_format_keeps_its_message() {
    let err = decoded(&fixture!("github_message_only"));
    assert_eq!(err.format, ApiFormat::Unrecognized);
    assert_eq!(err.kind, ApiErrorKind::NotFound);
    assert_eq!(err.message.as_deref(), Some("Not Found"));

    let err = decoded(&fixture!("drf_detail"));
    assert_eq!(
        err.message.as_deref(),
        Some("Method \"DELETE\" not allowed.")
    );
}

#[test]
fn an_oauth_error_keeps_its_description_as_message_and_its_error_as_code() {
    let err = decoded(&fixture!("oauth_invalid_grant"));
    assert_eq!(err.format, ApiFormat::Unrecognized);
    assert_eq!(err.code, Some(ApiCode::from("invalid_grant")));
    assert_eq!(
        err.message.as_deref(),
        Some("The refresh token has expired.")
    );
}

#[test]
fn an_error_string_and_its_list_of_sub_errors_survive() {
    let err = decoded(&fixture!("error_string_with_errors"));
    assert_eq!(err.message.as_deref(), Some("Validation failed"));
    let messages: Vec<_> = err.details.iter().map(|d| d.message.as_deref()).collect();
    assert_eq!(
        messages,
        [
            Some("Email has already been taken"),
            Some("is too short (minimum is 8 characters)")
        ]
    );
    assert_eq!(
        err.details[1].target,
        Some(Target::Field("password".into()))
    );
}

#[test]
fn an_explicit_format_that_does_not_match_keeps_the_message() {
    let err = only(Format::Ixon, &fixture!("github_message_only"));
    assert_eq!(err.format, ApiFormat::Unrecognized);
    assert_eq!(err.message.as_deref(), Some("Not Found"));
}

#[test]
fn stripe_chosen_reads_a_code_without_a_type() {
    let err = only(Format::Stripe, &fixture!("stripe_code_without_type"));
    assert_eq!(err.format, ApiFormat::Stripe);
    assert_eq!(err.code, Some(ApiCode::from("resource_missing")));
    assert_eq!(err.target, Some(Target::Parameter("customer".into())));
    assert_eq!(err.kind, ApiErrorKind::NotFound);
}

#[test]
fn github_chosen_reads_a_message_without_a_documentation_url() {
    let err = only(Format::GitHub, &fixture!("github_message_only"));
    assert_eq!(err.format, ApiFormat::GitHub);
    assert_eq!(err.message.as_deref(), Some("Not Found"));
}

// ------------------------------------------------ 3. the current IETF RateLimit fields

#[test]
fn the_structured_ratelimit_field_gives_the_wait_of_a_used_up_policy() {
    let err = decoded(&fixture!("ietf_ratelimit_structured"));
    let hint = err.retry_hint.unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(20));
    assert_eq!(hint.source().to_string(), "ratelimit");
}

#[test]
fn a_used_up_policy_without_a_reset_waits_its_window_capped() {
    let err = decoded(&fixture!("ietf_ratelimit_policy_only"));
    let hint = err.retry_hint.unwrap();
    assert_eq!(hint.requested(), Duration::from_secs(86_400));
    assert_eq!(hint.wait(), Duration::from_secs(3600));
}

#[test]
fn the_older_ratelimit_dictionary_form_is_still_read() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "ratelimit",
        "limit=100, remaining=0, reset=7".parse().unwrap(),
    );
    let err = towline_envelope::decode(StatusCode::TOO_MANY_REQUESTS, &headers, &b""[..]).unwrap();
    assert_eq!(err.retry_hint.unwrap().wait(), Duration::from_secs(7));
}

// ---------------------------------------------- 4. hints only where a wait is asked for

#[test]
fn a_401_with_a_used_up_quota_has_no_retry_hint() {
    let err = decoded(&fixture!("github_bad_credentials_quota_used_up"));
    assert!(matches!(err.kind, ApiErrorKind::Auth(_)));
    assert_eq!(err.retry_hint, None);
}

// ------------------------------------------------- 5. RFC 9457 members of the wrong type

#[test]
fn problem_members_of_the_wrong_type_are_ignored() {
    let err = decoded(&fixture!("problem_wrong_types"));
    assert_eq!(err.format, ApiFormat::Problem);
    assert_eq!(err.message, None, "a numeric title is no message");
    assert_eq!(
        err.code,
        Some(ApiCode::from("https://example.com/probs/out-of-credit"))
    );
}

// ------------------------------------------------------- 7. Stripe's legacy rate limit

#[test]
fn stripe_legacy_400_rate_limit_is_a_rate_limit() {
    let err = decoded(&fixture!("stripe_legacy_rate_limit"));
    assert_eq!(err.format, ApiFormat::Stripe);
    assert_eq!(err.status, StatusCode::BAD_REQUEST);
    assert_eq!(err.kind, ApiErrorKind::RateLimited);
}
