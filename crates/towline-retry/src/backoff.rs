//! How long to wait before each retry: a base schedule and a jitter.

use std::fmt;
use std::time::Duration;

/// The schedule of delays before retries, before jitter.
///
/// ```
/// use std::time::Duration;
/// use towline_retry::{Backoff, Jitter};
///
/// let backoff = Backoff::exponential(Duration::from_millis(100), 2.0, Duration::from_secs(10))
///     .unwrap()
///     .jitter(Jitter::None);
/// let mut rng = fastrand::Rng::with_seed(7);
/// let mut previous = None;
/// let delays: Vec<_> = (0..3)
///     .map(|n| {
///         let d = backoff.delay(n, previous, &mut rng);
///         previous = Some(d);
///         d
///     })
///     .collect();
/// assert_eq!(delays, [Duration::from_millis(100), Duration::from_millis(200), Duration::from_millis(400)]);
///
/// // Invalid settings are a typed error, not a panic later.
/// assert!(Backoff::exponential(Duration::from_secs(5), 2.0, Duration::from_secs(1)).is_err());
/// assert!(Backoff::exponential(Duration::from_secs(1), f64::NAN, Duration::from_secs(5)).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    schedule: Schedule,
    jitter: Jitter,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Schedule {
    Exponential {
        base: Duration,
        factor: f64,
        max: Duration,
    },
    Constant(Duration),
}

/// How a delay is randomised, as defined in the AWS Architecture Blog's "Exponential Backoff
/// And Jitter" (Marc Brooker, 2015). `d` is the schedule's delay for this retry.
///
/// ```
/// use towline_retry::Jitter;
///
/// assert_eq!(Jitter::default(), Jitter::Full);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Jitter {
    /// Exactly `d`.
    None,
    /// Uniform in `[0, d]`: spreads clients the most; the post's recommendation, and ours.
    #[default]
    Full,
    /// `d/2` plus uniform in `[0, d/2]`: never much shorter than the schedule.
    Equal,
    /// Uniform in `[base, 3 × previous]`, capped at the max: each delay grows from the last
    /// one actually slept rather than from the retry count.
    Decorrelated,
}

/// A backoff setting that cannot work.
///
/// ```
/// use std::time::Duration;
/// use towline_retry::{Backoff, InvalidBackoff};
///
/// let err = Backoff::exponential(Duration::from_secs(1), 0.5, Duration::from_secs(5)).unwrap_err();
/// assert_eq!(err, InvalidBackoff::FactorBelowOne);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidBackoff {
    /// The maximum delay is zero (use [`Backoff::none`] for no delay).
    ZeroMax,
    /// The base delay is zero, so every delay would be zero.
    ZeroBase,
    /// The base delay is larger than the maximum.
    BaseAboveMax,
    /// The growth factor is NaN or infinite.
    FactorNotFinite,
    /// The growth factor is below 1, so delays would shrink.
    FactorBelowOne,
}

impl fmt::Display for InvalidBackoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidBackoff::ZeroMax => "the maximum delay is zero",
            InvalidBackoff::ZeroBase => "the base delay is zero",
            InvalidBackoff::BaseAboveMax => "the base delay is larger than the maximum",
            InvalidBackoff::FactorNotFinite => "the growth factor is not a finite number",
            InvalidBackoff::FactorBelowOne => "the growth factor is below 1",
        })
    }
}

impl std::error::Error for InvalidBackoff {}

impl Default for Backoff {
    /// Exponential from 100 ms, doubling, up to 10 s, with full jitter: the AWS SDKs' shape
    /// (base 100 ms in the standard retry mode) with a cap suited to interactive API calls.
    fn default() -> Self {
        Backoff {
            schedule: Schedule::Exponential {
                base: Duration::from_millis(100),
                factor: 2.0,
                max: Duration::from_secs(10),
            },
            jitter: Jitter::Full,
        }
    }
}

