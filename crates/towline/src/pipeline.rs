//! The standard pipeline: every towline layer, in the order that makes them work together.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue, Request};
use tower::util::Either;
use tower::{Layer, Service};
use tower_http::decompression::{Decompression, DecompressionLayer};
use tower_http::sensitive_headers::{SetSensitiveRequestHeaders, SetSensitiveRequestHeadersLayer};
use towline_auth::{TokenRefresh, TokenRefreshLayer};
use towline_breaker::{Bulkhead, BulkheadLayer, CircuitBreaker, CircuitBreakerLayer};
use towline_envelope::{ErrorBody, ErrorBodyLayer};
use towline_ratelimit::{GateStore, RateLimit, RateLimitLayer};
use towline_redirect::{NoRedirect, NoRedirectLayer};
use towline_retry::{Hedge, HedgeLayer, Retry, RetryLayer};
use towline_telemetry::{AttemptSpan, AttemptSpanLayer, CallSpan, CallSpanLayer};
use towline_timeout::{DeadlineLayer, Timeout, TimeoutLayer, WithDeadline};

use crate::boxed_body::BoxedBody;

/// The default budget of a whole call: 30 s. Long enough for the retries of the standard
/// policy (3 retries, up to 10 s apart) of calls answering in seconds; the figure the AWS
/// SDKs and most HTTP clients use as a total request timeout ballpark.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// The default per-attempt limit on the response head: 10 s. IXON answers 504 after 60 s,
/// but an attempt that slow is better retried (or failed) well inside the deadline.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default limit on a stalled response body: 30 s without a byte.
pub const DEFAULT_BODY_IDLE: Duration = Duration::from_secs(30);

/// The layers below auth, the same with or without it.
type Lower<S> = AttemptSpan<
    NoRedirect<
        Timeout<ErrorBody<BoxedBody<Decompression<SetSensitiveRequestHeaders<DefaultHeaders<S>>>>>>,
    >,
>;

/// The layers from the rate limit down.
type Gated<S> = RateLimit<Either<TokenRefresh<Lower<S>>, Lower<S>>>;

/// The layers from the circuit breaker down, with the optional concurrency limit.
type Guarded<S> = CircuitBreaker<Either<Bulkhead<Gated<S>>, Gated<S>>>;

/// The service [`Pipeline::service`] builds over a client `S`, outermost first: the call's
/// span, deadline, retry, hedging (optional), circuit breaker, concurrency limit (optional),
/// rate-limit, auth (optional), the attempt's span, no-redirect, per-attempt timeout,
/// error-body decoding, the decompressed body's box ([`BoxedBody`]), decompression, sensitive
/// headers, default headers, the client.
pub type Standard<S> = CallSpan<WithDeadline<Retry<Either<Hedge<Guarded<S>>, Guarded<S>>>>>;

