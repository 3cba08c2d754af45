//! Saturating arithmetic on instants: no setting, however large, may panic.

use std::time::Duration;

use tokio::time::Instant;

/// About 30 years: "never" as an instant (tokio's own far future).
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `now + wait`, any wait past about 30 years counted as 30 years.
pub(crate) fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait.min(FAR_FUTURE)).unwrap_or(now)
}

/// Nanoseconds from `origin` to `now`, saturating (584 years).
pub(crate) fn nanos_since(origin: Instant, now: Instant) -> u64 {
    let elapsed = now.saturating_duration_since(origin);
    // Not `as_nanos`: u64 math is cheaper than u128 on the path of every call.
    elapsed
        .as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(elapsed.subsec_nanos()))
}

/// `duration` in nanoseconds, saturating.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
