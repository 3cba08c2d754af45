//! A request's key: what its gate and quota are kept under.

use std::fmt;

/// The most bytes of an authority kept inline (without allocating) as a request's key.
const INLINE_KEY: usize = 64;

/// A request's key: its authority copied inline when short (the common case: no allocation,
/// no reference count), or an owned string.
#[derive(Clone)]
pub(crate) enum Key {
    Inline { bytes: [u8; INLINE_KEY], len: u8 },
    Owned(String),
}

impl Key {
    pub(crate) fn new(key: &str) -> Self {
        if key.len() <= INLINE_KEY {
            let mut bytes = [0u8; INLINE_KEY];
            bytes[..key.len()].copy_from_slice(key.as_bytes());
            Key::Inline {
                bytes,
                len: key.len() as u8,
            }
        } else {
            Key::Owned(key.to_owned())
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Copied from a `&str` whole, so always valid UTF-8.
            Key::Inline { bytes, len } => {
                std::str::from_utf8(&bytes[..*len as usize]).unwrap_or("")
            }
            Key::Owned(key) => key,
        }
    }
}

// Keys may be secrets (an API key from `key_by`): never printed.
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}
