//! [`BulkheadFull`]: a concurrency limit refused a call without sending it.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A concurrency limit (a bulkhead) refused the call: its key already had `limit` calls in
/// flight, and either its wait queue was full, or the call waited for a place as long as it
/// could (the layer's longest wait, or the call's deadline). The request was not sent.
///
/// [`waited`](Self::waited) is how long the call waited for a place: zero when it was refused
/// at once (a full queue, or no queue). The key is never printed (a key may be a secret, e.g.
/// an API key a layer keys by); read it with [`key`](Self::key).
///
/// ```
/// use std::time::Duration;
/// use towline_core::{BulkheadFull, Error, ErrorKind};
///
/// let err = BulkheadFull::new("api.example", 8, 8, Duration::from_millis(250));
/// assert_eq!(err.key(), "api.example");
/// assert_eq!((err.in_flight(), err.limit()), (8, 8));
/// assert_eq!(err.waited(), Duration::from_millis(250));
/// assert_eq!(
///     err.to_string(),
///     "bulkhead full: 8 of 8 calls in flight, refused after waiting 250ms"
/// );
/// assert_eq!(Error::new(err).kind(), ErrorKind::BulkheadFull);
/// ```
#[derive(Clone)]
pub struct BulkheadFull {
    key: Arc<str>,
    in_flight: usize,
    limit: usize,
    waited: Duration,
}

impl BulkheadFull {
    /// `key` had `in_flight` calls in flight (of at most `limit`) when the call was refused,
    /// after waiting `waited` for a place.
    pub fn new(key: impl Into<Arc<str>>, in_flight: usize, limit: usize, waited: Duration) -> Self {
        BulkheadFull {
            key: key.into(),
            in_flight,
            limit,
            waited,
        }
    }

    /// The key whose limit was reached.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// How many calls of the key were in flight when this one was refused.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The most calls of the key that may be in flight at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How long the call waited for a place before it was refused (zero: at once).
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

// By hand: the key may be a secret.
impl fmt::Debug for BulkheadFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadFull")
            .field("key", &"<redacted>")
            .field("in_flight", &self.in_flight)
            .field("limit", &self.limit)
            .field("waited", &self.waited)
            .finish()
    }
}

impl fmt::Display for BulkheadFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bulkhead full: {} of {} calls in flight",
            self.in_flight, self.limit
        )?;
        if self.waited.is_zero() {
            f.write_str(", refused at once")
        } else {
            // To the millisecond: finer digits are noise to a reader.
            let waited = Duration::from_millis(self.waited.as_millis() as u64);
            write!(f, ", refused after waiting {waited:?}")
        }
    }
}

impl StdError for BulkheadFull {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BoxError, ErrorKind, RetryBudgetExhausted, classify};

    #[test]
    fn bulkhead_full_has_its_own_kind_even_when_wrapped() {
        let err = BulkheadFull::new("h", 1, 1, Duration::ZERO);
        assert_eq!(
            classify(&BoxError::from(err.clone())),
            ErrorKind::BulkheadFull
        );
        let wrapped = RetryBudgetExhausted::new(Box::new(err));
        assert_eq!(
            crate::find::<BulkheadFull>(&wrapped).map(BulkheadFull::key),
            Some("h")
        );
    }

    #[test]
    fn the_key_is_never_printed() {
        let err = BulkheadFull::new("secret-api-key", 2, 2, Duration::from_secs(1));
        assert!(!format!("{err:?} {err}").contains("secret"));
    }

    #[test]
    fn a_refusal_at_once_says_so() {
        let err = BulkheadFull::new("h", 3, 3, Duration::ZERO);
        assert_eq!(
            err.to_string(),
            "bulkhead full: 3 of 3 calls in flight, refused at once"
        );
    }

    #[test]
    fn a_bulkhead_full_call_was_certainly_not_sent() {
        assert!(ErrorKind::BulkheadFull.certainly_not_sent());
    }
}
