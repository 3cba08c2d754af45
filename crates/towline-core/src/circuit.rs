//! [`CircuitOpen`]: a circuit breaker refused a call without sending it.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// A circuit breaker refused the call: its key's circuit is open (the server failed too often
/// lately), or half-open with all its probe calls already in flight. The request was not sent.
///
/// [`until`](Self::until) is when the circuit lets a probe through: the end of the break for
/// an open circuit, now for a half-open one (a probe's answer decides; try again soon), and
/// about 30 years away for a circuit forced open by hand, until it is closed. The key is
/// never printed (a key may be a secret, e.g. an API key a layer keys by); read it with
/// [`key`](Self::key).
///
/// ```
/// use std::time::Duration;
/// use tokio::time::Instant;
/// use towline_core::{CircuitOpen, Error, ErrorKind};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let err = CircuitOpen::new("api.example", Instant::now() + Duration::from_secs(5));
/// assert_eq!(err.key(), "api.example");
/// assert_eq!(err.remaining(), Duration::from_secs(5));
/// assert_eq!(err.to_string(), "circuit open: calls may go again in 5s");
/// assert_eq!(Error::new(err).kind(), ErrorKind::CircuitOpen);
/// # }
/// ```
#[derive(Clone)]
pub struct CircuitOpen {
    key: Arc<str>,
    until: Instant,
}

impl CircuitOpen {
    /// The circuit of `key` lets calls (a probe) through again at `until`.
    pub fn new(key: impl Into<Arc<str>>, until: Instant) -> Self {
        CircuitOpen {
            key: key.into(),
            until,
        }
    }

    /// The key whose circuit is open.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The instant the circuit lets a probe through.
    pub fn until(&self) -> Instant {
        self.until
    }

    /// How long from now until then (zero once that instant has passed).
    pub fn remaining(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }
}

// By hand: the key may be a secret.
impl fmt::Debug for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitOpen")
            .field("key", &"<redacted>")
            .field("until", &self.until)
            .finish()
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // To the millisecond: finer digits are noise to a reader.
        let remaining = Duration::from_millis(self.remaining().as_millis() as u64);
        write!(f, "circuit open: calls may go again in {remaining:?}")
    }
}

impl StdError for CircuitOpen {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BoxError, ErrorKind, RetryBudgetExhausted, classify};

    #[tokio::test(start_paused = true)]
    async fn circuit_open_has_its_own_kind_even_when_wrapped() {
        let err = CircuitOpen::new("h", Instant::now());
        assert_eq!(
            classify(&BoxError::from(err.clone())),
            ErrorKind::CircuitOpen
        );
        let wrapped = RetryBudgetExhausted::new(Box::new(err));
        assert_eq!(
            crate::find::<CircuitOpen>(&wrapped).map(CircuitOpen::key),
            Some("h")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_key_is_never_printed() {
        let err = CircuitOpen::new("secret-api-key", Instant::now());
        assert!(!format!("{err:?} {err}").contains("secret"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_circuit_open_call_was_certainly_not_sent() {
        assert!(ErrorKind::CircuitOpen.certainly_not_sent());
    }
}
