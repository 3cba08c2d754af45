//! Small, total helpers over `serde_json::Value` for reading vendor envelopes leniently.

use serde_json::{Map, Value};

/// Parses `body` as JSON; failing that, as a JavaScript-style object literal with unquoted
/// keys (Telecom X's own documentation writes its examples that way). Never panics:
/// serde_json limits nesting to 128 levels and reports deeper input as an error.
pub(crate) fn parse(body: &[u8]) -> Option<Value> {
    // RFC 8259 §8.1 lets a parser ignore a byte order mark; some servers send one.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    match serde_json::from_slice(body) {
        Ok(value) => Some(value),
        Err(_) => {
            let quoted = quote_bare_keys(body)?;
            serde_json::from_slice(&quoted).ok()
        }
    }
}

/// Rewrites `{ key: 1 }` as `{ "key": 1 }`, outside strings. Returns `None` when there was
/// nothing to rewrite (so a body that is simply not JSON is not parsed twice more).
fn quote_bare_keys(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() + 16);
    let mut changed = false;
    let mut in_string = false;
    let mut escaped = false;
    // The last significant byte outside strings: a key follows `{` or `,`.
    let mut last = 0u8;
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            out.push(b);
            last = b;
            i += 1;
            continue;
        }
        let starts_identifier = b.is_ascii_alphabetic() || b == b'_' || b == b'$';
        if starts_identifier && matches!(last, b'{' | b',') {
            let end = body[i..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$'))
                .map_or(body.len(), |n| i + n);
            let after = body[end..].iter().find(|c| !c.is_ascii_whitespace());
            if after == Some(&b':') {
                out.push(b'"');
                out.extend_from_slice(&body[i..end]);
                out.push(b'"');
                changed = true;
                last = b'"';
                i = end;
                continue;
            }
        }
        if !b.is_ascii_whitespace() {
            last = b;
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

/// `object[key]`, also accepting a key written with stray spaces around it (`" message"`).
pub(crate) fn field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object
        .get(key)
        .or_else(|| object.iter().find(|(k, _)| k.trim() == key).map(|(_, v)| v))
}

/// A string field, or a number written as text (`"status": "422"` reads as `"422"`).
pub(crate) fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    match field(object, key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A string field only.
pub(crate) fn str_field<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    field(object, key)?.as_str()
}

/// An integer field, also accepting an integer written as a string (`"404"`).
pub(crate) fn int(object: &Map<String, Value>, key: &str) -> Option<i64> {
    match field(object, key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An object field.
pub(crate) fn nested<'a>(
    object: &'a Map<String, Value>,
    key: &str,
) -> Option<&'a Map<String, Value>> {
    field(object, key)?.as_object()
}

/// The objects of an array field (other elements skipped).
pub(crate) fn objects<'a>(
    object: &'a Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a Map<String, Value>> {
    field(object, key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn javascript_object_literals_are_read() {
        let body = br#"{
  error: {
    message: "MVNO account not found",
    code: "mvnoAccount",
    status: 404
  }
}"#;
        let value = parse(body).unwrap();
        assert_eq!(value["error"]["code"], "mvnoAccount");
        assert_eq!(value["error"]["status"], 404);
    }

    #[test]
    fn strings_that_look_like_keys_are_left_alone() {
        let value = parse(br#"{"a": "{b: 1, c: 2}", d: "x:y"}"#).unwrap();
        assert_eq!(value["a"], "{b: 1, c: 2}");
        assert_eq!(value["d"], "x:y");
    }

    #[test]
    fn not_json_at_all_is_none() {
        assert!(parse(b"Forbidden, malformed key").is_none());
        assert!(parse(b"").is_none());
        assert!(parse(b"{a: ").is_none());
    }

    #[test]
    fn keys_with_stray_spaces_are_found() {
        let value = parse(br#"{" message": "Zip is missing"}"#).unwrap();
        let object = value.as_object().unwrap();
        assert_eq!(str_field(object, "message"), Some("Zip is missing"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse(deep.as_bytes()).is_none());
        let deep_objects = "{a:".repeat(10_000) + "1" + &"}".repeat(10_000);
        assert!(parse(deep_objects.as_bytes()).is_none());
    }
}
