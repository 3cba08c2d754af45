//! Properties of `decode`: no input panics it (arbitrary bytes, arbitrary JSON, absurd nesting,
//! a megabyte of garbage), an error status always gives an error carrying that status and the
//! body, and a success status never gives one unless the body is an in-band (Open2b) error.

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use towline_core::{ApiError, ApiFormat};
use towline_envelope::{Decoder, Format};

const STATUSES: [u16; 4] = [200, 401, 429, 500];

fn headers(content_type: Option<&'static str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(value) = content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
    }
    headers
}

/// Every decoder worth trying: auto-detection, custom formats only, each built-in alone (with
/// the format it is limited to).
fn decoders() -> Vec<(Option<Format>, Decoder)> {
    let mut decoders = vec![(None, Decoder::new()), (None, Decoder::custom_only())];
    decoders.extend(Format::ALL.into_iter().map(|f| (Some(f), Decoder::only(f))));
    decoders
}

/// What holds for any decoded response, checked after every call.
fn check(
    decoder: &Decoder,
    status: StatusCode,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<ApiError> {
    let decoded = decoder.decode(status, headers, body.clone());
    if status.is_client_error() || status.is_server_error() {
        let err = decoded
            .as_ref()
            .expect("an error status always gives an error");
        assert_eq!(err.status, status);
        assert_eq!(&err.body, body);
        assert!(!err.body_truncated);
        if let Some(message) = &err.message
            && err.format == ApiFormat::Unrecognized
        {
            assert!(message.len() <= 256, "text messages are bounded");
        }
    } else if let Some(err) = &decoded {
        // Only Open2b reports errors in a 2xx among the built-ins.
        assert_eq!(err.format, ApiFormat::Open2b);
        assert_eq!(err.status, status);
        assert_eq!(&err.body, body);
        assert_eq!(err.retry_hint, None);
    }
    decoded
}

// ------------------------------------------------------------------------ JSON strategy

/// Keys the decoders look at (some with the stray space Telecom X's page has), and others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "status", "error", "type", "data", "code", "message", "errors", "details", "inner",
            "title", "detail", "instance", "propertyName", "field", "description", "path",
            "check", "@type", "retryDelay", "fieldViolations", "pointer", "parameter", "header",
            "source", "param", "documentation_url", "moreAfter", " message", "status ",
            "seconds", "nanos",
        ])
        .prop_map(str::to_owned),
        1 => "\\PC{0,8}",
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(vec![
            "error", "Error", "success", "ok", "Malformed", "AccessDenied", "UnknownField",
            "invalid_token", "expired", "credentials_invalid", "format_error", "multiple",
            "Authorization", "Api-Company", "ssoAuthentication.code", "2FA is required",
            "SSO is required", "Invalid value", "Value is too short",
            "IP address not authenticated", "x is not available for this installation",
            "type.googleapis.com/google.rpc.RetryInfo", "type.googleapis.com/google.rpc.BadRequest",
            "30s", "-1s", "99999999999999999999s", "1.5s", "s", "422", "404", " 401 ", "about:blank",
            "RESOURCE_EXHAUSTED", "UNAUTHENTICATED", "card_error", "authentication_error",
            "rate_limit_error", "invalid_request_error", "",
        ])
        .prop_map(str::to_owned),
        1 => "\\PC{0,16}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            0i64, 1, 3, 16, 200, 401, 403, 404, 422, 429, 500, 503, 999, 1000, -1
        ])
        .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Mostly objects at the top, as error bodies are.
fn json_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => prop::collection::vec((key(), json_value()), 0..8)
            .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        1 => json_value(),
    ]
}

