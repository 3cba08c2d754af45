//! [`DisplayChain`]: an error and its sources on one line, for a log.

use std::error::Error as StdError;
use std::fmt;

/// Formats an error and its chain of sources on one line, `": "` between links, each link
/// once: `tracing::warn!(error = %DisplayChain::new(&err))`.
///
/// It follows std's convention, as towline's errors do: an error whose `Display` already
/// includes its cause does not return that cause from `source()`, so printing every link says
/// each thing once. (`std::io::Error` prints the error it wraps and returns that error's
/// source; [`Error`](crate::Error) prints the causes towline's wrappers leave out and returns
/// the source of the last one.) The walk is bounded (64 links), for cyclic chains.
///
/// ```
/// use towline_core::{BoxError, DisplayChain, RetryBudgetExhausted};
///
/// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
/// let err: BoxError = Box::new(RetryBudgetExhausted::new(Box::new(refused)));
/// assert_eq!(DisplayChain::new(&*err).to_string(), "retry budget exhausted: connection refused");
/// ```
#[derive(Clone, Copy)]
pub struct DisplayChain<'a> {
    error: &'a (dyn StdError + 'static),
}

impl<'a> DisplayChain<'a> {
    /// The chain of `error`, itself first.
    pub fn new(error: &'a (dyn StdError + 'static)) -> Self {
        DisplayChain { error }
    }
}

impl fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX_DEPTH: usize = 64;
        fmt::Display::fmt(self.error, f)?;
        let sources = std::iter::successors(self.error.source(), |&e| e.source());
        for source in sources.take(MAX_DEPTH - 1) {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DisplayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DisplayChain")
            .field(&format_args!("{self}"))
            .finish()
    }
}
