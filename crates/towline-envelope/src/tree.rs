//! The views the formats read a body through ([`Json`], [`Object`] and the lookups on them),
//! and the [`Tree`] they usually view: a parsed body whose strings borrow from it and whose
//! objects are small vectors (no allocation per string, no map nodes).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

// ------------------------------------------------------------------------------ the views

/// A JSON value as the formats read it: from the [`Tree`], or in place from a `Value` parsed for
/// custom formats (converting that one would cost more than reading it). Both answer alike.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Json<'a> {
    Tree(&'a Tree<'a>),
    Value(&'a Value),
}

/// A JSON object as the formats read it; see [`Json`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Object<'a> {
    Tree(&'a Entries<'a>),
    Value(&'a Map<String, Value>),
}

impl<'a> Json<'a> {
    pub(crate) fn as_str(self) -> Option<&'a str> {
        match self {
            Json::Tree(Tree::String(s)) => Some(s),
            Json::Value(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    fn as_number(self) -> Option<&'a Number> {
        match self {
            Json::Tree(Tree::Number(n)) | Json::Value(Value::Number(n)) => Some(n),
            _ => None,
        }
    }

    pub(crate) fn as_i64(self) -> Option<i64> {
        self.as_number()?.as_i64()
    }

    pub(crate) fn is_u64(self) -> bool {
        self.as_number().is_some_and(Number::is_u64)
    }

    pub(crate) fn as_object(self) -> Option<Object<'a>> {
        match self {
            Json::Tree(Tree::Object(entries)) => Some(Object::Tree(entries)),
            Json::Value(Value::Object(map)) => Some(Object::Value(map)),
            _ => None,
        }
    }

    pub(crate) fn is_object(self) -> bool {
        self.as_object().is_some()
    }

    /// The items of an array; nothing for any other value.
    pub(crate) fn items(self) -> impl Iterator<Item = Json<'a>> {
        let (tree, value): (&[Tree<'a>], &[Value]) = match self {
            Json::Tree(Tree::Array(items)) => (items, &[]),
            Json::Value(Value::Array(items)) => (&[], items),
            _ => (&[], &[]),
        };
        tree.iter()
            .map(Json::Tree)
            .chain(value.iter().map(Json::Value))
    }
}

// ------------------------------------------------------------------------------- the tree

/// A parsed JSON value whose strings borrow from the body when they can (those without
/// escapes). Read it through [`Json`].
#[derive(Debug)]
pub(crate) enum Tree<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Tree<'a>>),
    Object(Entries<'a>),
}

/// An object's entries in document order, duplicate keys included. Lookups answer as a
/// `serde_json::Map` of the same body would.
#[derive(Debug, Default)]
pub(crate) struct Entries<'a> {
    pub(crate) entries: Vec<(Cow<'a, str>, Tree<'a>)>,
    /// Whether a key has whitespace around it: only then can a lookup fall back to a trimmed
    /// key, so lookups of absent keys (most of them, while formats are tried) stay one scan.
    padded: bool,
}

impl<'a> Entries<'a> {
    fn push(&mut self, key: Cow<'a, str>, value: Tree<'a>) {
        // What `str::trim` would remove, looking at one character at each end only.
        self.padded |= key.starts_with(char::is_whitespace) || key.ends_with(char::is_whitespace);
        self.entries.push((key, value));
    }

    /// What [`field`] answers for a `Map` of the same body.
    fn get(&self, key: &str) -> Option<&Tree<'a>> {
        // A `Map` keeps the last of duplicate keys.
        let exact = self.entries.iter().rev().find(|(k, _)| k.as_ref() == key);
        if exact.is_some() || !self.padded {
            return exact.map(|(_, v)| v);
        }
        // `Map::iter()` goes in key order: the smallest key that trims to `key` (the last of
        // its duplicates).
        let mut found: Option<&(Cow<'a, str>, Tree<'a>)> = None;
        for entry in &self.entries {
            if entry.0.trim() == key && found.is_none_or(|best| entry.0 <= best.0) {
                found = Some(entry);
            }
        }
        found.map(|(_, v)| v)
    }
}

