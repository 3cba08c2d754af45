//! Reading vendor envelopes leniently, without building a `serde_json::Value` where none is
//! needed.
//!
//! serde_json does all the parsing. The built-in formats read its output through [`Json`] and
//! [`Object`] (in `tree.rs`), views of either a [`Tree`] that borrows its strings from the body and keeps
//! objects as small vectors (no allocation per string, no map nodes), or of the `Value` that
//! custom formats need anyway ([`parse`]: their public trait takes one). A success body is first
//! looked at without building anything ([`top_level_str_is`]), since almost none of them is an
//! error.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::tree::Key;
pub(crate) use crate::tree::{Json, Object, Tree, field, int, nested, objects, str_field, text};

/// Parses `body` as JSON; failing that, as a JavaScript-style object literal with unquoted
/// keys (Telecom X's own documentation writes its examples that way). Never panics:
/// serde_json limits nesting to 128 levels and reports deeper input as an error.
pub(crate) fn parse(body: &[u8]) -> Option<Value> {
    // A closure, not `serde_json::from_str` itself: it must take a text of any lifetime.
    lenient(body, |text| serde_json::from_str(text))
}

/// Runs `parse` on `body` as text (without a byte order mark), and if that fails, once more
/// on the text with its bare keys quoted, when it has any.
///
/// The body's UTF-8 is checked once, here: serde_json then trusts the `&str` it is given,
/// where from bytes it checks every string it reads on its own (the larger cost, with many
/// short strings). A body that is not UTF-8 is not JSON either way.
fn lenient<T>(body: &[u8], mut parse: impl FnMut(&str) -> serde_json::Result<T>) -> Option<T> {
    let text = as_text(body)?;
    match parse(text) {
        Ok(value) => Some(value),
        Err(_) => parse(&quote_bare_keys(text)?).ok(),
    }
}

/// Parses `body` like [`parse`], as a borrowed [`Tree`], and hands it to `f` (`None` when the
/// body is not JSON). A closure because the tree may borrow from a rewritten copy of the body
/// that lives only here.
pub(crate) fn with_tree<R>(body: &[u8], f: impl FnOnce(Option<Json<'_>>) -> R) -> R {
    let Some(text) = as_text(body) else {
        return f(None);
    };
    if let Ok(tree) = serde_json::from_str::<Tree<'_>>(text) {
        return f(Some(Json::Tree(&tree)));
    }
    let quoted = quote_bare_keys(text);
    let tree = quoted
        .as_deref()
        .and_then(|quoted| serde_json::from_str::<Tree<'_>>(quoted).ok());
    f(tree.as_ref().map(Json::Tree))
}

/// Whether `body`, read like [`parse`], is an object whose top-level `key` (or a key with stray
/// spaces around it) holds the string `expected`. Everything else is skipped unbuilt, so this
/// costs a fraction of a parse: the first look at a success body, which is almost never an
/// in-band error.
pub(crate) fn top_level_str_is(body: &[u8], key: &str, expected: &str) -> bool {
    lenient(body, |text| {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let found = TopLevelStr { key, expected }.deserialize(&mut deserializer)?;
        // Trailing garbage makes the body not JSON, as for a full parse.
        deserializer.end()?;
        Ok(found)
    })
    .unwrap_or(false)
}

/// The body as text, without a byte order mark (RFC 8259 §8.1 lets a parser ignore one; some
/// servers send one). `None` when it is not UTF-8, which JSON must be.
fn as_text(body: &[u8]) -> Option<&str> {
    std::str::from_utf8(body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)).ok()
}

/// Rewrites `{ key: 1 }` as `{ "key": 1 }`, outside strings. Returns `None` when there was
/// nothing to rewrite (so a body that is simply not JSON is not parsed twice more).
fn quote_bare_keys(text: &str) -> Option<String> {
    let body = text.as_bytes();
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
    if !changed {
        return None;
    }
    // Only ASCII was inserted, at ASCII boundaries: still UTF-8.
    String::from_utf8(out).ok()
}

/// The visitor of [`top_level_str_is`]: builds the values of `key` only, skips the rest.
struct TopLevelStr<'k> {
    key: &'k str,
    expected: &'k str,
}

impl<'de> DeserializeSeed<'de> for TopLevelStr<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopLevelStr<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(Key(key)) = map.next_key()? {
            if key.trim() == self.key {
                let value = map.next_value::<Tree<'de>>()?;
                found |= Json::Tree(&value).as_str() == Some(self.expected);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    // Any other document is not such an object. An array is still read to its end, as
    // serde_json requires: an error here would send valid JSON to the lenient retry.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }

    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::NUMBER_TOKEN;
    use serde::Deserialize;

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
    fn a_body_that_is_not_utf8_is_not_json() {
        // Latin-1 inside a string: serde_json refuses it from bytes, and so does the one
        // check of the whole body. The first look at a success says no at once (it used to
        // skip the other members unchecked and say yes, and the whole parse then refused):
        // either way such a body is no in-band error.
        let latin1 = b"{\"message\": \"Gr\xFC\xDFe\", \"status\": \"error\"}";
        assert!(serde_json::from_slice::<Value>(latin1).is_err());
        assert!(parse(latin1).is_none());
        assert!(with_tree(latin1, |tree| tree.is_none()));
        assert!(!top_level_str_is(latin1, "status", "error"));
        let open2b = crate::Decoder::only(crate::Format::Open2b);
        let headers = http::HeaderMap::new();
        assert!(
            open2b
                .decode(http::StatusCode::OK, &headers, &latin1[..])
                .is_none()
        );
        // UTF-8 beyond ASCII reads as before, also with bare keys.
        let value = parse("{message: \"Grüße\"}".as_bytes()).unwrap();
        assert_eq!(value["message"], "Grüße");
    }

    #[test]
    fn keys_with_stray_spaces_are_found() {
        with_tree(br#"{" message": "Zip is missing"}"#, |tree| {
            let object = tree.unwrap().as_object().unwrap();
            assert_eq!(str_field(object, "message"), Some("Zip is missing"));
        });
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(parse(deep.as_bytes()).is_none());
        let deep_objects = "{a:".repeat(10_000) + "1" + &"}".repeat(10_000);
        assert!(parse(deep_objects.as_bytes()).is_none());
        for body in [&deep, &deep_objects] {
            assert!(with_tree(body.as_bytes(), |tree| tree.is_none()));
            assert!(!top_level_str_is(body.as_bytes(), "status", "error"));
        }
    }

