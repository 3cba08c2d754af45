//! [`RetryLayer`], its service and its response future.

use std::fmt;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Request, Response};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep};
use tower::{Layer, Service};
use towline_core::{
    ApiError, AttemptOutcome, Attempts, BoxError, Deadline, ErrorKind, RateLimitReason,
    RateLimited, ReplayOffer, ReplayRequested, Replayable, Retried, RetryBudgetExhausted,
    RetryHint, replay_request,
};

use crate::backoff::Backoff;
use crate::budget::RetryBudget;
use crate::classify::{Classify, Outcome, StandardClassifier, Verdict};

/// The default number of retries after the first attempt: 3 (4 attempts in all).
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// The default longest server-requested wait a retry will sleep: 60 s.
///
/// `Retry-After` values for overload are usually seconds; a longer wait (IXON keeps a tripped
/// limit for 10 minutes) is better served by failing fast with [`RateLimited`] and letting
/// the rate-limit layer hold every request to that key, than by one call sleeping for it.
pub const DEFAULT_MAX_HINT_WAIT: Duration = Duration::from_secs(60);

/// The `Idempotency-Key` header (IETF draft `httpapi-idempotency-key-header`, Stripe).
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// How a [`RetryLayer`] retries: every part replaceable, every default documented.
///
/// ```
/// use std::time::Duration;
/// use towline_retry::{Backoff, Jitter, RetryBudget, RetryLayer, RetryPolicy};
///
/// let policy = RetryPolicy::new()
///     .max_retries(5)
///     .backoff(Backoff::exponential(Duration::from_millis(50), 2.0, Duration::from_secs(2))?.jitter(Jitter::Equal))
///     .budget(RetryBudget::new(Duration::from_secs(10), 5, 0.1)?)
///     .max_total_delay(Duration::from_secs(20))
///     .add_idempotency_keys()
///     .seed(42);
/// let layer = RetryLayer::with_policy(policy);
/// # let _ = layer;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct RetryPolicy<C = StandardClassifier> {
    pub(crate) classifier: C,
    backoff: Backoff,
    max_retries: u32,
    max_total_delay: Option<Duration>,
    max_hint_wait: Duration,
    pub(crate) budget: Option<RetryBudget>,
    seed: Option<u64>,
    add_idempotency_keys: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryPolicy {
    /// The standard policy: [`StandardClassifier`], [`DEFAULT_MAX_RETRIES`] retries,
    /// [`Backoff::default`] (100 ms doubling to 10 s, full jitter), [`RetryBudget::default`]
    /// (20 % + 10/s over 10 s), hints up to [`DEFAULT_MAX_HINT_WAIT`], no total-delay limit
    /// beyond the call's [`Deadline`], no idempotency keys added.
    pub fn new() -> Self {
        RetryPolicy {
            classifier: StandardClassifier::new(),
            backoff: Backoff::default(),
            max_retries: DEFAULT_MAX_RETRIES,
            max_total_delay: None,
            max_hint_wait: DEFAULT_MAX_HINT_WAIT,
            budget: Some(RetryBudget::default()),
            seed: None,
            add_idempotency_keys: false,
        }
    }
}

impl<C> RetryPolicy<C> {
    /// Decides what to retry with `classifier` instead.
    pub fn classifier<C2: Classify>(self, classifier: C2) -> RetryPolicy<C2> {
        RetryPolicy {
            classifier,
            backoff: self.backoff,
            max_retries: self.max_retries,
            max_total_delay: self.max_total_delay,
            max_hint_wait: self.max_hint_wait,
            budget: self.budget,
            seed: self.seed,
            add_idempotency_keys: self.add_idempotency_keys,
        }
    }

    /// At most `retries` retries after the first attempt.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The delays between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Stops retrying when the delays slept would add up to more than `limit`.
    pub fn max_total_delay(mut self, limit: Duration) -> Self {
        self.max_total_delay = Some(limit);
        self
    }

    /// The longest server-requested wait to sleep; a longer one fails fast with
    /// [`RateLimited`]. See [`DEFAULT_MAX_HINT_WAIT`].
    pub fn max_hint_wait(mut self, limit: Duration) -> Self {
        self.max_hint_wait = limit;
        self
    }

