//! Saturating arithmetic on instants: no setting or hint, however large, may panic.

use std::time::Duration;

use tokio::time::Instant;

/// About 30 years: "never" as an instant (tokio's own far future).
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `now + wait`, with any wait past about 30 years counted as 30 years: every "never" is the
/// same instant, so a wait of `Duration::MAX` still fits within a `max_wait` of
/// `Duration::MAX`, and no sum overflows.
pub(crate) fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait.min(FAR_FUTURE)).unwrap_or(now)
}
