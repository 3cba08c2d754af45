//! The typed places for machine-readable fields (issue 18, item 6): the reason apart from the
//! display code, the documentation link, the instance, the view of the decoded object's other
//! members, a declined payment's kind; and decoding a recorded response as of its own `Date`
//! (item 8). On recorded responses from each vendor's documentation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, StatusCode};
use serde_json::json;
use towline_core::{ApiCode, ApiError, ApiErrorKind, Target};
use towline_envelope::Decoder;

mod common;

fn decoded(recorded: &common::Recorded) -> ApiError {
    towline_envelope::decode(recorded.status, &recorded.headers, recorded.body.clone()).unwrap()
}

const GITHUB_VALIDATION_FAILED: &[u8] = include_bytes!("fixtures/github_validation_failed.json");
const IXON_SSO_CODE_STATE_INVALID: &[u8] =
    include_bytes!("fixtures/ixon_sso_code_state_invalid.json");
const TELECOMX_MULTIPLE: &[u8] = include_bytes!("fixtures/telecomx_multiple.json");

#[test]
fn google_error_info_gives_the_reason_the_help_link_and_its_metadata() {
    let err = decoded(&fixture!("google_error_info"));
    assert_eq!(err.code, Some(ApiCode::from("RESOURCE_EXHAUSTED")));
    assert_eq!(err.reason.as_deref(), Some("RATE_LIMIT_EXCEEDED"));
    assert_eq!(
        err.doc_url.as_deref(),
        Some("https://cloud.google.com/docs/quota#requesting_higher_quota")
    );
    let metadata = &err.members.get("details").unwrap()[0]["metadata"];
    assert_eq!(metadata["service"], "sheets.googleapis.com");
    assert_eq!(err.members.pointer(), "/error");
}

#[test]
fn google_legacy_errors_keep_their_reason_and_domain() {
    let err = decoded(&fixture!("google_drive_user_rate_limit"));
    assert_eq!(err.reason.as_deref(), Some("userRateLimitExceeded"));
    let detail = &err.details[0];
    assert_eq!(detail.reason.as_deref(), Some("userRateLimitExceeded"));
    assert_eq!(detail.members.get("domain"), Some(&json!("usageLimits")));
}

#[test]
fn a_declined_card_is_a_declined_payment_with_its_decline_code() {
    let err = decoded(&fixture!("stripe_card_declined"));
    assert_eq!(err.kind, ApiErrorKind::PaymentDeclined);
    assert_eq!(err.code, Some(ApiCode::from("card_declined")));
    assert_eq!(err.reason.as_deref(), Some("insufficient_funds"));
    assert_eq!(
        err.doc_url.as_deref(),
        Some("https://stripe.com/docs/error-codes/card-declined")
    );
    assert_eq!(err.members.get("type"), Some(&json!("card_error")));
    assert_eq!(
        err.members.get("charge"),
        Some(&json!("ch_3QxYz2LkdIwHu7ix0s3Xq1Ab"))
    );
}

#[test]
fn a_problem_gives_its_instance_its_type_link_and_its_extension_members() {
    let err = decoded(&fixture!("problem_extensions"));
    assert_eq!(err.instance.as_deref(), Some("/account/12345/msgs/abc"));
    assert_eq!(
        err.doc_url.as_deref(),
        Some("https://example.com/probs/out-of-credit")
    );
    assert_eq!(err.members.get("balance"), Some(&json!(30)));
    assert_eq!(err.members.get("accounts").unwrap()[1], "/account/67890");
}

#[test]
fn a_problem_instance_of_the_wrong_type_is_ignored() {
    let err = decoded(&fixture!("problem_wrong_types"));
    assert_eq!(err.instance, None);
}

