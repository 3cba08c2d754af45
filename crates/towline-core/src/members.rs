//! [`Members`]: the JSON object an [`ApiError`](crate::ApiError) was decoded from, for the
//! members towline has no field for (RFC 9457 extensions, Google's `ErrorInfo.metadata`,
//! Stripe's `decline_code`, GitHub's `resource`, JSON:API's `meta`, IXON's `moreAfter`, ...).
//!
//! Decoding never builds it: the formats read the body through a borrowing view and keep only
//! what they recognise. The first call that asks for a member parses the (already capped) body
//! once, with the decoder's own lenient parser, and keeps the result for every later call and
//! for every nested error of the same body.

use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::{Map, Value};

/// One step of the path from the body's top level to an error's own object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Step {
    Key(Cow<'static, str>),
    Index(usize),
}

/// The body the members are read from, parsed on first use.
struct Source {
    body: Bytes,
    parse: fn(&[u8]) -> Option<Value>,
    parsed: OnceLock<Option<Value>>,
}

/// The members of the JSON object an [`ApiError`](crate::ApiError) was decoded from: the
/// error's own object (Google's and Stripe's `error`, one item of a JSON:API `errors` list,
/// the top level of a problem), to reach any member without parsing the body yourself.
///
/// Empty for an error that was not decoded from a JSON object. A decoder builds it with
/// [`Members::at_root`] and the format's path ([`key`](Members::key),
/// [`index`](Members::index)); the body is attached once for an error and all its details.
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use serde_json::json;
/// use towline_core::Members;
///
/// // What towline-envelope does for a Stripe card error.
/// let body = br#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds"}}"#;
/// let members = Members::at_root()
///     .key("error")
///     .with_body(bytes::Bytes::from_static(body), |b| serde_json::from_slice(b).ok());
/// assert_eq!(members.get("decline_code"), Some(&json!("insufficient_funds")));
/// assert_eq!(members.object().unwrap().len(), 3);
/// assert!(Members::default().get("anything").is_none());
/// ```
#[derive(Clone, Default)]
pub struct Members {
    source: Option<Arc<Source>>,
    path: Vec<Step>,
}

impl Members {
    /// The top level of the body (no body attached yet).
    pub fn at_root() -> Self {
        Members::default()
    }

    /// The object under `key` of the current one.
    pub fn key(mut self, key: impl Into<Cow<'static, str>>) -> Self {
        self.path.push(Step::Key(key.into()));
        self
    }

    /// The `index`th element of the current array.
    pub fn index(mut self, index: usize) -> Self {
        self.path.push(Step::Index(index));
        self
    }

    /// Attaches the (capped) body this path points into, and the parser that reads it.
    /// See [`ApiError::attach_members`](crate::ApiError::attach_members) to attach one body to
    /// an error and all its details.
    pub fn with_body(mut self, body: Bytes, parse: fn(&[u8]) -> Option<Value>) -> Self {
        self.source = Some(Arc::new(Source {
            body,
            parse,
            parsed: OnceLock::new(),
        }));
        self
    }

    /// This error's JSON object, parsed on first use. `None` when there is no body, the body
    /// is not JSON (or was cut short by the cap), or the path leads to no object.
    pub fn object(&self) -> Option<&Map<String, Value>> {
        let source = self.source.as_ref()?;
        let mut value = source
            .parsed
            .get_or_init(|| (source.parse)(&source.body))
            .as_ref()?;
        for step in &self.path {
            value = match step {
                Step::Key(key) => lookup(value.as_object()?, key)?,
                Step::Index(i) => value.as_array()?.get(*i)?,
            };
        }
        value.as_object()
    }

    /// One member of this error's object (a key written with stray spaces around it is found
    /// too, as the decoders find it). See the type's docs for an example.
    pub fn get(&self, key: &str) -> Option<&Value> {
        lookup(self.object()?, key)
    }

    /// The path as a JSON pointer (RFC 6901), `""` for the top level.
    ///
    /// ```
    /// use towline_core::Members;
    ///
    /// assert_eq!(Members::at_root().key("errors").index(1).pointer(), "/errors/1");
    /// ```
    pub fn pointer(&self) -> String {
        let mut out = String::new();
        for step in &self.path {
            out.push('/');
            match step {
                Step::Key(key) => out.push_str(&key.replace('~', "~0").replace('/', "~1")),
                Step::Index(i) => out.push_str(&i.to_string()),
            }
        }
        out
    }

    /// Attaches `parent`'s body to `self` (one parse serves an error and its details), when
    /// `self` has a path of its own: a detail at the top level would show its parent's object.
    pub(crate) fn share_source(&mut self, parent: &Members) {
        if !self.path.is_empty() {
            self.source = parent.source.clone();
        }
    }
}

/// `object[key]`, else the smallest key that trims to `key` (as the decoders' lookups do).
fn lookup<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object
        .get(key)
        .or_else(|| object.iter().find(|(k, _)| k.trim() == key).map(|(_, v)| v))
}

impl PartialEq for Members {
    /// The same path into the same body bytes (whether parsed yet or not).
    fn eq(&self, other: &Self) -> bool {
        let body = |m: &Members| m.source.as_ref().map(|s| s.body.clone());
        self.path == other.path && body(self) == body(other)
    }
}

impl Eq for Members {}

impl fmt::Debug for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body is `ApiError::body`'s; printing it twice would say nothing new.
        f.debug_struct("Members")
            .field("pointer", &self.pointer())
            .field("has_body", &self.source.is_some())
            .finish()
    }
}
