//! [`StoreUnavailable`]: a shared store (Redis, say) could not answer, and the call was not
//! sent.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::BoxError;

/// A store of shared state (rate-limit gates and quotas, tokens) could not answer in time,
/// and its policy is to fail closed: the request was **not sent**.
///
/// Returned by a fail-closed shared store (`towline-redis`) when its server is down, slow
/// or refuses; a fail-open store answers from local state instead. The cause (the client's
/// error, or the timeout) is its [`source`](StdError::source).
///
/// ```
/// use std::time::Duration;
/// use towline_core::StoreUnavailable;
///
/// let error = StoreUnavailable::new("redis", "reserve a quota slot")
///     .with_timeout(Duration::from_millis(100));
/// assert_eq!(error.store(), "redis");
/// assert_eq!(
///     error.to_string(),
///     "the redis store did not reserve a quota slot within 100ms; the request was not sent"
/// );
/// ```
#[derive(Debug)]
pub struct StoreUnavailable {
    store: &'static str,
    operation: &'static str,
    timeout: Option<Duration>,
    source: Option<BoxError>,
}

impl StoreUnavailable {
    /// `store` (a name: "redis") failed to do `operation` (a phrase: "look up a gate").
    pub fn new(store: &'static str, operation: &'static str) -> Self {
        StoreUnavailable {
            store,
            operation,
            timeout: None,
            source: None,
        }
    }

    /// It did not answer within `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// It failed with `source`.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The store's name.
    pub fn store(&self) -> &'static str {
        self.store
    }

    /// What it failed to do.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The time limit it did not answer within, if that was the failure.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

impl fmt::Display for StoreUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} store did not {}", self.store, self.operation)?;
        if let Some(timeout) = self.timeout {
            write!(f, " within {timeout:?}")?;
        }
        f.write_str("; the request was not sent")
    }
}

impl StdError for StoreUnavailable {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
