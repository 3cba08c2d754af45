//! The public formats: RFC 9457 problems, Google APIs (AIP-193 and the legacy `errors[]`),
//! Stripe, GitHub and JSON:API.
//!
//! Each reads leniently when chosen explicitly (`Decoder::only`): a Stripe body with a `code`
//! and no `type` is still Stripe's. Auto-detection asks for the markers that tell the formats
//! apart.

use std::time::Duration;

use http::StatusCode;
use towline_core::{
    ApiCode, ApiError, ApiErrorKind, ApiFormat, AuthReason, HintSource, Members, RetryHint, Target,
};

use crate::json::{Json, Object, field, int, nested, objects, str_field, text};

// ---------------------------------------------------------------------------- RFC 9457

pub(crate) fn problem(status: StatusCode, object: Object<'_>, explicit: bool) -> Option<ApiError> {
    let has_text = ["title", "detail"]
        .iter()
        .any(|k| str_field(object, k).is_some());
    let has_type_or_status =
        || str_field(object, "type").is_some() || field(object, "status").is_some_and(Json::is_u64);
    if !(has_text && (explicit || has_type_or_status())) {
        return None;
    }
    Some(problem_body(status, object))
}

/// Decodes a problem object whatever its shape (the content type already said it is one).
///
/// RFC 9457 §3.1: a member whose value has the wrong type is ignored, as if absent (so
/// `"title": 42` gives no message).
pub(crate) fn problem_body(status: StatusCode, object: Object<'_>) -> ApiError {
    let mut err = ApiError::new(status, ApiFormat::Problem);
    let kind = str_field(object, "type").filter(|t| *t != "about:blank");
    err.code = kind.map(ApiCode::from);
    // The type URI, "when dereferenced, [...] SHOULD provide human-readable documentation".
    err.doc_url = kind.filter(|t| is_web_link(t)).map(str::to_owned);
    err.instance = str_field(object, "instance").map(str::to_owned);
    err.message = str_field(object, "detail")
        .or_else(|| str_field(object, "title"))
        .map(str::to_owned);
    // The common `errors` extension: a list of field problems.
    for (i, item) in objects(object, "errors").enumerate() {
        let mut detail = list_item(status, ApiFormat::Problem, item);
        detail.members = Members::at_root().key("errors").index(i);
        err.details.push(detail);
    }
    err
}

/// One item of an error list whose shape no format fixes (a problem's `errors` extension, an
/// unrecognised body's `errors`): a message, a code, a target.
pub(crate) fn list_item(status: StatusCode, format: ApiFormat, item: Object<'_>) -> ApiError {
    let mut detail = ApiError::new(status, format);
    detail.message = str_field(item, "detail")
        .or_else(|| str_field(item, "message"))
        .or_else(|| str_field(item, "title"))
        .or_else(|| str_field(item, "description"))
        .map(str::to_owned);
    detail.code = text(item, "code").map(ApiCode::from);
    detail.target = item_target(item);
    detail
}

fn is_web_link(text: &str) -> bool {
    text.starts_with("https://") || text.starts_with("http://")
}

/// A JSON pointer, parameter, header or field named by an item of an error list.
fn item_target(item: Object<'_>) -> Option<Target> {
    let source = nested(item, "source");
    let from = |o: Object<'_>| {
        str_field(o, "pointer")
            .map(|p| Target::Pointer(p.to_owned()))
            .or_else(|| str_field(o, "parameter").map(|p| Target::Parameter(p.to_owned())))
            .or_else(|| str_field(o, "header").map(|h| Target::Header(h.to_owned())))
    };
    source
        .and_then(from)
        .or_else(|| from(item))
        .or_else(|| str_field(item, "field").map(|f| Target::Field(f.to_owned())))
}

// ------------------------------------------------------------------------------- Google

/// The legacy `errors[].reason`s (Drive, YouTube, Calendar, ...) and the `ErrorInfo.reason`
/// (AIP-193) that mean "slow down": each API's docs ask for exponential backoff.
const GOOGLE_RATE_LIMIT_REASONS: [&str; 3] = [
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "RATE_LIMIT_EXCEEDED",
];