    /// Shares `budget` (usually a clone of one budget per upstream) between the calls.
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// No retry budget: every retry the other limits allow happens.
    pub fn no_budget(mut self) -> Self {
        self.budget = None;
        self
    }

    /// Seeds the jitter's random numbers, so delays repeat from run to run (tests, benches).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Adds an `Idempotency-Key` (random, the same on every attempt) to POST and PATCH requests
    /// that have none, so that they may be retried after reaching the server. The server must
    /// honour the key (Stripe and others do).
    pub fn add_idempotency_keys(mut self) -> Self {
        self.add_idempotency_keys = true;
        self
    }
}

/// The configuration a layer's services share.
pub(crate) struct Shared<C> {
    policy: RetryPolicy<C>,
    rng: Mutex<fastrand::Rng>,
}

impl<C> Shared<C> {
    pub(crate) fn policy(&self) -> &RetryPolicy<C> {
        &self.policy
    }
}

impl<C> fmt::Debug for Shared<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_retries", &self.policy.max_retries)
            .field("backoff", &self.policy.backoff)
            .field("budget", &self.policy.budget)
            .finish_non_exhaustive()
    }
}

/// Retries failed attempts: jittered backoff, a retry budget, idempotency rules, server wait
/// hints, the call's [`Deadline`], and request-body replay.
///
/// One layer value is one policy domain: its services and their clones share the budget and
/// the random numbers. See the crate docs for an example.
///
/// While it holds a copy of the request, it makes a [`ReplayOffer`] to the layers below: a
/// token-refresh layer then keeps no copy of its own and, after a refresh on a 401, asks for
/// the replay with [`ReplayRequested`]. That replay is sent at once, once per attempt, without
/// spending the budget or counting as a retry ([`Attempts::replays`] counts it).
#[derive(Clone)]
pub struct RetryLayer<C = StandardClassifier> {
    shared: Arc<Shared<C>>,
}

impl<C> fmt::Debug for RetryLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RetryLayer").field(&self.shared).finish()
    }
}

impl Default for RetryLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryLayer {
    /// The standard policy ([`RetryPolicy::new`]).
    pub fn new() -> Self {
        Self::with_policy(RetryPolicy::new())
    }
}

impl<C> RetryLayer<C> {
    /// Retries as `policy` says.
    pub fn with_policy(policy: RetryPolicy<C>) -> Self {
        let rng = match policy.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        RetryLayer {
            shared: Arc::new(Shared {
                policy,
                rng: Mutex::new(rng),
            }),
        }
    }
}

impl<C> RetryLayer<C> {
    pub(crate) fn shared(&self) -> &Arc<Shared<C>> {
        &self.shared
    }
}

impl<S, C> Layer<S> for RetryLayer<C> {
    type Service = Retry<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service of [`RetryLayer`]. See the crate docs for an example.
pub struct Retry<S, C = StandardClassifier> {
    inner: S,
    shared: Arc<Shared<C>>,
}

impl<S: Clone, C> Clone for Retry<S, C> {
    fn clone(&self) -> Self {
        Retry {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for Retry<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("policy", &self.shared)
            .finish()
    }
}

impl<S, C> Retry<S, C> {
    towline_core::inner_service_accessors!();
}

/// Methods RFC 9110 §9.2.2 defines as idempotent: sending them twice has the effect of once.
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Whether sending `request` twice is harmless: an idempotent method, or an idempotency key.
pub(crate) fn resend_after_sent<B>(request: &Request<B>) -> bool {
    is_idempotent(request.method()) || request.headers().contains_key(IDEMPOTENCY_KEY)
}

impl<S, C, B, ResBody> Service<Request<B>> for Retry<S, C>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    B: Replayable,
    C: Classify,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let policy = &self.shared.policy;
        // Keep the service that `poll_ready` made ready; retries use this clone of it.
        let clone = self.inner.clone();
        let mut service = mem::replace(&mut self.inner, clone);