/// Whether `value` says `"status": "error"` at its top level (a key with stray spaces counts:
/// the decoders tolerate them).
fn says_status_error(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| o.iter().any(|(k, v)| k.trim() == "status" && v == "error"))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        // Keep failures out of the source tree; a failing case is printed in full anyway.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let body = Bytes::from(body);
        for code in STATUSES {
            let status = StatusCode::from_u16(code).unwrap();
            for content_type in [None, Some("application/json"), Some("application/problem+json"), Some("application/vnd.api+json")] {
                let headers = headers(content_type);
                for (_, decoder) in decoders() {
                    check(&decoder, status, &headers, &body);
                }
                prop_assert_eq!(
                    towline_envelope::decode(status, &headers, body.clone()),
                    Decoder::new().decode(status, &headers, body.clone())
                );
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_body()) {
        let compact = Bytes::from(serde_json::to_vec(&value).unwrap());
        let pretty = Bytes::from(serde_json::to_vec_pretty(&value).unwrap());
        for code in STATUSES {
            let status = StatusCode::from_u16(code).unwrap();
            for content_type in [None, Some("application/json"), Some("application/problem+json"), Some("application/vnd.api+json")] {
                let headers = headers(content_type);
                for (only, decoder) in decoders() {
                    let a = check(&decoder, status, &headers, &compact);
                    let b = check(&decoder, status, &headers, &pretty);
                    // Whitespace does not change what is decoded. (Except with Open2b chosen,
                    // which reads a JSON body that is not Open2b's as a line of text: see
                    // open2b_chosen_keeps_json_out_of_the_message in tests/formats.rs.)
                    if only != Some(Format::Open2b) {
                        let summary = |e: ApiError| {
                            (e.format, e.code, e.message, e.target, e.kind, e.details.len())
                        };
                        prop_assert_eq!(a.map(summary), b.map(summary));
                    }
                }
            }
        }
    }

    #[test]
    fn success_without_status_error_is_never_an_error(value in json_body()) {
        prop_assume!(!says_status_error(&value));
        let body = serde_json::to_vec(&value).unwrap();
        for code in [200u16, 201, 202, 204, 206, 299] {
            let status = StatusCode::from_u16(code).unwrap();
            for content_type in [None, Some("application/json"), Some("application/problem+json")] {
                for (_, decoder) in decoders() {
                    prop_assert_eq!(decoder.decode(status, &headers(content_type), body.clone()), None);
                }
            }
        }
    }

    #[test]
    fn success_with_an_open2b_error_is_an_in_band_error(
        extra in prop::collection::vec((key(), json_value()), 0..4),
        inner in prop::collection::vec((key(), json_value()), 0..4),
    ) {
        // Whatever else the body holds, `"status":"error"` with an `error` object is Open2b's.
        let mut object: Map<String, Value> = extra.into_iter().collect();
        object.insert("status".to_owned(), Value::from("error"));
        object.insert("error".to_owned(), Value::Object(inner.into_iter().collect()));
        let body = Bytes::from(serde_json::to_vec(&object).unwrap());
        let err = check(&Decoder::new(), StatusCode::OK, &HeaderMap::new(), &body);
        prop_assert_eq!(err.map(|e| e.format), Some(ApiFormat::Open2b));
    }

    #[test]
    fn javascript_style_keys_never_panic(value in json_body()) {
        // Telecom X's page writes keys unquoted; strip the quotes of simple keys and decode.
        let text = serde_json::to_string(&value).unwrap();
        let unquoted = unquote_simple_keys(&text);
        let body = Bytes::from(unquoted);
        for code in STATUSES {
            let status = StatusCode::from_u16(code).unwrap();
            check(&Decoder::new(), status, &HeaderMap::new(), &body);
        }
    }
}

/// `{"key":1}` → `{key:1}` for keys made of `[A-Za-z_]` (a crude rewrite, good enough to
/// produce JavaScript-looking input; it may also touch look-alike text inside strings).
fn unquote_simple_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(['{', ',']) {
        out.push_str(&rest[..=start]);
        rest = &rest[start + 1..];
        if let Some(after_quote) = rest.strip_prefix('"')
            && let Some(end) = after_quote.find('"')
        {
            let key = &after_quote[..end];
            let simple =
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
            if simple && after_quote[end + 1..].starts_with(':') {
                out.push_str(key);
                rest = &after_quote[end + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

// ------------------------------------------------------------------------- deep and large

const DEEP: usize = 10_000;

fn deep_bodies() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "arrays",
            ["[".repeat(DEEP), "]".repeat(DEEP)].concat().into_bytes(),
        ),
        (
            "objects",
            [r#"{"a":"#.repeat(DEEP), "1".to_owned(), "}".repeat(DEEP)]
                .concat()
                .into_bytes(),
        ),
        (
            "unquoted objects",
            ["{a:".repeat(DEEP), "1".to_owned(), "}".repeat(DEEP)]
                .concat()
                .into_bytes(),
        ),
        (
            "telecom x inner",
            [
                r#"{"error":{"code":"multiple","status":422,"inner":["#.repeat(DEEP),
                "]}}".repeat(DEEP),
            ]
            .concat()
            .into_bytes(),
        ),
        ("unclosed arrays", "[".repeat(DEEP).into_bytes()),
        (
            "open2b wrapped",
            [
                r#"{"status":"error","error":"#.to_owned(),
                "[".repeat(DEEP),
                "]".repeat(DEEP),
                "}".to_owned(),
            ]
            .concat()
            .into_bytes(),
        ),
    ]
}

#[test]
fn nesting_10_000_deep_is_unrecognized_for_500_and_none_for_200() {
    for (name, body) in deep_bodies() {
        let body = Bytes::from(body);
        let err = towline_envelope::decode(
            StatusCode::INTERNAL_SERVER_ERROR,
            &HeaderMap::new(),
            body.clone(),
        )
        .unwrap_or_else(|| panic!("{name}: a 500 is an error"));
        assert_eq!(err.format, ApiFormat::Unrecognized, "{name}");
        assert_eq!(err.body, body);
        assert!(err.details.is_empty());
        assert_eq!(
            towline_envelope::decode(StatusCode::OK, &HeaderMap::new(), body.clone()),
            None,
            "{name}"
        );
        for code in STATUSES {
            let status = StatusCode::from_u16(code).unwrap();
            for (_, decoder) in decoders() {
                check(&decoder, status, &headers(Some("application/json")), &body);
            }
        }
    }
}

#[test]
fn nesting_just_under_the_parser_limit_is_decoded() {
    // Telecom X `inner` lists nested 60 deep (121 JSON levels; serde_json allows 128): decoded
    // recursively without trouble.
    let depth = 60;
    let item = r#"{"code":"a","status":422,"message":"m","inner":["#;
    let body = [
        r#"{"error":"#.to_owned(),
        item.repeat(depth),
        "]}".repeat(depth),
        "}".to_owned(),
    ]
    .concat();
    let err = towline_envelope::decode(StatusCode::UNPROCESSABLE_ENTITY, &HeaderMap::new(), body)
        .unwrap();
    assert_eq!(err.format, ApiFormat::TelecomX);
    let mut level = &err;
    let mut seen = 1;
    while let Some(next) = level.details.first() {
        level = next;
        seen += 1;
    }
    assert_eq!(seen, depth);
}

/// A deterministic pseudo-random byte stream (no `rand` dependency).
fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as u8
        })
        .collect()
}

