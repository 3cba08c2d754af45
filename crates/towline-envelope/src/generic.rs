//! What every decoded error gets whatever its format: the message of a JSON body no format
//! recognises, and the rate limit the response's headers announce.

use http::{HeaderMap, StatusCode};
use towline_core::{ApiCode, ApiError, ApiErrorKind, ApiFormat, Members, marks_rate_limit};

use crate::json::{Json, Object, field, str_field};
use crate::public::list_item;

/// A JSON body that matched no format: still [`ApiFormat::Unrecognized`], with what any error
/// body obviously says. The message is the first of a top-level `message`, `error_description`
/// (OAuth 2.0, RFC 6749 §5.2, whose `error` is then the code), `error` as a string, `detail`,
/// `title`, or the `message` of an `error` object; sub-errors are an `errors` list of objects
/// or of strings.
pub(crate) fn unrecognized(status: StatusCode, object: Object<'_>) -> ApiError {
    let mut err = ApiError::new(status, ApiFormat::Unrecognized);
    let error = field(object, "error");
    let error_text = error.and_then(Json::as_str);
    let description = str_field(object, "error_description");
    err.message = str_field(object, "message")
        .or(description)
        .or(error_text)
        .or_else(|| str_field(object, "detail"))
        .or_else(|| str_field(object, "title"))
        .map(str::to_owned);
    if description.is_some() {
        err.code = error_text.map(ApiCode::from);
    }
    if let Some(inner) = error.and_then(Json::as_object) {
        if err.message.is_none() {
            err.message = str_field(inner, "message").map(str::to_owned);
            err.members = Members::at_root().key("error");
        }
        err.code = err.code.take().or_else(|| {
            field(inner, "code").and_then(|code| match code.as_str() {
                Some(text) => Some(ApiCode::from(text)),
                None => code.as_i64().map(ApiCode::Number),
            })
        });
    }
    let list = field(object, "errors");
    for (i, item) in list.into_iter().flat_map(Json::items).enumerate() {
        let detail = match (item.as_object(), item.as_str()) {
            (Some(item), _) => {
                let mut detail = list_item(status, ApiFormat::Unrecognized, item);
                detail.members = Members::at_root().key("errors").index(i);
                detail
            }
            (None, Some(text)) => {
                let mut detail = ApiError::new(status, ApiFormat::Unrecognized);
                detail.message = Some(text.to_owned());
                detail
            }
            (None, None) => continue,
        };
        err.details.push(detail);
    }
    if err.message.is_none() {
        err.message = err.details.first().and_then(|d| d.message.clone());
    }
    err
}

/// Marks `err` as a rate limit when the response's headers say it is one
/// ([`marks_rate_limit`]: a 403 with `Retry-After` or a used-up quota), unless the body said
/// the credentials were refused.
pub(crate) fn mark_rate_limit(err: &mut ApiError, status: StatusCode, headers: &HeaderMap) {
    if matches!(err.kind, ApiErrorKind::Auth(_)) || err.kind == ApiErrorKind::RateLimited {
        return;
    }
    if marks_rate_limit(status, headers) {
        err.kind = ApiErrorKind::RateLimited;
    }
}
