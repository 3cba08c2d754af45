//! The built-in error-body formats: how each is recognised and what each field means. The
//! four seed vendors (IXON, Attraqt, Open2b, Telecom X) are here, the public formats in
//! `public.rs`, and what is read from a body no format recognises in `generic.rs`.
//!
//! Every decoder takes an already parsed JSON value and returns `None` when the value does not
//! have its format's shape, so auto-detection can try them in turn. None of them panics on any
//! value: a wrong type is treated like a missing field.

use std::time::Duration;

use http::StatusCode;
use towline_core::{
    ApiCode, ApiError, ApiErrorKind, ApiFormat, AuthReason, HintSource, Members, RetryHint, Target,
};

use crate::json::{self, Json, Object, field, int, nested, objects, str_field, text};
use crate::public;

/// Decodes `json` if it has `format`'s shape. `status` is the response's. `explicit`: the
/// format was chosen (`Decoder::only`), so it reads what it can without asking for the markers
/// detection needs to tell it from the others. `None` for a format that is not built in
/// ([`ApiFormat::Custom`], [`ApiFormat::Unrecognized`]).
pub(crate) fn decode(
    format: ApiFormat,
    status: StatusCode,
    json: Json<'_>,
    explicit: bool,
) -> Option<ApiError> {
    let object = json.as_object()?;
    match format {
        ApiFormat::Ixon => ixon(status, object),
        ApiFormat::Attraqt => attraqt(status, object),
        ApiFormat::Open2b => open2b(status, object),
        ApiFormat::TelecomX => telecom_x(status, object),
        ApiFormat::Problem => public::problem(status, object, explicit),
        ApiFormat::Google => public::google(status, object),
        ApiFormat::Stripe => public::stripe(status, object, explicit),
        ApiFormat::GitHub => public::github(status, object, explicit),
        ApiFormat::JsonApi => public::json_api(status, object),
        _ => None,
    }
}

/// Whether `json` reports an error in a 2xx response, in a format with in-band errors.
pub(crate) fn is_in_band_error(format: ApiFormat, json: Json<'_>) -> bool {
    let Some(object) = json.as_object() else {
        return false;
    };
    match format {
        ApiFormat::Open2b => {
            str_field(object, "status") == Some("error") && object_field_is(object, "error")
        }
        _ => false,
    }
}

/// A first look at a raw success body, without parsing it whole: `false` when
/// [`is_in_band_error`] is certainly false for it, so that the (nearly always) real successes
/// cost a fraction of a parse.
pub(crate) fn may_be_in_band_error(format: ApiFormat, body: &[u8]) -> bool {
    match format {
        ApiFormat::Open2b => json::top_level_str_is(body, "status", "error"),
        _ => false,
    }
}

fn object_field_is(object: Object<'_>, key: &str) -> bool {
    field(object, key).is_some_and(Json::is_object)
}

/// The kind for a status, unless a more precise one was found.
fn kind_or_status(kind: Option<ApiErrorKind>, status: StatusCode) -> ApiErrorKind {
    kind.unwrap_or_else(|| ApiErrorKind::from_status(status))
}

// ------------------------------------------------------------------------------------ IXON

/// How long IXON keeps a tripped burst limit: its 429 says nothing of the wait, but its
/// public documentation does ("once hit, the limit stays for 10 minutes").
const IXON_BURST_LOCK: Duration = Duration::from_secs(600);

