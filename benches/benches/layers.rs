//! The success-path cost of each towline layer, beside a bare service and tower's own
//! `Timeout` in the same group, so the figures read as ratios (and ns deltas) to the bare case
//! of the same run.
//!
//! The inner service is an in-memory `tower::service_fn` that answers an empty
//! `Response<Full<Bytes>>` to a GET with two headers and an empty `Full<Bytes>` body. Every
//! case runs on one current-thread tokio runtime (time driver only) and does the same work per
//! iteration: clone the built service, `ready().await`, `call(request).await`, then collect the
//! response body with `BodyExt::collect` (bare included, so body wrappers such as
//! `TimeoutBody` are measured fairly). Requests are built outside the timed section, in
//! batches of 128 (`iter_batched`); dropping each one, inside the inner service, is timed.
//!
//! - `success_path`: the inner future is ready on its first poll, so the timeout and deadline
//!   layers make no timer at all (they make one only once the inner future is pending).
//! - `success_path_yielding`: the inner future yields once before answering, so each timer is
//!   polled, registered with the driver and deregistered on drop, as with a real upstream.
//!
//! The bare service does next to nothing, so ratios are upper bounds: read the deltas in ns
//! against the cost of a real network round trip.
//!
//! criterion runs a group's cases one after another, and this VM drifts by tens of ns between
//! them; so the cases of `success_path` and `retry_success_path`, of `one_retry_zero_backoff`
//! and of `loopback` also take turns round by round ([`Turns`]); how well their deltas
//! reproduce is in BENCHMARKS.md.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::alloc::System;
use std::convert::Infallible;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::runtime::Runtime;
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt, service_fn};
use towline_auth::{StaticToken, Token, TokenRefreshLayer};
use towline_ratelimit::RateLimitLayer;
use towline_redirect::NoRedirectLayer;
use towline_retry::{Backoff, RetryBudget, RetryLayer, RetryPolicy};
use towline_timeout::{DeadlineLayer, TimeoutLayer};

mod common;
use common::{
    BUDGET, HEAD, answer, loopback_request, request, server_thread, tower_pair, tower_retry,
    tower_retry_budget, towline_stack,
};

const BODY: Duration = Duration::from_secs(10);
/// Requests built ahead of each timed batch: few enough to stay in cache, enough to make the
/// batch's two clock reads negligible.
const REQUESTS_PER_BATCH: u64 = 128;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

/// An upstream that yields to the runtime once before answering.
async fn answer_after_yield(
    _request: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    tokio::task::yield_now().await;
    Ok(Response::new(Full::new(Bytes::new())))
}

/// One call through `service` and its whole response body.
async fn round_trip<S, B>(mut service: S, request: Request<Full<Bytes>>) -> Bytes
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: Debug,
    B: Body<Data = Bytes>,
    B::Error: Debug,
{
    let response = service
        .ready()
        .await
        .expect("service ready")
        .call(request)
        .await
        .expect("a response");
    response
        .into_body()
        .collect()
        .await
        .expect("the whole body")
        .to_bytes()
}

// Every allocation is counted, so that each case reports its allocations per call beside its
// time (the counter's cost, one atomic add per allocation, is the same for every case).
#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Calls measured for the allocation count of a case.
const COUNTED_CALLS: u64 = 1000;

/// Benches one case: a clone of `service` per iteration, a fresh request per iteration. First
/// counts the allocations of `COUNTED_CALLS` calls and appends `group/case<TAB>allocs per call`
/// to `target/criterion/allocations.tsv`.
fn case<S, B>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, name: &str, service: S)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: Debug,
    B: Body<Data = Bytes>,
    B::Error: Debug,
{
    let requests: Vec<_> = (0..COUNTED_CALLS).map(|_| request()).collect();
    let region = Region::new(ALLOCATOR);
    rt.block_on(async {
        for request in requests {
            round_trip(service.clone(), request).await;
        }
    });
    let allocations = region.change().allocations as f64 / COUNTED_CALLS as f64;
    record_allocations(group_name(group), name.to_owned(), allocations);

    group.bench_function(name, |b| {
        b.to_async(rt).iter_batched(
            request,
            |request| round_trip(service.clone(), request),
            BatchSize::NumIterations(REQUESTS_PER_BATCH),
        )
    });
}