        if let Some(budget) = &policy.budget {
            budget.deposit();
        }
        let method = request.method();
        if policy.add_idempotency_keys
            && (method == Method::POST || method == Method::PATCH)
            && !request.headers().contains_key(IDEMPOTENCY_KEY)
        {
            let key = {
                let mut rng = self
                    .shared
                    .rng
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                format!("{:016x}{:016x}", rng.u64(..), rng.u64(..))
            };
            if let Ok(value) = HeaderValue::from_str(&key) {
                request.headers_mut().insert(IDEMPOTENCY_KEY, value);
            }
        }
        let resend_after_sent = resend_after_sent(&request);
        let template = if policy.max_retries > 0 {
            replay_request(&request)
        } else {
            None
        };
        let deadline = Deadline::in_force(request.extensions());
        // Holding a copy, offer the layers below to replay it for them (a token refresh).
        let offer = template.as_ref().map(|_| ReplayOffer::Available);
        ResponseFuture {
            state: State::Calling {
                future: offered(offer, || service.call(request)),
            },
            service,
            shared: self.shared.clone(),
            template,
            attempts: Attempts::new(),
            resend_after_sent,
            deadline,
            previous_delay: None,
            offer,
            span: None,
        }
    }
}

pin_project! {
    /// The response future of [`Retry`].
    pub struct ResponseFuture<S, B, C>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S::Future, Request<B>>,
        service: S,
        shared: Arc<Shared<C>>,
        // The request as first sent, to replay for each retry.
        template: Option<Request<B>>,
        attempts: Attempts,
        resend_after_sent: bool,
        deadline: Option<Deadline>,
        previous_delay: Option<Duration>,
        // What the attempt in flight was offered (see `ReplayOffer`).
        offer: Option<ReplayOffer>,
        // Made at the first retry: a call that succeeds at once pays for no span.
        span: Option<tracing::Span>,
    }
}

impl<S, B, C> fmt::Debug for ResponseFuture<S, B, C>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, R> {
        // An attempt is in flight.
        Calling {
            #[pin]
            future: F,
        },
        // Sleeping the delay before the next attempt. Boxed: only retries pay for a timer,
        // and the future stays small on the success path.
        Waiting {
            sleep: Pin<Box<Sleep>>,
            next: Option<R>,
        },
        // Waiting for the service to be ready for the next attempt.
        Readying {
            next: Option<R>,
        },
        // The outcome was returned.
        Done,
    }
}

impl<S, B, C, ResBody> Future for ResponseFuture<S, B, C>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    B: Replayable,
    C: Classify,
{
    type Output = Result<Response<ResBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let offer = *this.offer;
                    let mut result = ready!(offered(offer, || future.poll(cx))).map_err(Into::into);
                    if let Err(error) = result {
                        result = match error.downcast::<ReplayRequested>() {
                            Ok(asked) => {
                                let otherwise = asked.into_inner();
                                let next = match offer {
                                    Some(ReplayOffer::Available) => {
                                        this.template.as_ref().and_then(replay_request)
                                    }
                                    _ => None,
                                };
                                if let Some(next) = next {
                                    // Fresh credentials: send again at once. Not a retry (no
                                    // delay, no budget), but an attempt all the same.
                                    tracing::debug!(
                                        attempt = this.attempts.count() + 1,
                                        "replaying after a credentials refresh"
                                    );
                                    let recorded = record(Outcome::Error(&*otherwise));
                                    this.attempts.record_replay(recorded);
                                    *this.offer = Some(ReplayOffer::Replaying);
                                    this.state.set(State::Readying { next: Some(next) });
                                    continue;
                                }
                                // No replay to give: the error the layer would have ended
                                // the call with, judged like any other.
                                Err(otherwise)
                            }
                            Err(error) => Err(error),
                        };
                    }
                    let outcome = match &result {
                        Ok(response) => Outcome::Response {
                            status: response.status(),
                            headers: response.headers(),
                        },
                        Err(error) => Outcome::Error(&**error),
                    };
                    let verdict = this.shared.policy.classifier.classify(outcome);
                    let call = Call {
                        resend_after_sent: *this.resend_after_sent,
                        deadline: *this.deadline,
                        template: this.template.as_ref(),
                    };
                    let step = decide(
                        this.shared,
                        verdict,
                        call,
                        this.attempts,
                        *this.previous_delay,
                    );
                    match step {
                        // A response stopped by the budget comes back as it is, its
                        // `Attempts` marked; an error is wrapped in `RetryBudgetExhausted`.
                        Step::Finish | Step::Stop(StopReason::Budget) if result.is_ok() => {
                            this.state.set(State::Done);
                            return Poll::Ready(finish(result, this.attempts));
                        }
                        Step::Finish => {
                            this.state.set(State::Done);
                            return Poll::Ready(finish(result, this.attempts));
                        }
                        Step::Stop(reason) => {
                            this.state.set(State::Done);
                            let error = stop(reason, result);
                            return Poll::Ready(Err(wrap(error, this.attempts)));
                        }
                        Step::Retry {
                            delay,
                            backoff,
                            next,
                        } => {
                            let recorded = record(match &result {
                                Ok(response) => Outcome::Response {
                                    status: response.status(),
                                    headers: response.headers(),
                                },
                                Err(error) => Outcome::Error(&**error),
                            });
                            let span = this.span.get_or_insert_with(|| {
                                // Method and host only: paths and queries may carry secrets.
                                tracing::debug_span!(
                                    "retry",
                                    method = %next.method(),
                                    host = next.uri().host().unwrap_or(""),
                                )
                            });
                            span.in_scope(|| {
                                tracing::debug!(
                                    attempt = this.attempts.count() + 1,
                                    delay_ms = delay.as_millis() as u64,
                                    after = %recorded,
                                    "retrying"
                                );
                            });
                            this.attempts.record_retry(recorded, delay);
                            *this.previous_delay = Some(backoff);
                            // The failed attempt's response (and body) is dropped here.
                            drop(result);
                            // Each retry may be replayed once more, as each attempt through a
                            // token layer alone could be.
                            *this.offer = Some(ReplayOffer::Available);
                            let next = Some(next);
                            if delay.is_zero() {
                                this.state.set(State::Readying { next });
                            } else {
                                this.state.set(State::Waiting {
                                    sleep: Box::pin(sleep(delay)),
                                    next,
                                });
                            }
                        }
                    }
                }
                StateProj::Waiting { sleep, next } => {
                    ready!(sleep.as_mut().poll(cx));
                    let next = next.take();
                    this.state.set(State::Readying { next });
                }
                StateProj::Readying { next } => {
                    if let Err(error) = ready!(this.service.poll_ready(cx)) {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(wrap(error.into(), this.attempts)));
                    }
                    let Some(request) = next.take() else {
                        this.state.set(State::Done);
                        return Poll::Ready(Err("retry: no request to send".into()));
                    };
                    let service = &mut *this.service;
                    let future = offered(*this.offer, || service.call(request));
                    this.state.set(State::Calling { future });
                }
                StateProj::Done => {
                    return Poll::Ready(Err("retry future polled after completion".into()));
                }
            }
        }
    }
}

