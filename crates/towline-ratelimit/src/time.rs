//! Saturating arithmetic on instants: no setting or hint, however large, may panic.

use std::time::Duration;

use tokio::time::Instant;

/// About 30 years: what an instant that would overflow becomes (tokio's own "far future").
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `now + wait`, or about 30 years from `now` when that overflows.
pub(crate) fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .or_else(|| now.checked_add(FAR_FUTURE))
        .unwrap_or(now)
}