impl<'de> Deserialize<'de> for Tree<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TreeVisitor)
    }
}

/// Builds a [`Tree`] as serde_json's own visitor builds a `Value`, borrowing strings instead
/// of copying them.
struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Tree<'de>, E> {
        Ok(Tree::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Tree<'de>, E> {
        Ok(Tree::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Tree<'de>, E> {
        Ok(Tree::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Tree<'de>, E> {
        Ok(Number::from_f64(n).map_or(Tree::Null, Tree::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Tree<'de>, E> {
        Ok(Tree::String(Cow::Borrowed(s)))
    }

    // A string with escapes, unescaped by serde_json into its scratch buffer.
    fn visit_str<E>(self, s: &str) -> Result<Tree<'de>, E> {
        Ok(Tree::String(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Tree<'de>, E> {
        Ok(Tree::String(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Tree<'de>, E> {
        Ok(Tree::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree<'de>, A::Error> {
        let Some(Key(first)) = map.next_key()? else {
            return Ok(Tree::Object(Entries::default()));
        };
        if first == NUMBER_TOKEN {
            // A number, as serde_json hands it over when some crate in the build turns on its
            // `arbitrary_precision` feature; its own `Value` reads it the same way.
            let digits: String = map.next_value()?;
            return Ok(digits.parse().map_or(Tree::Null, Tree::Number));
        }
        // serde_json gives no size hint. Error objects seldom have more than eight members:
        // room for eight spares the regrowth a fifth would cost. An empty object takes none
        // (the bound on a hostile body's memory is in tests/tree_memory.rs).
        let mut entries = Entries {
            entries: Vec::with_capacity(8),
            padded: false,
        };
        entries.push(first, map.next_value()?);
        while let Some(Key(key)) = map.next_key()? {
            entries.push(key, map.next_value()?);
        }
        Ok(Tree::Object(entries))
    }
}

/// The one key of the map serde_json passes a number as under its `arbitrary_precision`
/// feature (a private name of serde_json's, stable since the feature exists).
pub(crate) const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// An object key, borrowed when it has no escapes (serde's own `Cow<str>` always copies).
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(s)))
    }
}

// --------------------------------------------------------------------------- lookups

/// `object[key]`, also accepting a key written with stray spaces around it (`" message"`).
pub(crate) fn field<'a>(object: Object<'a>, key: &str) -> Option<Json<'a>> {
    match object {
        Object::Tree(entries) => entries.get(key).map(Json::Tree),
        Object::Value(map) => map
            .get(key)
            .or_else(|| map.iter().find(|(k, _)| k.trim() == key).map(|(_, v)| v))
            .map(Json::Value),
    }
}

/// A string field, or a number written as text (`"status": "422"` reads as `"422"`).
pub(crate) fn text(object: Object<'_>, key: &str) -> Option<String> {
    let value = field(object, key)?;
    if let Some(s) = value.as_str() {
        return Some(s.to_owned());
    }
    match value {
        Json::Tree(Tree::Number(n)) | Json::Value(Value::Number(n)) => Some(n.to_string()),
        Json::Tree(Tree::Bool(b)) | Json::Value(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    }
}

/// A string field only.
pub(crate) fn str_field<'a>(object: Object<'a>, key: &str) -> Option<&'a str> {
    field(object, key)?.as_str()
}

/// An integer field, also accepting an integer written as a string (`"404"`).
pub(crate) fn int(object: Object<'_>, key: &str) -> Option<i64> {
    let value = field(object, key)?;
    match value.as_str() {
        Some(s) => s.trim().parse().ok(),
        None => value.as_i64(),
    }
}

/// An object field.
pub(crate) fn nested<'a>(object: Object<'a>, key: &str) -> Option<Object<'a>> {
    field(object, key)?.as_object()
}

/// The objects of an array field (other elements skipped).
pub(crate) fn objects<'a>(object: Object<'a>, key: &str) -> impl Iterator<Item = Object<'a>> {
    field(object, key)
        .into_iter()
        .flat_map(Json::items)
        .filter_map(Json::as_object)
}
