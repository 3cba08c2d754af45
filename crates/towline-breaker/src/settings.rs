//! [`Settings`]: when a circuit opens, how long it stays open, how it probes.

use std::fmt;
use std::time::Duration;

/// The default failure ratio that opens a circuit: 10 %, the default of Polly's circuit
/// breaker (`FailureRatio = 0.1`), which Microsoft's standard HTTP resilience handler
/// (`Microsoft.Extensions.Http.Resilience`) uses.
pub const DEFAULT_FAILURE_RATIO: f64 = 0.1;

/// The default minimum number of calls in the sampling window before the ratio counts: 100,
/// Polly's and the standard resilience handler's `MinimumThroughput`.
pub const DEFAULT_MIN_THROUGHPUT: u32 = 100;

/// The default sampling window: 30 s, Polly's and the standard resilience handler's
/// `SamplingDuration`.
pub const DEFAULT_SAMPLING_WINDOW: Duration = Duration::from_secs(30);

/// The default first break: 5 s, Polly's and the standard resilience handler's
/// `BreakDuration`.
pub const DEFAULT_BREAK: Duration = Duration::from_secs(5);

/// The default longest break: 60 s, the longest a towline call waits for a server's own "come
/// back later" by default (the retry layer's `max_hint_wait`, the rate limit's `max_wait`).
/// Each failed probe doubles the break up to it.
pub const DEFAULT_MAX_BREAK: Duration = Duration::from_secs(60);

/// The default number of probe calls a half-open circuit lets through: 1, as Polly does (one
/// trial call after the break).
pub const DEFAULT_PROBES: u32 = 1;

/// The shortest sampling window: the window is kept in ten buckets, each at least 100 µs.
pub const MIN_SAMPLING_WINDOW: Duration = Duration::from_millis(1);

/// When a circuit opens and how it recovers.
///
/// A circuit **opens** when, over the sampling window, at least `min_throughput` calls were
/// judged and the share of failures among them is at least `failure_ratio`; or, when
/// [`consecutive_failures`](Self::consecutive_failures) is set, after that many failures in a
/// row whatever the throughput. It stays **open** for the break, then lets `probes` calls
/// through (**half-open**): when they all succeed it **closes** (counts start afresh); a
/// failed probe opens it again for twice the previous break, at most `max_break`.
///
/// The window is kept in ten buckets of a tenth of it, so the oldest tenth leaves at once:
/// the ratio is over the last 90 to 100 % of the window (Polly's rolling metrics do the same).
///
/// ```
/// use std::time::Duration;
/// use towline_breaker::{InvalidSettings, Settings};
///
/// let settings = Settings::new()
///     .failure_ratio(0.5)
///     .min_throughput(20)
///     .consecutive_failures(5)
///     .break_duration(Duration::from_secs(2));
/// assert_eq!(settings.validate(), Ok(()));
/// assert_eq!(Settings::new().failure_ratio(1.5).validate(), Err(InvalidSettings::FailureRatio));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub(crate) failure_ratio: f64,
    pub(crate) min_throughput: u32,
    pub(crate) sampling_window: Duration,
    pub(crate) break_duration: Duration,
    pub(crate) max_break: Duration,
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) probes: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            failure_ratio: DEFAULT_FAILURE_RATIO,
            min_throughput: DEFAULT_MIN_THROUGHPUT,
            sampling_window: DEFAULT_SAMPLING_WINDOW,
            break_duration: DEFAULT_BREAK,
            max_break: DEFAULT_MAX_BREAK,
            consecutive_failures: None,
            probes: DEFAULT_PROBES,
        }
    }
}

impl Settings {
    /// The defaults: [`DEFAULT_FAILURE_RATIO`], [`DEFAULT_MIN_THROUGHPUT`],
    /// [`DEFAULT_SAMPLING_WINDOW`], [`DEFAULT_BREAK`], [`DEFAULT_MAX_BREAK`],
    /// [`DEFAULT_PROBES`], no consecutive-failure rule.
    ///
    /// ```
    /// assert_eq!(towline_breaker::Settings::new().validate(), Ok(()));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The share of failed calls (more than 0, at most 1) that opens the circuit.
    ///
    /// ```
    /// let settings = towline_breaker::Settings::new().failure_ratio(0.25);
    /// # assert!(settings.validate().is_ok());
    /// ```
    pub fn failure_ratio(mut self, ratio: f64) -> Self {
        self.failure_ratio = ratio;
        self
    }

    /// How many calls the window must hold (at least 1) before the ratio may open the circuit.
    ///
    /// ```
    /// let settings = towline_breaker::Settings::new().min_throughput(10);
    /// # assert!(settings.validate().is_ok());
    /// ```
    pub fn min_throughput(mut self, calls: u32) -> Self {
        self.min_throughput = calls;
        self
    }

    /// The window the ratio is measured over (at least [`MIN_SAMPLING_WINDOW`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let settings = towline_breaker::Settings::new().sampling_window(Duration::from_secs(10));
    /// # assert!(settings.validate().is_ok());
    /// ```
    pub fn sampling_window(mut self, window: Duration) -> Self {
        self.sampling_window = window;
        self
    }

    /// The first break (how long the circuit stays open); any value, `Duration::MAX` meaning
    /// about 30 years.
    ///
    /// ```
    /// use std::time::Duration;
    /// let settings = towline_breaker::Settings::new().break_duration(Duration::from_secs(1));
    /// # assert!(settings.validate().is_ok());
    /// ```
    pub fn break_duration(mut self, duration: Duration) -> Self {
        self.break_duration = duration;
        self
    }