#[test]
fn a_mebibyte_of_garbage() {
    const MIB: usize = 1 << 20;
    let text_garbage: Vec<u8> = garbage(MIB, 7)
        .into_iter()
        .map(|b| b" ,:{}[]\"abc_$xyz019"[usize::from(b) % 19])
        .collect();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", garbage(MIB, 42)),
        ("json-ish punctuation", text_garbage),
        ("open braces", vec![b'{'; MIB]),
        ("bare keys", b",a ".repeat(MIB / 3)),
        ("bare keys before colons", b"{a:".repeat(MIB / 3)),
        ("one long line", vec![b'x'; MIB]),
        ("whitespace", vec![b' '; MIB]),
    ];
    for (name, body) in bodies {
        let body = Bytes::from(body);
        for code in STATUSES {
            let status = StatusCode::from_u16(code).unwrap();
            for (decoder, open2b_only) in [
                (Decoder::new(), false),
                (Decoder::only(Format::Open2b), true),
            ] {
                let decoded = check(&decoder, status, &headers(Some("application/json")), &body);
                if code == 500 {
                    assert_eq!(
                        decoded.unwrap().format,
                        expected_format(open2b_only, &body),
                        "{name}"
                    );
                }
            }
        }
    }
}

/// The format a 500 with the garbage `body` gets: Open2b chosen explicitly turns a body that
/// reads as a line of text into an Open2b error; otherwise it is unrecognised.
fn expected_format(open2b_only: bool, body: &Bytes) -> ApiFormat {
    let is_text = std::str::from_utf8(body).is_ok_and(|t| {
        t.trim()
            .lines()
            .next()
            .is_some_and(|l| !l.trim().is_empty() && !l.chars().any(char::is_control))
    });
    if open2b_only && is_text {
        ApiFormat::Open2b
    } else {
        ApiFormat::Unrecognized
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The view of the members is the body's own object at the error's pointer, for the
    /// envelope and every detail, whatever the body.
    #[test]
    fn the_members_view_is_the_object_at_its_pointer(value in json_body()) {
        let body = Bytes::from(serde_json::to_vec(&value).unwrap());
        // The body as read back (a float's last digit may differ from `value`'s).
        let value: Value = serde_json::from_slice(&body).unwrap();
        for (_, decoder) in decoders() {
            let err = decoder.decode(StatusCode::BAD_REQUEST, &HeaderMap::new(), body.clone()).unwrap();
            let mut errors = vec![&err];
            while let Some(e) = errors.pop() {
                if let Some(object) = e.members.object() {
                    let expected = value.pointer(&e.members.pointer()).and_then(Value::as_object);
                    prop_assert_eq!(Some(object), expected);
                }
                errors.extend(&e.details);
            }
        }
    }

    /// Any bytes in the structured `RateLimit` fields: no panic, and a hint within the cap.
    #[test]
    fn structured_ratelimit_fields_never_panic_and_stay_under_the_cap(
        ratelimit in prop::collection::vec(any::<u8>(), 0..64),
        policy in prop::collection::vec(any::<u8>(), 0..64),
        r in 0u64..3, t in any::<u64>(), w in any::<u64>(),
    ) {
        let _ = towline_core::RateLimitEntry::parse(&ratelimit);
        let _ = towline_core::RateLimitPolicy::parse(&policy);
        let well_formed = format!("\"p\";r={r};t={}", t % 1_000_000_000_000_000);
        let well_formed_policy = format!("\"p\";q=10;w={}", w % 1_000_000_000_000_000);
        for (a, b) in [
            (ratelimit.clone(), policy.clone()),
            (well_formed.into_bytes(), well_formed_policy.into_bytes()),
        ] {
            let (Ok(a), Ok(b)) = (HeaderValue::from_bytes(&a), HeaderValue::from_bytes(&b)) else {
                continue;
            };
            let mut map = HeaderMap::new();
            map.insert("ratelimit", a);
            map.insert("ratelimit-policy", b);
            let cap = std::time::Duration::from_secs(60);
            if let Some(hint) = towline_core::HintReader::new().cap(cap).read(&map) {
                prop_assert!(hint.wait() <= cap);
            }
            let _ = towline_core::marks_rate_limit(StatusCode::FORBIDDEN, &map);
        }
    }
}