impl Backoff {
    /// `base × factor^n` before the `n`-th retry (from 0), never above `max`; full jitter.
    pub fn exponential(base: Duration, factor: f64, max: Duration) -> Result<Self, InvalidBackoff> {
        if max.is_zero() {
            return Err(InvalidBackoff::ZeroMax);
        }
        if base.is_zero() {
            return Err(InvalidBackoff::ZeroBase);
        }
        if base > max {
            return Err(InvalidBackoff::BaseAboveMax);
        }
        if !factor.is_finite() {
            return Err(InvalidBackoff::FactorNotFinite);
        }
        if factor < 1.0 {
            return Err(InvalidBackoff::FactorBelowOne);
        }
        Ok(Backoff {
            schedule: Schedule::Exponential { base, factor, max },
            jitter: Jitter::Full,
        })
    }

    /// The same `delay` before every retry; no jitter unless set.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_retry::Backoff;
    ///
    /// let backoff = Backoff::constant(Duration::from_secs(1));
    /// let mut rng = fastrand::Rng::with_seed(1);
    /// assert_eq!(backoff.delay(5, None, &mut rng), Duration::from_secs(1));
    /// ```
    pub fn constant(delay: Duration) -> Self {
        Backoff {
            schedule: Schedule::Constant(delay),
            jitter: Jitter::None,
        }
    }

    /// No delay at all between retries.
    pub fn none() -> Self {
        Backoff::constant(Duration::ZERO)
    }

    /// Sets the jitter.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The largest delay this backoff can produce.
    pub fn max(&self) -> Duration {
        match self.schedule {
            Schedule::Exponential { max, .. } => max,
            Schedule::Constant(delay) => delay,
        }
    }

    /// The delay before the `retry`-th retry (0 for the first), given the delay slept before
    /// the previous one (for [`Jitter::Decorrelated`]). Never above [`max`](Backoff::max).
    pub fn delay(
        &self,
        retry: u32,
        previous: Option<Duration>,
        rng: &mut fastrand::Rng,
    ) -> Duration {
        let (base, scheduled) = match self.schedule {
            Schedule::Constant(delay) => (delay, delay),
            Schedule::Exponential { base, factor, max } => {
                // Computed in f64 seconds and clamped, so a large retry count cannot overflow.
                let grown = base.as_secs_f64() * factor.powi(retry.min(i32::MAX as u32) as i32);
                let capped = if grown.is_finite() {
                    grown.min(max.as_secs_f64())
                } else {
                    max.as_secs_f64()
                };
                // `max` itself may not survive the trip through f64 (`Duration::MAX` rounds
                // up past it): then the delay is `max`.
                let delay =
                    Duration::try_from_secs_f64(capped.max(0.0)).map_or(max, |d| d.min(max));
                (base, delay)
            }
        };
        match self.jitter {
            Jitter::None => scheduled,
            Jitter::Full => uniform(rng, Duration::ZERO, scheduled),
            Jitter::Equal => {
                let half = scheduled / 2;
                half + uniform(rng, Duration::ZERO, scheduled - half)
            }
            Jitter::Decorrelated => {
                // min(cap, random_between(base, sleep * 3)): the sample is clamped, not the
                // range, so a share of delays sit at the cap as in the AWS definition.
                let previous = previous.unwrap_or(base);
                let upper = previous.saturating_mul(3).max(base);
                uniform(rng, base, upper).min(self.max())
            }
        }
    }
}

