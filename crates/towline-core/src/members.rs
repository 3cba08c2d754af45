//! [`Members`]: the JSON object an [`ApiError`](crate::ApiError) was decoded from, for the
//! members towline has no field for (RFC 9457 extensions, Google's `ErrorInfo.metadata`,
//! Stripe's `decline_code`, GitHub's `resource`, JSON:API's `meta`, IXON's `moreAfter`, ...).
//!
//! Decoding never builds it: the formats read the body through a borrowing view and keep only
//! what they recognise; each error keeps the path to its own object (inline) and a handle,
//! shared with its details, on the already capped body. The first call that asks for a member
//! parses that body once, with the decoder's own lenient parser, and keeps the result for
//! every later call on the error and its details.

use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::{Map, Value};

/// One step of the path from the body's top level to an error's own object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Step {
    Key(&'static str),
    Index(u32),
}

/// How many steps a path keeps inline (so that decoding allocates none): Google's
/// `/error/details/0/fieldViolations/1` and Telecom X's `/error/inner/0/inner/1` are the
/// deepest the built-in formats go.
const MAX_DEPTH: usize = 5;

/// `len` of a path that went deeper than [`MAX_DEPTH`] (or past a `u32` index): it leads
/// nowhere.
const TOO_DEEP: u8 = u8::MAX;

/// The steps, inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Path {
    steps: [Step; MAX_DEPTH],
    len: u8,
}

impl Path {
    const ROOT: Path = Path {
        steps: [Step::Index(0); MAX_DEPTH],
        len: 0,
    };

    fn push(mut self, step: Step) -> Path {
        match self.steps.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = step;
                self.len += 1;
            }
            None => self.len = TOO_DEEP,
        }
        self
    }

    fn too_deep(&self) -> bool {
        self.len == TOO_DEEP
    }

    fn steps(&self) -> &[Step] {
        self.steps.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// The body the members are read from, parsed on first use: one for an error and all its
/// details.
struct Source {
    body: Bytes,
    parse: Parse,
    parsed: OnceLock<Option<Value>>,
}

/// The parser a decoder reads its bodies with.
type Parse = fn(&[u8]) -> Option<Value>;

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
#[derive(Clone)]
pub struct Members {
    path: Path,
    source: Option<Arc<Source>>,
}

impl Default for Members {
    fn default() -> Self {
        Members::at_root()
    }
}

impl Members {
    /// The top level of the body (no body attached yet).
    pub fn at_root() -> Self {
        Members {
            path: Path::ROOT,
            source: None,
        }
    }

    /// The object under `key` of the current one.
    pub fn key(mut self, key: &'static str) -> Self {
        self.path = self.path.push(Step::Key(key));
        self
    }

    /// The `index`th element of the current array.
    pub fn index(mut self, index: usize) -> Self {
        match u32::try_from(index) {
            Ok(index) => self.path = self.path.push(Step::Index(index)),
            Err(_) => self.path.len = TOO_DEEP,
        }
        self
    }

    /// Attaches the (capped) body this path points into, and the parser that reads it.
    /// See [`ApiError::attach_members`](crate::ApiError::attach_members) to attach one body to
    /// an error and all its details.
    pub fn with_body(mut self, body: Bytes, parse: fn(&[u8]) -> Option<Value>) -> Self {
        self.attach(body, parse);
        self
    }

    /// [`with_body`](Members::with_body) in place.
    pub(crate) fn attach(&mut self, body: Bytes, parse: Parse) {
        self.source = Some(Arc::new(Source {
            body,
            parse,
            parsed: OnceLock::new(),
        }));
    }

    /// This error's JSON object, parsed on first use. `None` when there is no body, the body
    /// is not JSON (or was cut short by the cap), or the path leads to no object.
    pub fn object(&self) -> Option<&Map<String, Value>> {
        let source = self.source.as_ref()?;
        if self.path.too_deep() {
            return None;
        }
        let mut value = source
            .parsed
            .get_or_init(|| (source.parse)(&source.body))
            .as_ref()?;
        for step in self.path.steps() {
            value = match *step {
                Step::Key(key) => lookup(value.as_object()?, key)?,
                Step::Index(i) => value.as_array()?.get(usize::try_from(i).ok()?)?,
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
        for step in self.path.steps() {
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
        if self.path.len > 0 {
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
