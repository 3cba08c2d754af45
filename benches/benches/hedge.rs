//! The hedge layer's success path (no hedge fires) beside a bare service and tower's `Hedge`
//! in the same group.
//!
//! The inner service is an in-memory `tower::service_fn` answering an empty
//! `Response<Full<Bytes>>` to a GET with two headers and an empty body. Each iteration waits for
//! the service to be ready, calls it and awaits the response, on one current-thread tokio
//! runtime (time driver only); requests are built outside the timed section.
//!
//! - `hedge_success_path`: the inner future is ready on its first poll, so towline's layer
//!   makes no timer (it makes one only once the first attempt is pending); tower's `Hedge`
//!   still clones the request and makes its delayed second call's future on every call.
//! - `hedge_success_path_yielding`: the inner future yields once, so both hedges arm their
//!   timer and drop it when the first answer comes.
//!
//! Both hedges wait 100 ms: towline's as a fixed delay, tower's as the 90th percentile of a
//! histogram filled with 100 ms samples up front (`new_with_mock_latencies`), with a period
//! long enough that it never rotates during the run. towline's percentile mode reads one
//! atomic word for its delay where the fixed mode reads none, and records one latency per
//! call (two atomic adds): it is not benched separately.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt::Debug;
use std::time::Duration;

use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BatchSize, BenchmarkGroup, Criterion, criterion_group, criterion_main};
use http::{Method, Request, Response};
use http_body_util::Full;
use tokio::runtime::Runtime;
use tower::hedge::{Hedge, Policy};
use tower::{Layer, Service, service_fn};
use towline_core::replay_request;
use towline_retry::HedgeLayer;

const DELAY: Duration = Duration::from_millis(100);
const REQUESTS_PER_BATCH: u64 = 128;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime")
}

fn request() -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::GET)
        .uri("https://api.example/v1/items")
        .header("accept", "application/json")
        .header("user-agent", "towline-bench")
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

async fn answer(_request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::new())))
}

async fn answer_after_yield(
    _request: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    tokio::task::yield_now().await;
    Ok(Response::new(Full::new(Bytes::new())))
}

/// The policy a tower user writes: hedge idempotent requests, copying them whole.
#[derive(Clone)]
struct TowerHedgePolicy;

impl Policy<Request<Full<Bytes>>> for TowerHedgePolicy {
    fn clone_request(&self, request: &Request<Full<Bytes>>) -> Option<Request<Full<Bytes>>> {
        request
            .method()
            .is_idempotent()
            .then(|| replay_request(request))
            .flatten()
    }

    fn can_retry(&self, _request: &Request<Full<Bytes>>) -> bool {
        true
    }
}

fn tower_hedge<S>(inner: S) -> Hedge<S, TowerHedgePolicy>
where
    S: Service<Request<Full<Bytes>>> + Clone,
    S::Error: Into<tower::BoxError>,
{
    let samples = [DELAY.as_millis() as u64; 100];
    Hedge::new_with_mock_latencies(
        inner,
        TowerHedgePolicy,
        10,
        0.9,
        Duration::from_secs(3600),
        &samples,
    )
}

/// Benches one case: one service called in place (ready, then call).
fn case<S>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, name: &str, service: S)
where
    S: Service<Request<Full<Bytes>>, Response = Response<Full<Bytes>>>,
    S::Error: Debug,
{
    let service = RefCell::new(service);
    group.bench_function(name, |b| {
        b.to_async(rt).iter_batched(
            request,
            |request| {
                let service = &service;
                async move {
                    // The borrow never spans an await: each poll takes its own.
                    std::future::poll_fn(|cx| service.borrow_mut().poll_ready(cx))
                        .await
                        .expect("ready");
                    let future = service.borrow_mut().call(request);
                    std::hint::black_box(future.await.expect("a response"));
                }
            },
            BatchSize::NumIterations(REQUESTS_PER_BATCH),
        )
    });
}

fn hedge(c: &mut Criterion) {
    let rt = runtime();
    // tower's Hedge reads tokio's clock when it is built: inside the runtime.
    let _guard = rt.enter();

    let mut group = c.benchmark_group("hedge_success_path");
    let inner = service_fn(answer);
    case(&mut group, &rt, "bare", inner);
    case(
        &mut group,
        &rt,
        "towline hedge",
        HedgeLayer::after(DELAY).layer(inner),
    );
    case(&mut group, &rt, "tower Hedge", tower_hedge(inner));
    group.finish();

    let mut group = c.benchmark_group("hedge_success_path_yielding");
    let inner = service_fn(answer_after_yield);
    case(&mut group, &rt, "bare", inner);
    case(
        &mut group,
        &rt,
        "towline hedge",
        HedgeLayer::after(DELAY).layer(inner),
    );
    case(&mut group, &rt, "tower Hedge", tower_hedge(inner));
    group.finish();
}

criterion_group!(benches, hedge);
criterion_main!(benches);