/// Google always sends its numeric `code` and `message`: they tell it from Stripe and
/// Telecom X, whose `code` is text, whether chosen or detected.
pub(crate) fn google(status: StatusCode, object: Object<'_>) -> Option<ApiError> {
    let inner = nested(object, "error")?;
    let code = field(inner, "code").and_then(Json::as_i64);
    let message = str_field(inner, "message")?;
    code?;
    let mut err = ApiError::new(status, ApiFormat::Google);
    err.members = Members::at_root().key("error");
    // The canonical status name ("RESOURCE_EXHAUSTED") says more than the numeric code,
    // which repeats the HTTP status.
    err.code = str_field(inner, "status")
        .map(ApiCode::from)
        .or(code.map(ApiCode::Number));
    err.message = Some(message.to_owned());
    read_google_details(&mut err, inner, &Members::at_root().key("error"));
    // The legacy list (`{"domain","reason","message","locationType","location"}`).
    for (i, item) in objects(inner, "errors").enumerate() {
        let mut detail = ApiError::new(status, ApiFormat::Google);
        detail.members = Members::at_root().key("error").key("errors").index(i);
        detail.reason = str_field(item, "reason").map(str::to_owned);
        detail.message = str_field(item, "message").map(str::to_owned);
        detail.target =
            str_field(item, "location").map(|location| match str_field(item, "locationType") {
                Some("header") => Target::Header(location.to_owned()),
                Some("parameter") => Target::Parameter(location.to_owned()),
                _ => Target::Field(location.to_owned()),
            });
        if err.reason.is_none() {
            err.reason.clone_from(&detail.reason);
        }
        err.details.push(detail);
    }
    if str_field(inner, "status") == Some("UNAUTHENTICATED") {
        err.kind = ApiErrorKind::Auth(AuthReason::InvalidToken);
    } else if err
        .reason
        .as_deref()
        .is_some_and(|r| GOOGLE_RATE_LIMIT_REASONS.contains(&r))
    {
        err.kind = ApiErrorKind::RateLimited;
    }
    Some(err)
}

/// google.rpc details: `RetryInfo` becomes the retry hint, `ErrorInfo` the reason, `Help` the
/// documentation link, `BadRequest` field violations details. `at` is where `object` is.
pub(crate) fn read_google_details(err: &mut ApiError, object: Object<'_>, at: &Members) {
    for (i, detail) in objects(object, "details").enumerate() {
        let kind = str_field(detail, "@type").unwrap_or_default();
        if kind.ends_with("google.rpc.RetryInfo") {
            if let Some(delay) = field(detail, "retryDelay").and_then(proto_duration) {
                err.retry_hint = Some(RetryHint::new(delay, HintSource::Body));
            }
        } else if kind.ends_with("google.rpc.ErrorInfo") {
            err.reason = str_field(detail, "reason").map(str::to_owned);
        } else if kind.ends_with("google.rpc.Help") {
            err.doc_url = objects(detail, "links")
                .find_map(|link| str_field(link, "url"))
                .map(str::to_owned);
        } else if kind.ends_with("google.rpc.BadRequest") {
            for (j, violation) in objects(detail, "fieldViolations").enumerate() {
                let mut sub = ApiError::new(err.status, err.format);
                sub.kind = ApiErrorKind::Validation;
                sub.members = at
                    .clone()
                    .key("details")
                    .index(i)
                    .key("fieldViolations")
                    .index(j);
                sub.message = text(violation, "description");
                sub.reason = str_field(violation, "reason").map(str::to_owned);
                sub.target = str_field(violation, "field").map(|f| Target::Field(f.to_owned()));
                err.details.push(sub);
            }
        }
    }
}

/// A protobuf `Duration` in JSON: `"1.5s"`, or `{"seconds": 1, "nanos": 500000000}`.
fn proto_duration(value: Json<'_>) -> Option<Duration> {
    if let Some(s) = value.as_str() {
        let seconds = s.trim().strip_suffix('s')?;
        return towline_core::HintFormat::DeltaSeconds
            .parse(seconds.as_bytes(), std::time::UNIX_EPOCH);
    }
    let o = value.as_object()?;
    let seconds = u64::try_from(int(o, "seconds").unwrap_or(0)).ok()?;
    let nanos = u32::try_from(int(o, "nanos").unwrap_or(0)).ok()?;
    Some(Duration::from_secs(seconds).saturating_add(Duration::from_nanos(nanos.into())))
}

// ------------------------------------------------------------------------------- Stripe