    /// The longest break (at least the first one) that repeated failed probes grow to.
    ///
    /// ```
    /// use std::time::Duration;
    /// let settings = towline_breaker::Settings::new().max_break(Duration::from_secs(300));
    /// # assert!(settings.validate().is_ok());
    /// ```
    pub fn max_break(mut self, duration: Duration) -> Self {
        self.max_break = duration;
        self
    }

    /// Also opens after `failures` (at least 1) failures in a row, whatever the throughput: for
    /// clients that call too rarely to reach the minimum throughput.
    ///
    /// ```
    /// let settings = towline_breaker::Settings::new().consecutive_failures(5);
    /// # assert!(settings.validate().is_ok());
    /// ```
    pub fn consecutive_failures(mut self, failures: u32) -> Self {
        self.consecutive_failures = Some(failures);
        self
    }

    /// How many probe calls (at least 1) a half-open circuit lets through at once; all must
    /// succeed to close it.
    ///
    /// ```
    /// let settings = towline_breaker::Settings::new().probes(3);
    /// # assert!(settings.validate().is_ok());
    /// ```
    pub fn probes(mut self, probes: u32) -> Self {
        self.probes = probes;
        self
    }

    /// Checks every setting; the layer refuses settings that do not pass.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_breaker::{InvalidSettings, Settings};
    ///
    /// let settings = Settings::new().max_break(Duration::from_secs(1));
    /// assert_eq!(settings.validate(), Err(InvalidSettings::MaxBreak));
    /// ```
    pub fn validate(&self) -> Result<(), InvalidSettings> {
        // Also rejects NaN.
        if !(self.failure_ratio > 0.0 && self.failure_ratio <= 1.0) {
            return Err(InvalidSettings::FailureRatio);
        }
        if self.min_throughput == 0 {
            return Err(InvalidSettings::MinThroughput);
        }
        if self.sampling_window < MIN_SAMPLING_WINDOW {
            return Err(InvalidSettings::SamplingWindow);
        }
        if self.max_break < self.break_duration {
            return Err(InvalidSettings::MaxBreak);
        }
        if self.consecutive_failures == Some(0) {
            return Err(InvalidSettings::ConsecutiveFailures);
        }
        if self.probes == 0 {
            return Err(InvalidSettings::Probes);
        }
        Ok(())
    }

    /// The ratio in parts per million, so the threshold is compared exactly in integers.
    pub(crate) fn ratio_ppm(&self) -> u64 {
        (self.failure_ratio * 1e6).round() as u64
    }

    /// The break after `reopened` failed probes in a row: doubled each time, capped.
    pub(crate) fn break_after(&self, reopened: u32) -> Duration {
        let factor = 1u32 << reopened.min(31);
        self.break_duration
            .saturating_mul(factor)
            .min(self.max_break)
    }
}

/// A [`Settings`] value out of range.
///
/// ```
/// use towline_breaker::{InvalidSettings, Settings};
///
/// let err = Settings::new().probes(0).validate().unwrap_err();
/// assert_eq!(err, InvalidSettings::Probes);
/// assert_eq!(err.to_string(), "a half-open circuit must allow at least one probe");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidSettings {
    /// The failure ratio is not a number above 0 and at most 1.
    FailureRatio,
    /// The minimum throughput is 0.
    MinThroughput,
    /// The sampling window is shorter than [`MIN_SAMPLING_WINDOW`].
    SamplingWindow,
    /// The longest break is shorter than the first.
    MaxBreak,
    /// The consecutive-failure rule is set to 0.
    ConsecutiveFailures,
    /// The number of probes is 0.
    Probes,
}

impl fmt::Display for InvalidSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidSettings::FailureRatio => "the failure ratio must be above 0 and at most 1",
            InvalidSettings::MinThroughput => "the minimum throughput must be at least 1",
            InvalidSettings::SamplingWindow => "the sampling window must be at least 1 ms",
            InvalidSettings::MaxBreak => "the longest break must be at least the first break",
            InvalidSettings::ConsecutiveFailures => {
                "the consecutive-failure rule must count at least one failure"
            }
            InvalidSettings::Probes => "a half-open circuit must allow at least one probe",
        })
    }
}

impl std::error::Error for InvalidSettings {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_at_max_is_valid_and_breaks_saturate() {
        let settings = Settings::new()
            .sampling_window(Duration::MAX)
            .break_duration(Duration::MAX)
            .max_break(Duration::MAX);
        assert_eq!(settings.validate(), Ok(()));
        assert_eq!(settings.break_after(u32::MAX), Duration::MAX);
    }

    #[test]
    fn nan_and_zero_ratios_are_refused() {
        for ratio in [f64::NAN, 0.0, -0.1, 1.0001, f64::INFINITY] {
            assert_eq!(
                Settings::new().failure_ratio(ratio).validate(),
                Err(InvalidSettings::FailureRatio),
                "{ratio}"
            );
        }
        assert_eq!(Settings::new().failure_ratio(1.0).validate(), Ok(()));
    }

    #[test]
    fn the_break_doubles_up_to_its_cap() {
        let settings = Settings::new();
        let secs: Vec<u64> = (0..6).map(|n| settings.break_after(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 60, 60]);
    }
}