/// The standard pipeline over any `Service<http::Request<B>>`, with every part replaceable.
///
/// The defaults: [`DEFAULT_DEADLINE`]; the standard [`RetryLayer`] (3 retries, 100 ms doubling
/// to 10 s with full jitter, a 20 % budget); a [`CircuitBreakerLayer`] per authority with
/// Microsoft's standard-handler settings (opens at 10 % failures over 30 s once 100 calls were
/// seen, for 5 s); a [`RateLimitLayer`] per authority; no auth until you give a
/// [`TokenRefreshLayer`]; no redirects followed; [`DEFAULT_ATTEMPT_TIMEOUT`] for the head and
/// [`DEFAULT_BODY_IDLE`] for a stalled body; every error body decoded (64 KiB cap); gzip and
/// deflate, and brotli and zstd with the `brotli` and `zstd` features (on by default),
/// decompressed before decoding; `Authorization`, `X-Key` and `Api-Key` marked sensitive; a
/// span for the call and a client span for each attempt, by the OpenTelemetry HTTP client
/// conventions ([`CallSpanLayer`], [`AttemptSpanLayer`]: with no subscriber they make none).
///
/// **One 429 or 503 closes the gate for the whole authority.** The rate-limit gate is keyed by
/// the request's authority (`host:port`): a 429 or 503 with a wait hint on any path holds every
/// request to that API, from every clone of the pipeline, until the server's time (or fails
/// it fast past `max_wait` or the deadline). Most APIs mean it so (a quota per account or
/// per key); for one that limits per endpoint, give [`rate_limit`](Pipeline::rate_limit) a
/// `RateLimitLayer::new().key_by(..)`.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Empty;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use towline::Pipeline;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
/// let service = Pipeline::new().service(client);
/// # let _ = service;
/// # }
/// ```
#[derive(Clone)]
pub struct Pipeline {
    deadline: DeadlineLayer,
    retry: RetryLayer,
    hedge: Option<HedgeLayer>,
    circuit_breaker: CircuitBreakerLayer,
    concurrency_limit: Option<BulkheadLayer>,
    rate_limit: RateLimitLayer,
    gate_store: Option<Arc<dyn GateStore>>,
    auth: Option<TokenRefreshLayer>,
    timeout: TimeoutLayer,
    error_body: ErrorBodyLayer,
    sensitive: Vec<HeaderName>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("deadline", &self.deadline)
            .field("retry", &self.retry)
            .field("hedge", &self.hedge)
            .field("circuit_breaker", &self.circuit_breaker)
            .field("concurrency_limit", &self.concurrency_limit)
            .field("rate_limit", &self.rate_limit)
            .field("gate_store", &self.gate_store.as_ref().map(|_| "set"))
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .field("error_body", &self.error_body)
            .field("sensitive", &self.sensitive)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Pipeline {
    /// Every default. See the type's docs.
    pub fn new() -> Self {
        Pipeline {
            deadline: DeadlineLayer::new(DEFAULT_DEADLINE),
            retry: RetryLayer::new(),
            hedge: None,
            circuit_breaker: CircuitBreakerLayer::new(),
            concurrency_limit: None,
            rate_limit: RateLimitLayer::new(),
            gate_store: None,
            auth: None,
            timeout: TimeoutLayer::new(DEFAULT_ATTEMPT_TIMEOUT).body_timeout(DEFAULT_BODY_IDLE),
            error_body: ErrorBodyLayer::new(),
            sensitive: vec![
                AUTHORIZATION,
                HeaderName::from_static("x-key"),
                HeaderName::from_static("api-key"),
            ],
            headers: Vec::new(),
        }
    }

    /// The whole call's budget.
    pub fn deadline(mut self, deadline: DeadlineLayer) -> Self {
        self.deadline = deadline;
        self
    }

    /// The retry layer (its policy, budget, classifier, ...).
    pub fn retry(mut self, retry: RetryLayer) -> Self {
        self.retry = retry;
        self
    }

    /// Hedges idempotent requests with `hedge` (off by default): a second copy of a slow
    /// attempt after its delay, the first answer kept. Below the retry layer, each attempt is
    /// hedged in its turn; the hedges spend the retry layer's budget (whatever budget `hedge`
    /// was given), so that together they add no more load than the budget allows.
    ///
    /// ```
    /// use std::time::Duration;
    /// use towline::Pipeline;
    /// use towline::retry::HedgeLayer;
    ///
    /// let pipeline = Pipeline::new().hedge(HedgeLayer::after(Duration::from_millis(250)));
    /// # let _ = pipeline;
    /// ```
    pub fn hedge(mut self, hedge: HedgeLayer) -> Self {
        self.hedge = Some(hedge);
        self
    }

    /// Limits the calls in flight per key with `limit` (off by default), below the circuit
    /// breaker: an open circuit refuses before a place is taken, and a full limit
    /// (`BulkheadFull`) ends the call unsent, not retried.
    ///
    /// ```
    /// use towline::Pipeline;
    /// use towline::breaker::BulkheadLayer;
    ///
    /// let pipeline = Pipeline::new().concurrency_limit(BulkheadLayer::new(32).queue(64));
    /// # let _ = pipeline;
    /// ```
    pub fn concurrency_limit(mut self, limit: BulkheadLayer) -> Self {
        self.concurrency_limit = Some(limit);
        self
    }

    /// The circuit breaker (its settings, key, ...). Its [`circuits`] handle, taken before or
    /// after, shows and forces the circuits of every service this pipeline builds.
    ///
    /// [`circuits`]: CircuitBreakerLayer::circuits
    ///
    /// ```
    /// use towline::Pipeline;
    /// use towline::breaker::{CircuitBreakerLayer, Settings};
    ///
    /// let breaker = CircuitBreakerLayer::with_settings(Settings::new().consecutive_failures(5))
    ///     .expect("valid settings");
    /// let circuits = breaker.circuits();
    /// let pipeline = Pipeline::new().circuit_breaker(breaker);
    /// # let _ = (pipeline, circuits);
    /// ```
    pub fn circuit_breaker(mut self, circuit_breaker: CircuitBreakerLayer) -> Self {
        self.circuit_breaker = circuit_breaker;
        self
    }

    /// The rate-limit layer (its key, quota, hints, ...).
    pub fn rate_limit(mut self, rate_limit: RateLimitLayer) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// Keeps the rate-limit layer's gates and quotas in `store`: with a shared store (a
    /// [`RedisStore`](https://docs.rs/towline-redis) with the `redis` feature), a wait one
    /// replica is told about holds every replica, and a quota is paced across all of them.
    /// Works on a vendor preset too (`vendors::open2b(..).gate_store(store)`), and before or
    /// after [`rate_limit`](Pipeline::rate_limit): the store wins over the layer's own.
    ///
    /// ```
    /// use towline::Pipeline;
    /// use towline::ratelimit::InMemoryStore;
    ///
    /// let pipeline = Pipeline::new().gate_store(InMemoryStore::with_max_keys(100_000));
    /// # let _ = pipeline;
    /// ```
    pub fn gate_store(mut self, store: impl GateStore) -> Self {
        self.gate_store = Some(Arc::new(store));
        self
    }

    /// Attaches and refreshes tokens with `auth`.
    pub fn auth(mut self, auth: TokenRefreshLayer) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The per-attempt timeout.
    pub fn timeout(mut self, timeout: TimeoutLayer) -> Self {
        self.timeout = timeout;
        self
    }

    /// The error-body layer (its decoder, cap, in-band inspection).
    pub fn error_body(mut self, error_body: ErrorBodyLayer) -> Self {
        self.error_body = error_body;
        self
    }

    /// Also marks `name` sensitive on every request (a vendor's key header).
    pub fn sensitive_header(mut self, name: HeaderName) -> Self {
        self.sensitive.push(name);
        self
    }

    /// Sets `name: value` on every request that does not have it (a vendor's version or
    /// application header).
    pub fn default_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The pipeline over `client`.
    ///
    /// Give it a client whose type fixes the request body, as hyper-util's `Client<C, B>`
    /// and towline-reqwest's `ReqwestService<B>` do: over a service that is a
    /// `Service<Request<B>>` for every `B`, a method call on the pipeline (`oneshot`, `ready`)
    /// costs rustc time and memory exponential in the number of layers.
    pub fn service<S>(self, client: S) -> Standard<S> {
        let headers: Arc<[(HeaderName, HeaderValue)]> = self.headers.into();
        let lower = |client| {
            let client = DefaultHeaders {
                inner: client,
                headers,
            };
            let client = SetSensitiveRequestHeadersLayer::new(self.sensitive.clone()).layer(client);
            let client = BoxedBody::new(DecompressionLayer::new().layer(client));
            let client = self.error_body.layer(client);
            let client = self.timeout.layer(client);
            let client = NoRedirectLayer::new().layer(client);
            AttemptSpanLayer::new().layer(client)
        };
        let middle = match &self.auth {
            Some(auth) => Either::Left(auth.layer(lower(client))),
            None => Either::Right(lower(client)),
        };
        let service = match &self.gate_store {
            Some(store) => self.rate_limit.clone().store(store.clone()).layer(middle),
            None => self.rate_limit.layer(middle),
        };
        let service = match &self.concurrency_limit {
            Some(limit) => Either::Left(limit.layer(service)),
            None => Either::Right(service),
        };
        let service = self.circuit_breaker.layer(service);
        let service = match &self.hedge {
            // The hedges spend what the retries spend.
            Some(hedge) => Either::Left(match self.retry.budget() {
                Some(budget) => hedge.clone().budget(budget.clone()).layer(service),
                None => hedge.layer(service),
            }),
            None => Either::Right(service),
        };
        let service = self.retry.layer(service);
        let service = self.deadline.layer(service);
        CallSpanLayer::new().layer(service)
    }
}

/// Sets headers a vendor expects on every request that lacks them.
#[derive(Clone, Debug)]
pub struct DefaultHeaders<S> {
    inner: S,
    // Shared: the retry layer clones the services below it on every call.
    headers: Arc<[(HeaderName, HeaderValue)]>,
}

impl<S, B> Service<Request<B>> for DefaultHeaders<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        for (name, value) in self.headers.iter() {
            if !request.headers().contains_key(name) {
                request.headers_mut().insert(name.clone(), value.clone());
            }
        }
        self.inner.call(request)
    }
}