/// Calls or polls the layers below with `offer` made to them (and no other).
fn offered<R>(offer: Option<ReplayOffer>, f: impl FnOnce() -> R) -> R {
    match offer {
        Some(offer) => offer.scope(f),
        None => ReplayOffer::withheld(f),
    }
}

/// How an attempt is written into [`Attempts`].
pub(crate) fn record(outcome: Outcome<'_>) -> AttemptOutcome {
    match outcome {
        Outcome::Response { status, .. } => AttemptOutcome::Status(status),
        Outcome::Error(error) => match towline_core::find::<ApiError>(error) {
            Some(api) => AttemptOutcome::Status(api.status),
            None => AttemptOutcome::Error(ErrorKind::of(error)),
        },
    }
}

/// Why retrying stopped with a typed error of its own.
pub(crate) enum StopReason {
    Budget,
    RateLimited {
        hint: RetryHint,
        reason: RateLimitReason,
    },
}

pub(crate) enum Step<B> {
    /// Return the attempt's outcome.
    Finish,
    /// Return a typed error saying why retrying stopped.
    Stop(StopReason),
    /// Sleep `delay`, then send `next`. `backoff` is the backoff's own value (before a hint
    /// raised it), which decorrelated jitter grows from.
    Retry {
        delay: Duration,
        backoff: Duration,
        next: Request<B>,
    },
}

/// What the retry decision needs to know of the call itself.
pub(crate) struct Call<'a, B> {
    /// Whether sending the request twice is harmless ([`resend_after_sent`]).
    pub(crate) resend_after_sent: bool,
    /// The deadline in force for the call.
    pub(crate) deadline: Option<Deadline>,
    /// The copy of the request to replay, if the body allows.
    pub(crate) template: Option<&'a Request<B>>,
}

