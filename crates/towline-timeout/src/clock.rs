//! One clock reading per call.
//!
//! Reading the clock costs about 20 ns on a VM, a fair share of what a layer may cost.
//! `DeadlineLayer` reads it when called; a `TimeoutLayer` that call reaches at once (the
//! first attempt, sent without waiting) starts its clock from that same reading instead of
//! taking another a few hundred nanoseconds later. Anything called later (a retry, a request
//! that waited at a gate or for a token) reads the clock itself.

use std::cell::Cell;

use tokio::time::Instant;

thread_local! {
    /// The reading of the `DeadlineLayer` whose `call` is running on this thread, if any.
    static CALL_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `call` with `now` as the reading for the layers it reaches at once.
pub(crate) fn calling_at<T>(now: Instant, call: impl FnOnce() -> T) -> T {
    // Restores the enclosing reading even if `call` panics.
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALL_STARTED.set(self.0);
        }
    }
    let _restore = Restore(CALL_STARTED.replace(Some(now)));
    call()
}

/// The reading of the `DeadlineLayer` call in progress, or the clock's.
pub(crate) fn now() -> Instant {
    CALL_STARTED.get().unwrap_or_else(Instant::now)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_reading_holds_during_the_call_only_and_survives_a_panic() {
        let reading = Instant::now() - Duration::from_secs(1);
        assert_eq!(calling_at(reading, now), reading);
        let inner = calling_at(reading, || {
            calling_at(reading + Duration::from_secs(1), now)
        });
        assert_eq!(inner, reading + Duration::from_secs(1));
        assert_eq!(now(), Instant::now());
        let panicked = std::panic::catch_unwind(|| calling_at(reading, || panic!("in a call")));
        assert!(panicked.is_err());
        assert_eq!(now(), Instant::now(), "restored after the panic");
    }
}