thread_local! {
    /// The name of the group being benched (criterion does not expose it).
    static GROUP: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn group_name(_group: &BenchmarkGroup<'_, WallTime>) -> String {
    GROUP.with(|g| g.borrow().clone())
}

/// Starts a named group, remembering its name for the allocation records.
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    GROUP.with(|g| *g.borrow_mut() = name.to_owned());
    c.benchmark_group(name)
}

fn record_allocations(group: String, case: String, per_call: f64) {
    use std::io::Write;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("allocations.tsv"))
    {
        let _ = writeln!(file, "{group}/{case}\t{per_call:.2}");
    }
}

/// The success-path groups, then the same cases taking turns (see [`Turns`]): criterion runs
/// one case after another, and this VM drifts by tens of ns between them.
fn success(c: &mut Criterion) {
    let rt = runtime();
    let mut turns = Turns::new(&rt, &request, IN_MEMORY_CALLS_PER_TURN);
    success_path(c, &mut turns);
    retry_success_path(c, &mut turns);
    turns.run(IN_MEMORY_ROUNDS, "success_interleaved.tsv");
}

/// Calls per case per round of the interleaved in-memory comparison (criterion's batch), and
/// rounds: about two seconds in all.
const IN_MEMORY_CALLS_PER_TURN: usize = REQUESTS_PER_BATCH as usize;
const IN_MEMORY_ROUNDS: usize = 1000;

/// A case of a success-path group: benched by criterion, and added to the turns.
fn turn_case<'a, S, B>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    turns: &mut Turns<'a>,
    name: &str,
    service: S,
) where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + 'a,
    S::Error: Debug,
    B: Body<Data = Bytes>,
    B::Error: Debug,
{
    case(group, turns.rt, name, service.clone());
    turns.add(name, service);
}

fn success_path(c: &mut Criterion, turns: &mut Turns<'_>) {
    let inner = service_fn(answer);
    let mut group = group(c, "success_path");
    turn_case(&mut group, turns, "bare", inner);
    turn_case(
        &mut group,
        turns,
        "tower Timeout 10s",
        tower::timeout::TimeoutLayer::new(HEAD).layer(inner),
    );
    turn_case(
        &mut group,
        turns,
        "towline NoRedirectLayer",
        NoRedirectLayer::new().layer(inner),
    );
    turn_case(
        &mut group,
        turns,
        "towline TimeoutLayer head 10s",
        TimeoutLayer::new(HEAD).layer(inner),
    );
    turn_case(
        &mut group,
        turns,
        "towline TimeoutLayer head+body 10s",
        TimeoutLayer::new(HEAD).body_timeout(BODY).layer(inner),
    );
    turn_case(
        &mut group,
        turns,
        "towline DeadlineLayer 30s",
        DeadlineLayer::new(BUDGET).layer(inner),
    );
    turn_case(
        &mut group,
        turns,
        "towline RateLimitLayer (gate open)",
        RateLimitLayer::new().layer(inner),
    );
    turn_case(
        &mut group,
        turns,
        "towline TokenRefreshLayer (cached token)",
        cached_token_layer().layer(inner),
    );
    turn_case(
        &mut group,
        turns,
        "towline CallSpan+AttemptSpan (no subscriber)",
        ServiceBuilder::new()
            .layer(towline_telemetry::CallSpanLayer::new())
            .layer(towline_telemetry::AttemptSpanLayer::new())
            .service(inner),
    );
    turn_case(
        &mut group,
        turns,
        "towline stack Deadline>NoRedirect>Timeout",
        ServiceBuilder::new()
            .layer(DeadlineLayer::new(BUDGET))
            .layer(NoRedirectLayer::new())
            .layer(TimeoutLayer::new(HEAD))
            .service(inner),
    );
    group.finish();
}

fn success_path_yielding(c: &mut Criterion) {
    let rt = runtime();
    let inner = service_fn(answer_after_yield);
    let mut group = group(c, "success_path_yielding");
    case(&mut group, &rt, "bare", inner);
    case(
        &mut group,
        &rt,
        "tower Timeout 10s",
        tower::timeout::TimeoutLayer::new(HEAD).layer(inner),
    );
    case(
        &mut group,
        &rt,
        "towline TimeoutLayer head 10s",
        TimeoutLayer::new(HEAD).layer(inner),
    );
    case(
        &mut group,
        &rt,
        "towline DeadlineLayer 30s",
        DeadlineLayer::new(BUDGET).layer(inner),
    );
    group.finish();
}