/// Uniform in `[low, high]`, at nanosecond resolution.
fn uniform(rng: &mut fastrand::Rng, low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let span = u64::try_from((high - low).as_nanos()).unwrap_or(u64::MAX);
    low.saturating_add(Duration::from_nanos(rng.u64(0..=span)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_maximal_backoff_is_its_max_not_a_panic() {
        let backoff = Backoff::exponential(Duration::MAX, 2.0, Duration::MAX).unwrap();
        let mut rng = fastrand::Rng::with_seed(1);
        for retry in [0, 1, 64, u32::MAX] {
            assert!(backoff.delay(retry, None, &mut rng) <= Duration::MAX);
        }
        let none = backoff.jitter(Jitter::None);
        assert_eq!(none.delay(3, None, &mut rng), Duration::MAX);
    }

    fn standard() -> Backoff {
        Backoff::default()
    }

    #[test]
    fn invalid_settings_are_typed_errors() {
        let s = Duration::from_secs;
        assert_eq!(
            Backoff::exponential(s(1), 2.0, s(0)),
            Err(InvalidBackoff::ZeroMax)
        );
        assert_eq!(
            Backoff::exponential(s(9), 2.0, s(1)),
            Err(InvalidBackoff::BaseAboveMax)
        );
        assert_eq!(
            Backoff::exponential(s(1), f64::INFINITY, s(9)),
            Err(InvalidBackoff::FactorNotFinite)
        );
        assert_eq!(
            Backoff::exponential(s(1), 0.9, s(9)),
            Err(InvalidBackoff::FactorBelowOne)
        );
        assert_eq!(
            Backoff::exponential(Duration::ZERO, 2.0, s(1)),
            Err(InvalidBackoff::ZeroBase)
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let run = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..8)
                .map(|n| standard().delay(n, None, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn decorrelated_jitter_clamps_the_sample_so_some_delays_sit_at_the_cap() {
        let backoff = Backoff::exponential(Duration::from_millis(100), 2.0, Duration::from_secs(1))
            .unwrap()
            .jitter(Jitter::Decorrelated);
        let mut rng = fastrand::Rng::with_seed(9);
        let at_cap = (0..1000)
            .filter(|_| {
                backoff.delay(5, Some(Duration::from_secs(1)), &mut rng) == Duration::from_secs(1)
            })
            .count();
        // uniform(0.1 s, 3 s) is above 1 s about 69 % of the time.
        assert!((600..780).contains(&at_cap), "{at_cap} of 1000 at the cap");
    }

    #[test]
    fn huge_retry_counts_stay_at_the_max() {
        let mut rng = fastrand::Rng::with_seed(1);
        let backoff = standard().jitter(Jitter::None);
        assert_eq!(
            backoff.delay(u32::MAX, None, &mut rng),
            Duration::from_secs(10)
        );
        let fast = Backoff::exponential(Duration::from_nanos(1), 1e300, Duration::from_secs(3))
            .unwrap()
            .jitter(Jitter::None);
        assert_eq!(fast.delay(1000, None, &mut rng), Duration::from_secs(3));
    }

    proptest! {
        #[test]
        fn every_jitter_stays_within_its_bounds(
            seed in any::<u64>(),
            base_ms in 1u64..2_000,
            extra_ms in 1u64..60_000,
            factor in 1.0f64..4.0,
            retries in 1u32..40,
        ) {
            let base = Duration::from_millis(base_ms);
            let max = base + Duration::from_millis(extra_ms);
            let mut rng = fastrand::Rng::with_seed(seed);
            for jitter in [Jitter::None, Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
                let backoff = Backoff::exponential(base, factor, max).unwrap().jitter(jitter);
                let mut previous = None;
                for n in 0..retries {
                    let scheduled = Backoff::exponential(base, factor, max)
                        .unwrap()
                        .jitter(Jitter::None)
                        .delay(n, None, &mut rng);
                    let d = backoff.delay(n, previous, &mut rng);
                    prop_assert!(d <= max, "{jitter:?} gave {d:?} above {max:?}");
                    match jitter {
                        Jitter::None => prop_assert_eq!(d, scheduled),
                        Jitter::Full => prop_assert!(d <= scheduled),
                        Jitter::Equal => prop_assert!(d >= scheduled / 2 && d <= scheduled),
                        Jitter::Decorrelated => {
                            let upper = previous.unwrap_or(base).saturating_mul(3).max(base).min(max);
                            prop_assert!(d >= base.min(max) && d <= upper);
                        }
                    }
                    previous = Some(d);
                }
            }
        }
    }
}