    /// Reads a view back into a `Value`, to compare the two representations.
    fn to_value(json: Json<'_>) -> Value {
        match json {
            Json::Value(value) => value.clone(),
            Json::Tree(tree) => match tree {
                Tree::Null => Value::Null,
                Tree::Bool(b) => Value::Bool(*b),
                Tree::Number(n) => Value::Number(n.clone()),
                Tree::String(s) => Value::String(s.to_string()),
                Tree::Array(items) => items.iter().map(|t| to_value(Json::Tree(t))).collect(),
                Tree::Object(entries) => Value::Object(
                    entries
                        .entries
                        .iter()
                        .map(|(k, v)| (k.to_string(), to_value(Json::Tree(v))))
                        .collect(),
                ),
            },
        }
    }

    /// The tree must answer every lookup as a `Value` of the same body does: duplicate keys
    /// (the last wins), keys with stray spaces (the smallest such key wins, as a `Map` iterates
    /// in key order), escapes, numbers of every kind.
    #[test]
    fn a_number_in_serde_jsons_arbitrary_precision_form_is_a_number() {
        use serde::de::value::{Error, MapDeserializer};
        let map = MapDeserializer::<_, Error>::new(std::iter::once((NUMBER_TOKEN, "422")));
        let tree = Tree::deserialize(map).unwrap();
        assert_eq!(Json::Tree(&tree).as_i64(), Some(422));
    }

    #[test]
    fn the_tree_reads_what_a_value_reads() {
        let bodies: [&[u8]; 9] = [
            br#"{"status":"error","status":"ok","code":1,"code":"2"}"#,
            br#"{"status ":"b"," status":"a","code ":3}"#,
            br#"{" status":"a","status":"exact"," status":"c"}"#,
            br#"{"\u0073tatus":"\u0065rror","message":"tab\there","code":-9223372036854775808}"#,
            br#"{"code":18446744073709551615,"status":1.5,"message":true,"type":null,"data":[1,{"a":2,"a":3}]}"#,
            br#"{"code":1e2,"status":-0,"message":{"x":1},"type":["Error"]}"#,
            br#"{"\u2003message":"em space"," \u00a0code\u00a0":"nbsp","status\n":"newline"}"#,
            b"\xEF\xBB\xBF{\"status\": \"bom\"}",
            br#"{status: "js", code: 5, 'type': "not a key"}"#,
        ];
        let keys = ["status", "code", "message", "type", "data", "absent"];
        for body in bodies {
            let value = parse(body);
            with_tree(body, |tree| {
                assert_eq!(tree.is_some(), value.is_some());
                let (Some(tree), Some(value)) = (tree, value.as_ref()) else {
                    return;
                };
                let tree = tree.as_object().unwrap();
                let value = Json::Value(value).as_object().unwrap();
                for key in keys {
                    let name = format!("{key} in {}", String::from_utf8_lossy(body));
                    let (a, b) = (field(tree, key), field(value, key));
                    assert_eq!(a.map(to_value), b.map(to_value), "{name}");
                    assert_eq!(text(tree, key), text(value, key), "{name}");
                    assert_eq!(int(tree, key), int(value, key), "{name}");
                    assert_eq!(a.is_some_and(Json::is_u64), b.is_some_and(Json::is_u64));
                    assert_eq!(objects(tree, key).count(), objects(value, key).count());
                }
            });
        }
    }

    #[test]
    fn the_first_look_finds_a_top_level_string() {
        let yes: [&[u8]; 6] = [
            br#"{"status":"error","error":{}}"#,
            br#"{"data":[{"status":"ok"}], " status ":"error"}"#,
            br#"{"status":"ok","status":"error"}"#,
            br#"{"status":"\u0065rror"}"#,
            b"\xEF\xBB\xBF{\"status\":\"error\"}",
            br#"{status: "error", error: {type: "Malformed"}}"#,
        ];
        for body in yes {
            assert!(
                top_level_str_is(body, "status", "error"),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let no: [&[u8]; 8] = [
            br#"{"status":"success","data":{"status":"error"}}"#,
            br#"{"status":["error"]}"#,
            br#"[{"status":"error"}]"#,
            br#""error""#,
            br#"{"status":"error"} trailing"#,
            br#"{"status":"error""#,
            b"Forbidden, malformed key",
            b"",
        ];
        for body in no {
            assert!(
                !top_level_str_is(body, "status", "error"),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