/// A token layer whose token is already cached (fetched once, never expiring).
fn cached_token_layer() -> TokenRefreshLayer {
    let layer = TokenRefreshLayer::new(StaticToken::new(
        Token::new("bench-token").expect("a valid token"),
    ));
    // Fetch the token once, outside the measurement.
    let rt = runtime();
    rt.block_on(async {
        layer
            .layer(service_fn(answer))
            .oneshot(request())
            .await
            .expect("the warm-up call");
    });
    layer
}

/// towline's `RetryLayer` with `policy`, seeded so that runs repeat.
fn towline_retry(policy: RetryPolicy) -> RetryLayer {
    RetryLayer::with_policy(policy.seed(7))
}

fn retry_success_path(c: &mut Criterion, turns: &mut Turns<'_>) {
    let inner = service_fn(answer);
    let mut group = group(c, "retry_success_path");
    turn_case(&mut group, turns, "bare", inner);
    turn_case(
        &mut group,
        turns,
        "tower Retry (5xx, 3 retries)",
        tower_retry().layer(inner),
    );
    turn_case(
        &mut group,
        turns,
        "tower Retry + TpsBudget (5xx, 3 retries)",
        tower_retry_budget().layer(inner),
    );
    turn_case(
        &mut group,
        turns,
        "towline Retry (standard, with budget)",
        towline_retry(RetryPolicy::new()).layer(inner),
    );
    turn_case(
        &mut group,
        turns,
        "towline Retry (no budget)",
        towline_retry(RetryPolicy::new().no_budget()).layer(inner),
    );
    turn_case(
        &mut group,
        turns,
        "tower Retry + tower Timeout",
        tower_pair(inner),
    );
    turn_case(
        &mut group,
        turns,
        "towline Deadline>Retry>NoRedirect>Timeout",
        ServiceBuilder::new()
            .layer(DeadlineLayer::new(BUDGET))
            .layer(towline_retry(RetryPolicy::new()))
            .layer(NoRedirectLayer::new())
            .layer(TimeoutLayer::new(HEAD))
            .service(inner),
    );
    turn_case(
        &mut group,
        turns,
        "towline Deadline>Retry>RateLimit>NoRedirect>Timeout",
        ServiceBuilder::new()
            .layer(DeadlineLayer::new(BUDGET))
            .layer(towline_retry(RetryPolicy::new()))
            .layer(RateLimitLayer::new())
            .layer(NoRedirectLayer::new())
            .layer(TimeoutLayer::new(HEAD))
            .service(inner),
    );
    turn_case(
        &mut group,
        turns,
        "towline Deadline>Retry>RateLimit>Auth>NoRedirect>Timeout>ErrorBody",
        towline_stack(inner, cached_token_layer()),
    );
    group.finish();
}

/// An upstream that fails every other call with a 503: each call through a retry layer costs
/// one failed attempt and one successful retry.
fn flapping() -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>>,
> + Clone {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    service_fn(move |_request: Request<Full<Bytes>>| {
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            let mut response = Response::new(Full::new(Bytes::new()));
            if n.is_multiple_of(2) {
                *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            }
            Ok(response)
        }
    })
}

/// Each call fails once and succeeds on its retry; the cases also take turns, against tower's
/// `Retry` (the first case).
fn one_retry_zero_backoff(c: &mut Criterion) {
    let rt = runtime();
    let mut turns = Turns::new(&rt, &request, IN_MEMORY_CALLS_PER_TURN);
    let mut group = group(c, "one_retry_zero_backoff");
    turn_case(
        &mut group,
        &mut turns,
        "tower Retry",
        tower_retry().layer(flapping()),
    );
    turn_case(
        &mut group,
        &mut turns,
        "towline Retry (no backoff, no budget)",
        towline_retry(RetryPolicy::new().backoff(Backoff::none()).no_budget()).layer(flapping()),
    );
    // The standard budget (20 % of calls plus 10 a second) would refuse most of these
    // retries; this one's floor lets all of them through, at the same cost per deposit and
    // withdrawal.
    let budget = RetryBudget::new(Duration::from_secs(10), 1_000_000, 0.2).expect("a budget");
    turn_case(
        &mut group,
        &mut turns,
        "towline Retry (no backoff, with a budget that allows it)",
        towline_retry(RetryPolicy::new().backoff(Backoff::none()).budget(budget)).layer(flapping()),
    );
    group.finish();
    turns.run(IN_MEMORY_ROUNDS, "one_retry_interleaved.tsv");
}

