//! [`HedgeLayer`], its settings and what its services share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::Layer;

use super::latency::Latencies;
use super::service::Hedge;
use crate::budget::RetryBudget;

/// The default least number of latencies a window must hold before the percentile mode
/// hedges: 100, so that a 95th percentile rests on at least five answers beyond it.
pub const DEFAULT_MIN_SAMPLES: u64 = 100;

/// The default window of the percentile mode's histogram: 10 s, the window of the default
/// [`RetryBudget`] (Finagle's), so the delay and the budget follow the traffic at one pace.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);

/// A hedge setting out of range.
///
/// ```
/// use towline_retry::{HedgeLayer, InvalidHedge};
///
/// assert_eq!(HedgeLayer::latency_percentile(120.0).unwrap_err(), InvalidHedge::Percentile);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidHedge {
    /// The percentile is not a number above 0 and at most 100.
    Percentile,
    /// The window is not between 1 and 60 seconds.
    Window,
}

impl fmt::Display for InvalidHedge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvalidHedge::Percentile => "the hedge percentile must be above 0 and at most 100",
            InvalidHedge::Window => "the hedge latency window must be between 1 and 60 seconds",
        })
    }
}

impl std::error::Error for InvalidHedge {}

/// When a hedge goes out.
pub(crate) enum Delay {
    Fixed(Duration),
    Percentile(Latencies),
}

/// What every service of one layer shares.
pub(crate) struct Shared {
    pub(crate) delay: Delay,
    pub(crate) budget: RetryBudget,
    /// Whether this layer counts its calls into the budget (no retry layer above does).
    pub(crate) deposits: bool,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Hedge");
        match &self.delay {
            Delay::Fixed(delay) => debug.field("after", delay),
            Delay::Percentile(latencies) => debug
                .field("percentile", &latencies.percentile())
                .field("min_samples", &latencies.min_samples())
                .field("window", &latencies.window()),
        };
        debug
            .field("budget", &self.budget)
            .field("counts_calls", &self.deposits)
            .finish()
    }
}

/// Sends a second copy of a slow idempotent request and keeps the first answer: hedged
/// requests (Dean and Barroso, "The Tail at Scale").
///
/// After a delay — fixed ([`after`](HedgeLayer::after)) or a latency percentile of the recent
/// answers ([`latency_percentile`](HedgeLayer::latency_percentile)) — a request still waiting
/// for its answer is sent once more, and the first response of the two wins: the other
/// attempt is dropped, which cancels it. A hedge goes out only when all of these hold:
///
/// - the request is safe to send twice: GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or a POST or
///   PATCH with an `Idempotency-Key` (the retry layer's rule);
/// - its body can be sent again ([`Replayable`](towline_core::Replayable); a
///   [`ReplayBody`](towline_core::ReplayBody) still under its cap);
/// - the call's [`Deadline`](towline_core::Deadline), if any, leaves more than the delay;
/// - the [`RetryBudget`] allows it: a hedge spends from it as a retry does;
/// - in percentile mode, the last full window counted at least
///   [`min_samples`](HedgeLayer::min_samples) answers.
///
/// **Which answer wins**: the first response, whatever its status. An error is not an answer
/// while the other attempt is in flight: the call waits for that one (Polly's rule; tower's
/// `Hedge` returns whichever finishes first, errors included). When both fail, the first
/// error comes back. An error before the hedge went out ends the call at once: failures are
/// the retry layer's to judge.
///
/// The hedged copy is the next attempt of the call: its
/// [`CallContext`](towline_core::CallContext) says attempt n + 1, with the resend promise of
/// attempt n. A response the hedge layer kept after sending a copy carries
/// [`Attempts`](towline_core::Attempts) with [`hedges`](towline_core::Attempts::hedges) `1`.
///
/// One layer value is one policy domain: its services share the budget and the histogram.
///
/// ```
/// use std::time::Duration;
/// use http::{Request, Response};
/// use tower::{BoxError, ServiceBuilder, ServiceExt};
/// use towline_core::Attempts;
/// use towline_retry::HedgeLayer;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
/// let counted = calls.clone();
/// let service = ServiceBuilder::new()
///     .layer(HedgeLayer::after(Duration::from_millis(50)))
///     .service_fn(move |_req: Request<String>| {
///         // The first attempt stalls for a second; the hedge answers in 10 ms.
///         let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
///         async move {
///             let wait = if n == 0 { 1000 } else { 10 };
///             tokio::time::sleep(Duration::from_millis(wait)).await;
///             Ok::<_, BoxError>(Response::new(n))
///         }
///     });
///
/// let started = tokio::time::Instant::now();
/// let response = service.oneshot(Request::new(String::new())).await.unwrap();
/// assert_eq!(*response.body(), 1, "the hedge answered first");
/// assert_eq!(started.elapsed(), Duration::from_millis(60));
/// assert_eq!(Attempts::from_extensions(response.extensions()).unwrap().hedges(), 1);
/// # }
/// ```
#[derive(Clone)]
pub struct HedgeLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for HedgeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HedgeLayer").field(&self.shared).finish()
    }
}

