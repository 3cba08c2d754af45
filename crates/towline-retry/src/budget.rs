//! [`RetryBudget`]: retries may add only a fraction of the traffic, so an outage cannot
//! multiply the load.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::retry::budget::{Budget, TpsBudget};

/// A token bucket shared by every clone of a retry layer (Finagle and Linkerd's retry budget,
/// as implemented by tower's `TpsBudget`).
///
/// Each call deposits `ratio` of a token; each retry withdraws one; a floor of `min_per_sec`
/// retries per second is always allowed so that quiet clients can still retry. Deposits expire
/// after the `window`. Over any window, retries ≤ calls × ratio + min_per_sec × window.
///
/// ```
/// use std::time::Duration;
/// use towline_retry::RetryBudget;
///
/// let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.2).unwrap();
/// for _ in 0..10 {
///     budget.deposit();
/// }
/// assert!(budget.withdraw());
/// assert!(budget.withdraw());
/// assert!(!budget.withdraw(), "10 calls at 20 % allow 2 retries");
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    inner: Arc<TpsBudget>,
}

/// A budget setting out of range.
///
/// ```
/// use std::time::Duration;
/// use towline_retry::{InvalidBudget, RetryBudget};
///
/// let err = RetryBudget::new(Duration::from_secs(120), 10, 0.2).unwrap_err();
/// assert_eq!(err, InvalidBudget::Window);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidBudget {
    /// The window is not between 1 and 60 seconds.
    Window,
    /// The ratio is not a number between 0 and 1000.
    Ratio,
    /// The floor is too large.
    Floor,
}

impl fmt::Display for InvalidBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidBudget::Window => "the budget window must be between 1 and 60 seconds",
            InvalidBudget::Ratio => "the retry ratio must be a number between 0 and 1000",
            InvalidBudget::Floor => "the retries-per-second floor is too large",
        })
    }
}

impl std::error::Error for InvalidBudget {}

impl RetryBudget {
    /// A budget over `window` allowing `ratio` retries per call plus `min_per_sec` retries per
    /// second.
    pub fn new(window: Duration, min_per_sec: u32, ratio: f32) -> Result<Self, InvalidBudget> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&window) {
            return Err(InvalidBudget::Window);
        }
        if !(0.0..=1000.0).contains(&ratio) {
            // Also rejects NaN.
            return Err(InvalidBudget::Ratio);
        }
        if min_per_sec >= i32::MAX as u32 {
            return Err(InvalidBudget::Floor);
        }
        Ok(RetryBudget {
            inner: Arc::new(TpsBudget::new(window, min_per_sec, ratio)),
        })
    }

    /// Counts a call.
    pub fn deposit(&self) {
        self.inner.deposit();
    }

    /// Takes a token for a retry; `false` when the budget is empty.
    pub fn withdraw(&self) -> bool {
        self.inner.withdraw()
    }
}

impl Default for RetryBudget {
    /// A 10 s window, 20 % of calls, and 10 retries per second: Finagle's and tower's defaults.
    fn default() -> Self {
        RetryBudget {
            inner: Arc::new(TpsBudget::default()),
        }
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}