pub(crate) fn stripe(status: StatusCode, object: Object<'_>, explicit: bool) -> Option<ApiError> {
    let inner = nested(object, "error")?;
    let kind = str_field(inner, "type");
    let code = str_field(inner, "code");
    // Detection needs the `type` that tells Stripe from Telecom X (a textual code too);
    // chosen explicitly, a textual `code` is enough, unless the numeric `status` of Telecom X's
    // envelope says whose it is.
    let readable =
        kind.is_some() || (explicit && code.is_some() && field(inner, "status").is_none());
    if !readable {
        return None;
    }
    let mut err = ApiError::new(status, ApiFormat::Stripe);
    err.members = Members::at_root().key("error");
    err.code = code.or(kind).map(ApiCode::from);
    err.message = text(inner, "message");
    err.target = str_field(inner, "param").map(|p| Target::Parameter(p.to_owned()));
    err.reason = str_field(inner, "decline_code").map(str::to_owned);
    err.doc_url = str_field(inner, "doc_url").map(str::to_owned);
    // Stripe's own libraries classify by HTTP status first (a bad key is a 401 with type
    // `invalid_request_error`, a rate limit a 429 with code `rate_limit`); the type and code
    // refine the rest. An older API version answered rate limits with a 400 and the code.
    err.kind = match (status.as_u16(), kind.unwrap_or_default(), code) {
        (401, _, _) | (_, "authentication_error", _) => {
            ApiErrorKind::Auth(AuthReason::CredentialsInvalid)
        }
        (429, _, _) | (_, "rate_limit_error", _) | (_, _, Some("rate_limit")) => {
            ApiErrorKind::RateLimited
        }
        (404, _, _) => ApiErrorKind::NotFound,
        (_, "idempotency_error", _) => ApiErrorKind::Conflict,
        (_, "card_error", _) => ApiErrorKind::PaymentDeclined,
        (400..=499, "invalid_request_error", _) => ApiErrorKind::Validation,
        (_, "api_error", _) => ApiErrorKind::Server,
        _ => ApiErrorKind::from_status(status),
    };
    Some(err)
}

// ------------------------------------------------------------------------------- GitHub

pub(crate) fn github(status: StatusCode, object: Object<'_>, explicit: bool) -> Option<ApiError> {
    let message = str_field(object, "message")?;
    let doc_url = str_field(object, "documentation_url");
    // Not every GitHub error links its documentation; chosen explicitly, a `message` is
    // enough, unless Attraqt's numeric `code` beside it says whose the body is.
    let attraqt = || field(object, "code").is_some_and(|c| c.as_i64().is_some());
    if doc_url.is_none() && (!explicit || attraqt()) {
        return None;
    }
    let mut err = ApiError::new(status, ApiFormat::GitHub);
    err.message = Some(message.to_owned());
    err.doc_url = doc_url.map(str::to_owned);
    // GitHub answers rate limits with 403 as well as 429 ("API rate limit exceeded",
    // "You have exceeded a secondary rate limit").
    if matches!(status.as_u16(), 403 | 429) && message.to_ascii_lowercase().contains("rate limit") {
        err.kind = ApiErrorKind::RateLimited;
    }
    for (i, item) in objects(object, "errors").enumerate() {
        let mut detail = ApiError::new(status, ApiFormat::GitHub);
        detail.members = Members::at_root().key("errors").index(i);
        detail.code = text(item, "code").map(ApiCode::from);
        detail.message = text(item, "message");
        detail.target = str_field(item, "field").map(|f| Target::Field(f.to_owned()));
        err.details.push(detail);
    }
    Some(err)
}

// ------------------------------------------------------------------------------ JSON:API

pub(crate) fn json_api(status: StatusCode, object: Object<'_>) -> Option<ApiError> {
    // GitHub also has `errors` (beside a `message`); JSON:API's top level has no message, nor
    // an `error` (home-grown bodies put one beside their own `errors` list).
    if field(object, "message").is_some() || field(object, "error").is_some() {
        return None;
    }
    let mut decoded: Vec<ApiError> = objects(object, "errors")
        .enumerate()
        .map(|(i, item)| json_api_item(status, i, item))
        .collect();
    // The first item is the envelope; several items are also its details, a lone one is not.
    let mut err = if decoded.len() > 1 {
        decoded[0].clone()
    } else {
        decoded.pop()?
    };
    // The envelope is the response: its status is the HTTP one (items keep theirs).
    if err.status != status {
        err.status = status;
        err.kind = ApiErrorKind::from_status(status);
    }
    if decoded.len() > 1 {
        err.details = decoded;
    }
    Some(err)
}

fn json_api_item(http_status: StatusCode, index: usize, item: Object<'_>) -> ApiError {
    // JSON:API writes `status` as a string ("422"); a number is tolerated too.
    let status = int(item, "status")
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(http_status);
    let mut err = ApiError::new(status, ApiFormat::JsonApi);
    err.members = Members::at_root().key("errors").index(index);
    err.code = text(item, "code").map(ApiCode::from);
    err.message = text(item, "detail").or_else(|| text(item, "title"));
    err.target = item_target(item);
    err.instance = text(item, "id");
    // `links.about` is a link: a string, or a link object with `href`.
    err.doc_url = nested(item, "links")
        .and_then(|links| field(links, "about"))
        .and_then(|about| {
            about
                .as_str()
                .or_else(|| about.as_object().and_then(|o| str_field(o, "href")))
        })
        .map(str::to_owned);
    err
}