impl HedgeLayer {
    /// Hedges a request that has not been answered `delay` after it was sent, spending from
    /// its own [`RetryBudget::default`] (see [`budget`](HedgeLayer::budget) to share one).
    ///
    /// `Duration::MAX` never hedges.
    pub fn after(delay: Duration) -> Self {
        Self::with(Delay::Fixed(delay))
    }

    /// Hedges a request that has not been answered after the `percentile` (above 0, at most
    /// 100) of the latencies of the last full window ([`DEFAULT_WINDOW`]), once that window
    /// counted [`DEFAULT_MIN_SAMPLES`] answers. Latencies are those of first attempts that
    /// answered with a response; a first attempt cut short by its hedge counts as long as it
    /// ran, so the slow tail stays in view.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline_retry::HedgeLayer;
    ///
    /// let layer = HedgeLayer::latency_percentile(95.0)?
    ///     .window(Duration::from_secs(5))?
    ///     .min_samples(50);
    /// # let _ = layer;
    /// # Ok::<(), towline_retry::InvalidHedge>(())
    /// ```
    pub fn latency_percentile(percentile: f64) -> Result<Self, InvalidHedge> {
        if !(percentile > 0.0 && percentile <= 100.0) {
            // Also rejects NaN.
            return Err(InvalidHedge::Percentile);
        }
        let latencies = Latencies::new(percentile, DEFAULT_MIN_SAMPLES, DEFAULT_WINDOW);
        Ok(Self::with(Delay::Percentile(latencies)))
    }

    fn with(delay: Delay) -> Self {
        HedgeLayer {
            shared: Arc::new(Shared {
                delay,
                budget: RetryBudget::default(),
                deposits: true,
            }),
        }
    }

    fn shared_mut(&mut self) -> &mut Shared {
        // The builder runs before any service exists; a layer already cloned gets its own copy.
        if Arc::get_mut(&mut self.shared).is_none() {
            let settings = match &self.shared.delay {
                Delay::Fixed(delay) => Delay::Fixed(*delay),
                Delay::Percentile(latencies) => Delay::Percentile(Latencies::new(
                    latencies.percentile(),
                    latencies.min_samples(),
                    latencies.window(),
                )),
            };
            self.shared = Arc::new(Shared {
                delay: settings,
                budget: self.shared.budget.clone(),
                deposits: self.shared.deposits,
            });
        }
        Arc::get_mut(&mut self.shared).expect("just made unique")
    }

    /// The percentile mode's histogram window (1 to 60 s, default [`DEFAULT_WINDOW`]); no
    /// effect on a fixed delay.
    pub fn window(mut self, window: Duration) -> Result<Self, InvalidHedge> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&window) {
            return Err(InvalidHedge::Window);
        }
        if let Delay::Percentile(latencies) = &mut self.shared_mut().delay {
            *latencies = Latencies::new(latencies.percentile(), latencies.min_samples(), window);
        }
        Ok(self)
    }

    /// The least number of answers the last full window must have counted before the
    /// percentile mode hedges (default [`DEFAULT_MIN_SAMPLES`]); no effect on a fixed delay.
    pub fn min_samples(mut self, samples: u64) -> Self {
        if let Delay::Percentile(latencies) = &mut self.shared_mut().delay {
            *latencies = Latencies::new(latencies.percentile(), samples, latencies.window());
        }
        self
    }

    /// Spends from `budget`, the one a [`RetryLayer`](crate::RetryLayer) above counts its calls
    /// into (give both clones of one budget: [`RetryPolicy::budget`](crate::RetryPolicy::budget)).
    /// This layer then counts no calls itself, so that a call is counted once, and its hedges
    /// and the retries share one bound.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower::ServiceBuilder;
    /// use towline_retry::{HedgeLayer, RetryBudget, RetryLayer, RetryPolicy};
    ///
    /// let budget = RetryBudget::default();
    /// let stack = ServiceBuilder::new()
    ///     .layer(RetryLayer::with_policy(RetryPolicy::new().budget(budget.clone())))
    ///     .layer(HedgeLayer::after(Duration::from_millis(200)).budget(budget));
    /// # let _ = stack;
    /// ```
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        let shared = self.shared_mut();
        shared.budget = budget;
        shared.deposits = false;
        self
    }

    /// Counts every call into `budget` and spends its hedges from it: for a hedge layer with
    /// no retry layer above sharing the budget (the default, with [`RetryBudget::default`]).
    pub fn own_budget(mut self, budget: RetryBudget) -> Self {
        let shared = self.shared_mut();
        shared.budget = budget;
        shared.deposits = true;
        self
    }
}

impl<S> Layer<S> for HedgeLayer {
    type Service = Hedge<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Hedge {
            inner,
            shared: self.shared.clone(),
        }
    }
}