fn ixon(status: StatusCode, object: Object<'_>) -> Option<ApiError> {
    // Success bodies share the envelope ({"status":"success","type":...}): decide on both.
    if str_field(object, "status") != Some("error") || str_field(object, "type") != Some("Error") {
        return None;
    }
    let mut err = ApiError::new(status, ApiFormat::Ixon);
    for (i, item) in objects(object, "data").enumerate() {
        let mut detail = ApiError::new(status, ApiFormat::Ixon);
        detail.members = Members::at_root().key("data").index(i);
        detail.message = text(item, "message");
        detail.target = str_field(item, "propertyName").map(ixon_target);
        detail.kind = ixon_auth_reason(detail.message.as_deref(), str_field(item, "propertyName"))
            .map_or_else(|| ApiErrorKind::from_status(status), ApiErrorKind::Auth);
        err.details.push(detail);
    }
    // The most precise auth reason of any entry names the envelope (an entry about another
    // header may come first).
    let reason = |specific: bool| {
        err.details.iter().find_map(|d| match d.kind {
            ApiErrorKind::Auth(reason) if !specific || reason != AuthReason::Unknown => {
                Some(ApiErrorKind::Auth(reason))
            }
            _ => None,
        })
    };
    err.kind = reason(true)
        .or_else(|| reason(false))
        .unwrap_or_else(|| ApiErrorKind::from_status(status));
    if status == StatusCode::TOO_MANY_REQUESTS {
        // The documented lock is the wait: retrying into it only extends it, and the
        // rate-limit layer holds every call to the key for it.
        err.retry_hint = Some(RetryHint::new(IXON_BURST_LOCK, HintSource::Body));
    }
    // The envelope's own fields are those of its first (usually only) entry: a lone entry is
    // not kept as a detail, so its fields move rather than copy.
    if err.details.len() == 1 {
        if let Some(only) = err.details.pop() {
            err.message = only.message;
            err.target = only.target;
        }
    } else if let Some(first) = err.details.first() {
        err.message = first.message.clone();
        err.target = first.target.clone();
    }
    Some(err)
}

/// IXON names headers (`Authorization`, `Api-Company`, ...) and body properties alike in
/// `propertyName`; its headers are `Authorization` and the `Api-*` family.
fn ixon_target(name: &str) -> Target {
    if name.eq_ignore_ascii_case("authorization") || name.starts_with("Api-") {
        Target::Header(name.to_owned())
    } else {
        Target::Field(name.to_owned())
    }
}

/// The authorization errors of IXON's "Common errors" page.
fn ixon_auth_reason(message: Option<&str>, property: Option<&str>) -> Option<AuthReason> {
    let message = message?.trim();
    let on_authorization = property.is_some_and(|p| p.eq_ignore_ascii_case("authorization"));
    let on_sso = property.is_some_and(|p| p.starts_with("ssoAuthentication."));
    if message.eq_ignore_ascii_case("2FA is required") {
        Some(AuthReason::TwoFactorRequired)
    } else if message.eq_ignore_ascii_case("SSO is required") {
        Some(AuthReason::SsoRequired)
    } else if on_sso {
        Some(AuthReason::SsoInvalid)
    } else if !on_authorization {
        None
    } else if message.eq_ignore_ascii_case("Invalid value") {
        Some(AuthReason::InvalidToken)
    } else if message.eq_ignore_ascii_case("Value is too short") {
        Some(AuthReason::TokenTooShort)
    } else if message.eq_ignore_ascii_case("Value is too long") {
        Some(AuthReason::TokenTooLong)
    } else if message.starts_with("Authorization must start with a type") {
        Some(AuthReason::MalformedHeader)
    } else if message.eq_ignore_ascii_case("Value does not match regex expression") {
        Some(AuthReason::TokenMalformed)
    } else {
        Some(AuthReason::Unknown)
    }
}

// --------------------------------------------------------------------------------- Attraqt

fn attraqt(status: StatusCode, object: Object<'_>) -> Option<ApiError> {
    // google.rpc.Status at the top level: a numeric code and a message, nothing that belongs
    // to another format.
    let code = field(object, "code")?.as_i64()?;
    let message = str_field(object, "message")?;
    if field(object, "error").is_some() || field(object, "status").is_some() {
        return None;
    }
    let mut err = ApiError::new(status, ApiFormat::Attraqt);
    err.code = Some(ApiCode::Number(code));
    err.message = Some(message.to_owned());
    public::read_google_details(&mut err, object, &Members::at_root());
    // Attraqt: "401: refresh the access token and retry"; gRPC 16 is UNAUTHENTICATED.
    if status == StatusCode::UNAUTHORIZED || code == 16 {
        err.kind = ApiErrorKind::Auth(AuthReason::InvalidToken);
    }
    Some(err)
}

// ---------------------------------------------------------------------------------- Open2b

/// Open2b's error types, from its "Common errors" table.
const OPEN2B_TYPES: [&str; 7] = [
    "UnknownField",
    "AccessDenied",
    "Missing",
    "MissingCombination",
    "Malformed",
    "InvalidValue",
    "InvalidCombination",
];