#[test]
fn a_json_api_error_gives_its_id_its_about_link_and_its_meta() {
    let err = decoded(&fixture!("jsonapi_links_meta"));
    assert_eq!(err.instance.as_deref(), Some("7f3c0a1e-err-1"));
    assert_eq!(
        err.doc_url.as_deref(),
        Some("https://api.example.com/docs/errors/invalid-attribute")
    );
    assert_eq!(err.members.get("meta"), Some(&json!({"minimum": 2})));
    assert_eq!(err.members.pointer(), "/errors/0");
}

#[test]
fn github_details_reach_their_resource_and_the_envelope_its_documentation() {
    let err = towline_envelope::decode(
        StatusCode::UNPROCESSABLE_ENTITY,
        &HeaderMap::new(),
        GITHUB_VALIDATION_FAILED,
    )
    .unwrap();
    assert_eq!(
        err.doc_url.as_deref(),
        Some("https://docs.github.com/rest/issues/issues#create-an-issue")
    );
    let resources: Vec<_> = err
        .details
        .iter()
        .map(|d| d.members.get("resource").cloned())
        .collect();
    assert_eq!(resources, [Some(json!("Issue")), Some(json!("Label"))]);
}

#[test]
fn ixon_more_after_and_telecom_x_inner_members_are_reachable() {
    let err = towline_envelope::decode(
        StatusCode::UNAUTHORIZED,
        &HeaderMap::new(),
        IXON_SSO_CODE_STATE_INVALID,
    )
    .unwrap();
    assert_eq!(err.members.get("moreAfter"), Some(&json!(null)));
    assert_eq!(
        err.details[1].members.get("propertyName"),
        Some(&json!("ssoAuthentication.state"))
    );

    let err = towline_envelope::decode(
        StatusCode::UNPROCESSABLE_ENTITY,
        &HeaderMap::new(),
        TELECOMX_MULTIPLE,
    )
    .unwrap();
    assert_eq!(err.members.get("code"), Some(&json!("multiple")));
    let inner = &err.details[0];
    assert_eq!(inner.members.pointer(), "/error/inner/0");
    assert_eq!(
        inner.members.get("code").and_then(|c| c.as_str()),
        match &inner.code {
            Some(ApiCode::Text(code)) => Some(code.as_str()),
            _ => None,
        }
    );
}

#[test]
fn members_compare_equal_whether_read_or_not() {
    let recorded = fixture!("problem_extensions");
    let (a, b) = (decoded(&recorded), decoded(&recorded));
    assert!(a.members.get("balance").is_some());
    assert_eq!(a, b);
}

#[test]
fn a_body_that_is_not_json_has_no_members() {
    let err = towline_envelope::decode(
        StatusCode::BAD_GATEWAY,
        &HeaderMap::new(),
        &b"upstream timed out"[..],
    )
    .unwrap();
    assert!(err.members.object().is_none());
}

#[test]
fn a_recorded_response_is_decoded_as_of_its_own_date() {
    let recorded = fixture!("github_primary_rate_limit");
    // Its Date, Sat, 22 Nov 2025 00:00:00 GMT; the reset is five minutes later.
    let then = UNIX_EPOCH + Duration::from_secs(1_763_769_600);
    let err = Decoder::new()
        .decode_at(
            recorded.status,
            &recorded.headers,
            recorded.body.clone(),
            then,
        )
        .unwrap();
    assert_eq!(err.retry_hint.unwrap().wait(), Duration::from_secs(300));

    // Decoded now (the Date is too far from our clock to trust), the reset has long passed.
    let now = Decoder::new()
        .decode_at(
            recorded.status,
            &recorded.headers,
            recorded.body.clone(),
            SystemTime::now(),
        )
        .unwrap();
    assert_eq!(now.retry_hint.unwrap().wait(), Duration::ZERO);
}

#[test]
fn targets_of_legacy_google_errors_name_their_location_type() {
    let err = decoded(&fixture!("google_calendar_rate_limit"));
    assert_eq!(
        err.details[0].target,
        Some(Target::Parameter("calendarId".into()))
    );
    assert_eq!(err.details[0].members.pointer(), "/error/errors/0");
}