/// Over real loopback HTTP/1.1: the testkit server and hyper-util's legacy client (keep-alive),
/// bare, with tower's Retry + Timeout, and with towline's whole standard pipeline.
fn loopback(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime with I/O");
    let url = server_thread();
    let client = rt.block_on(async {
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<Full<Bytes>>()
    });
    let request = move || loopback_request(&url);
    let cases: Vec<(&str, LoopbackService)> = vec![
        (
            "bare hyper-util client",
            tower::util::BoxCloneService::new(
                client
                    .clone()
                    .map_err(BoxError::from)
                    .map_response(|r| r.map(|b| b.map_err(BoxError::from).boxed())),
            ),
        ),
        (
            "tower Retry + tower Timeout",
            tower::util::BoxCloneService::new(
                tower_pair(client.clone())
                    .map_err(BoxError::from)
                    .map_response(|r| r.map(|b| b.map_err(BoxError::from).boxed())),
            ),
        ),
        (
            "towline layers alone (Deadline>Retry>RateLimit>Auth>NoRedirect>Timeout>ErrorBody)",
            tower::util::BoxCloneService::new(
                towline_stack(client.clone(), cached_token_layer())
                    .map_response(|r| r.map(|b| b.map_err(BoxError::from).boxed())),
            ),
        ),
        (
            "towline standard pipeline (with cached token)",
            tower::util::BoxCloneService::new(
                towline::Pipeline::new()
                    .auth(cached_token_layer())
                    .service(client.clone())
                    .map_response(|r| r.map(|b| b.map_err(BoxError::from).boxed())),
            ),
        ),
    ];
    let mut turns = Turns::new(&rt, &request, LOOPBACK_CALLS_PER_TURN);
    for (name, service) in &cases {
        turns.add(name, service.clone());
    }
    turns.run(LOOPBACK_ROUNDS, "loopback_interleaved.tsv");

    let mut group = group(c, "loopback");
    let mut run = |name: &str, service: LoopbackService| {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_batched(
                &request,
                |request| round_trip(service.clone(), request),
                BatchSize::NumIterations(REQUESTS_PER_BATCH),
            )
        });
    };
    for (name, service) in cases {
        run(name, service);
    }
    group.finish();
}

/// Rounds of the interleaved loopback comparison, and calls per case in each round.
const LOOPBACK_ROUNDS: usize = 300;
const LOOPBACK_CALLS_PER_TURN: usize = 100;

/// Services taking turns, for ratios that machine drift cannot tilt.
///
/// criterion runs one case after another, and over a run a shared VM drifts by more than a
/// layer costs: in memory, and by more than the few percent a stack adds over loopback (waking the server's
/// thread, the pool and the kernel's state move). Here each round lets every case make
/// `calls` calls in a row, starting with a different case each round, so each round gives each
/// case a mean per call and a delta to the first case (the baseline) measured moments apart.
/// [`Turns::run`] writes the medians over the rounds.
struct Turns<'a> {
    rt: &'a Runtime,
    request: &'a dyn Fn() -> Request<Full<Bytes>>,
    calls: usize,
    /// Each case's name, and a closure timing its calls on the requests it is given.
    cases: Vec<(String, TimedCalls<'a>)>,
}

type TimedCalls<'a> = Box<dyn FnMut(Vec<Request<Full<Bytes>>>) -> Duration + 'a>;

impl<'a> Turns<'a> {
    fn new(rt: &'a Runtime, request: &'a dyn Fn() -> Request<Full<Bytes>>, calls: usize) -> Self {
        Turns {
            rt,
            request,
            calls,
            cases: Vec::new(),
        }
    }

    /// Adds a case, unless one of that name is in already (groups share their bare case).
    fn add<S, B>(&mut self, name: &str, service: S)
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + 'a,
        S::Error: Debug,
        B: Body<Data = Bytes>,
        B::Error: Debug,
    {
        if self.cases.iter().any(|(other, _)| other == name) {
            return;
        }
        let rt = self.rt;
        let timed = move |requests: Vec<Request<Full<Bytes>>>| {
            rt.block_on(async {
                let start = tokio::time::Instant::now();
                for request in requests {
                    round_trip(service.clone(), request).await;
                }
                start.elapsed()
            })
        };
        self.cases.push((name.to_owned(), Box::new(timed)));
    }