fn open2b(status: StatusCode, object: Object<'_>) -> Option<ApiError> {
    if str_field(object, "status") != Some("error") {
        return None;
    }
    let inner = nested(object, "error")?;
    let mut err = ApiError::new(status, ApiFormat::Open2b);
    err.members = Members::at_root().key("error");
    let kind = str_field(inner, "type");
    err.code = kind.map(ApiCode::from);
    err.message = text(inner, "description");
    let field_name = str_field(inner, "field");
    let is_method = err
        .message
        .as_deref()
        .is_some_and(|m| m.contains("is not available for this installation"));
    err.target = field_name.map(|name| {
        if is_method {
            Target::Method(name.to_owned())
        } else {
            Target::Field(name.to_owned())
        }
    });
    err.kind = match kind {
        Some("AccessDenied") => ApiErrorKind::Forbidden,
        Some(t) if OPEN2B_TYPES.contains(&t) => ApiErrorKind::Validation,
        _ => kind_or_status(None, status),
    };
    // In a 200, the status says nothing: an unknown type is still a failed call.
    if err.kind == ApiErrorKind::Other && status.is_success() {
        err.kind = ApiErrorKind::Validation;
    }
    Some(err)
}

/// Open2b's non-JSON replies ("403 Forbidden, malformed key", ...), when Open2b was chosen
/// explicitly: the text is the message; a key problem is an auth error.
pub(crate) fn open2b_text(status: StatusCode, text: &str) -> ApiError {
    let mut err = ApiError::new(status, ApiFormat::Open2b);
    err.message = Some(text.to_owned());
    let lower = text.to_ascii_lowercase();
    if status == StatusCode::FORBIDDEN && lower.contains("key") {
        err.kind = ApiErrorKind::Auth(AuthReason::CredentialsInvalid);
    }
    err
}

// ------------------------------------------------------------------------------- Telecom X

fn telecom_x(status: StatusCode, object: Object<'_>) -> Option<ApiError> {
    let inner = nested(object, "error")?;
    // A textual code and a numeric status tell it apart from Google (numeric code) and Stripe
    // (a `type`).
    let code = str_field(inner, "code")?;
    let body_status = int(inner, "status")?;
    if field(inner, "type").is_some() {
        return None;
    }
    let mut err = telecom_x_item(
        status,
        code,
        body_status,
        inner,
        Members::at_root().key("error"),
    );
    // The envelope is the response: its status is the HTTP one (inner items keep theirs).
    if err.status != status {
        err.status = status;
        if !matches!(err.kind, ApiErrorKind::Auth(_)) {
            err.kind = ApiErrorKind::from_status(status);
        }
    }
    Some(err)
}

fn telecom_x_item(
    http_status: StatusCode,
    code: &str,
    body_status: i64,
    item: Object<'_>,
    at: Members,
) -> ApiError {
    // Each item carries its own status; the HTTP one is the fallback.
    let status = u16::try_from(body_status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(http_status);
    let mut err = ApiError::new(status, ApiFormat::TelecomX);
    err.members = at;
    err.code = Some(ApiCode::from(code));
    err.message = text(item, "message");
    // `code` is "the path of the property that has errored or a default error message";
    // `path`, when present, is the property.
    err.target = match str_field(item, "path") {
        Some(path) => Some(Target::Field(path.to_owned())),
        None if status != StatusCode::UNAUTHORIZED && code != "multiple" => {
            Some(Target::Field(code.to_owned()))
        }
        None => None,
    };
    if status == StatusCode::UNAUTHORIZED {
        let reason = match code {
            "expired" => AuthReason::Expired,
            "credentials_invalid" => AuthReason::CredentialsInvalid,
            "format_error" => AuthReason::MalformedHeader,
            "invalid_token"
                if err
                    .message
                    .as_deref()
                    .is_some_and(|m| m.to_ascii_lowercase().contains("ip address")) =>
            {
                AuthReason::IpNotAllowed
            }
            "invalid_token" => AuthReason::InvalidToken,
            _ => AuthReason::Unknown,
        };
        err.kind = ApiErrorKind::Auth(reason);
    }
    for (i, inner) in objects(item, "inner").enumerate() {
        if let (Some(code), Some(status)) = (str_field(inner, "code"), int(inner, "status")) {
            let at = err.members.clone().key("inner").index(i);
            err.details
                .push(telecom_x_item(http_status, code, status, inner, at));
        }
    }
    // "multiple" says nothing itself: show the first inner error's message.
    if err.message.is_none() {
        err.message = err.details.first().and_then(|d| d.message.clone());
    }
    err
}