/// Applies the policy's limits to a classifier's verdict. Cheap on the success path: a
/// `Done` verdict returns at once.
pub(crate) fn decide<C, B: Replayable>(
    shared: &Shared<C>,
    verdict: Verdict,
    call: Call<'_, B>,
    attempts: &mut Attempts,
    previous_delay: Option<Duration>,
) -> Step<B> {
    let Call {
        resend_after_sent,
        deadline,
        template,
    } = call;
    let policy = &shared.policy;
    let Verdict::Retry {
        not_processed,
        hint,
    } = verdict
    else {
        return Step::Finish;
    };
    // A request that may have been processed is sent again only if that is harmless.
    if !(resend_after_sent || not_processed) {
        return Step::Finish;
    }
    // A replay asked for from below (after a token refresh) is not a retry.
    let retries = attempts.retries();
    if retries >= policy.max_retries as usize {
        return Step::Finish;
    }
    // A body that cannot be sent again (a stream past its replay cap) is not retried.
    let Some(next) = template.and_then(replay_request) else {
        return Step::Finish;
    };
    let backoff = {
        let mut rng = shared.rng.lock().unwrap_or_else(PoisonError::into_inner);
        policy
            .backoff
            .delay(retries as u32, previous_delay, &mut rng)
    };
    let delay = match &hint {
        Some(hint) => {
            if hint.requested() > policy.max_hint_wait {
                return Step::Stop(StopReason::RateLimited {
                    hint: hint.clone(),
                    reason: RateLimitReason::WaitTooLong,
                });
            }
            // The server's wait is the floor of the delay.
            backoff.max(hint.wait())
        }
        None => backoff,
    };
    let mut delay = delay;
    if let Some(deadline) = deadline {
        // An attempt needs time after the sleep: a sleep must end strictly before the deadline.
        let remaining = deadline.remaining();
        if delay >= remaining {
            match hint {
                // The server's own wait ends past the deadline: say so, with its instant.
                Some(hint) if hint.wait() >= remaining => {
                    return Step::Stop(StopReason::RateLimited {
                        hint,
                        reason: RateLimitReason::PastDeadline,
                    });
                }
                // Only the jittered backoff overran: the server's wait is enough.
                Some(hint) => delay = hint.wait(),
                None => return Step::Finish,
            }
        }
    }
    let total = attempts.total_delay().saturating_add(delay);
    if policy.max_total_delay.is_some_and(|limit| total > limit) {
        return Step::Finish;
    }
    // Last, so that a retry the other limits forbid takes no token.
    if policy
        .budget
        .as_ref()
        .is_some_and(|budget| !budget.withdraw())
    {
        attempts.mark_budget_exhausted();
        return Step::Stop(StopReason::Budget);
    }
    Step::Retry {
        delay,
        backoff,
        next,
    }
}

/// The typed error for a stop, from the last attempt's result.
pub(crate) fn stop<T>(reason: StopReason, result: Result<Response<T>, BoxError>) -> BoxError {
    let last: BoxError = match result {
        Ok(response) => response.status().to_string().into(),
        Err(error) => error,
    };
    match reason {
        StopReason::Budget => Box::new(RetryBudgetExhausted::new(last)),
        StopReason::RateLimited { hint, reason } => {
            let until = hint.ends_at(Instant::now());
            Box::new(
                RateLimited::new(until, reason)
                    .with_hint(hint)
                    .with_source(last),
            )
        }
    }
}

/// Returns the last outcome, with the attempts on it when there were retries.
fn finish<T>(
    result: Result<Response<T>, BoxError>,
    attempts: &mut Attempts,
) -> Result<Response<T>, BoxError> {
    match result {
        Ok(mut response) => {
            record_on(&mut response, attempts);
            Ok(response)
        }
        Err(error) => Err(wrap(error, attempts)),
    }
}

/// Puts the attempts on the final response — only when there is something to say: inserting
/// an extension allocates, and the success path must stay lean. No `Attempts` means one attempt.
pub(crate) fn record_on<T>(response: &mut Response<T>, attempts: &mut Attempts) {
    if attempts.retries() > 0 || attempts.budget_exhausted() {
        response.extensions_mut().insert(mem::take(attempts));
    }
}

/// Wraps a final error in [`Retried`] when there were retries.
pub(crate) fn wrap(error: BoxError, attempts: &mut Attempts) -> BoxError {
    if attempts.retries() > 0 {
        Box::new(Retried::new(mem::take(attempts), error))
    } else {
        error
    }
}