    /// Runs `rounds` rounds and writes the medians to `target/criterion/<file>`:
    /// `case<TAB>ns per call<TAB>Δ ns<TAB>allocations per call`, the first case's line first.
    fn run(mut self, rounds: usize, file: &str) {
        let count = self.cases.len();
        let mut means = vec![Vec::with_capacity(rounds); count];
        let mut allocations = vec![0usize; count];
        for round in 0..rounds {
            for turn in 0..count {
                let index = (round + turn) % count;
                let requests: Vec<_> = (0..self.calls).map(|_| (self.request)()).collect();
                let region = Region::new(ALLOCATOR);
                let elapsed = (self.cases[index].1)(requests);
                allocations[index] += region.change().allocations;
                means[index].push(elapsed.as_nanos() as f64 / self.calls as f64);
            }
        }
        let median = |mut values: Vec<f64>| {
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let mut lines = String::new();
        for (index, (name, _)) in self.cases.iter().enumerate() {
            let per_round = |f: fn(f64, f64) -> f64| {
                let values = means[index].iter().zip(&means[0]);
                median(values.map(|(case, base)| f(*case, *base)).collect())
            };
            let ns = median(means[index].clone());
            let delta = per_round(|case, base| case - base);
            // The delta over the baseline's median: a median of per-round ratios would divide
            // by the baseline's own noise (its per-round means spread by ±15 % in memory).
            let ratio = 1.0 + delta / median(means[0].clone());
            let per_call = allocations[index] as f64 / (rounds * self.calls) as f64;
            println!(
                "{file} {name}: {ns:.0} ns, {delta:+.0} ns, {ratio:.3}x, {per_call:.1} allocations"
            );
            lines.push_str(&format!("{name}\t{ns:.0}\t{delta:+.0}\t{per_call:.1}\n"));
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(file), lines);
    }
}

type LoopbackService = tower::util::BoxCloneService<
    Request<Full<Bytes>>,
    Response<http_body_util::combinators::BoxBody<Bytes, BoxError>>,
    BoxError,
>;

/// A token source handing out `t1`, `t2`, ...
fn rotating_source() -> impl towline_auth::TokenSource {
    let issued = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    towline_auth::from_fn(move || {
        let n = issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        async move { Token::new(format!("t{n}")) }
    })
}

/// An upstream accepting `t1` once, then only `t2` once, and so on: behind
/// `rotating_source`, every call meets a 401, refreshes, and replays.
fn rotating_upstream() -> impl Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, Infallible>>,
> + Clone {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let expected = Arc::new(AtomicU64::new(1));
    service_fn(move |request: Request<Full<Bytes>>| {
        let expected = expected.clone();
        async move {
            let want = format!("Bearer t{}", expected.load(Ordering::Relaxed));
            let mut response = Response::new(Full::new(Bytes::new()));
            if request
                .headers()
                .get("authorization")
                .is_some_and(|v| v == want.as_str())
            {
                expected.fetch_add(1, Ordering::Relaxed);
            } else {
                *response.status_mut() = http::StatusCode::UNAUTHORIZED;
            }
            Ok::<_, Infallible>(response)
        }
    })
}

/// Every call but the first meets a 401 (the upstream accepts each token once), so each is a
/// failed attempt, one refresh from the token source and one replay.
fn refresh_on_401(c: &mut Criterion) {
    let rt = runtime();
    let upstream = rotating_upstream();
    let mut group = group(c, "refresh_on_401");
    case(
        &mut group,
        &rt,
        "bare (answers 401 or 200 at once)",
        upstream.clone(),
    );
    case(
        &mut group,
        &rt,
        "towline TokenRefresh: 401, refresh, replay",
        TokenRefreshLayer::new(rotating_source()).layer(upstream),
    );
    // Under retry: the token layer keeps no copy and retry replays its own.
    case(
        &mut group,
        &rt,
        "towline Retry > TokenRefresh: 401, refresh, replay by retry",
        ServiceBuilder::new()
            .layer(towline_retry(RetryPolicy::new()))
            .layer(TokenRefreshLayer::new(rotating_source()))
            .service(rotating_upstream()),
    );
    group.finish();
}

criterion_group!(
    benches,
    refresh_on_401,
    loopback,
    success,
    success_path_yielding,
    one_retry_zero_backoff
);
criterion_main!(benches);
