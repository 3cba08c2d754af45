//! The circuit breaker's closed path against the open rate-limit gate and a bare service, on
//! the same calls: a call to a key whose circuit is closed (with 0 and 10 000 other keys
//! kept), and a call refused by an open circuit (the fail-fast path).
//!
//! The bulkhead's uncontended path (a free place, taken and given back) against a bare
//! service and tower's `ConcurrencyLimit` with the same limit, and its refusal of a call to a
//! key with every place taken and no queue (the fail-fast path).
//!
//! The inner service is a `tower::service_fn` answering an empty `Response<()>` at once; each
//! iteration clones the service, builds a GET and sends it with `oneshot` on a current-thread
//! tokio runtime (time driver only), as `gate.rs` does. The ratios to `bare` and to
//! `ratelimit_open` are computed from criterion's medians (the lead's report script, or by
//! hand from `target/criterion/breaker/*/new/estimates.json`).

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use tokio::runtime::Runtime;
use tower::limit::ConcurrencyLimitLayer;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use towline_breaker::{BulkheadLayer, CircuitBreakerLayer};
use towline_ratelimit::RateLimitLayer;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
}

fn bare() -> impl Service<Request<()>, Response = Response<()>, Error = BoxError> + Clone {
    service_fn(|_req: Request<()>| async { Ok::<_, BoxError>(Response::new(())) })
}

fn bench_calls<S>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    name: &str,
    service: S,
) where
    S: Service<Request<()>, Response = Response<()>> + Clone,
    S::Error: std::fmt::Debug,
{
    c.bench_function(name, |b| {
        b.to_async(rt).iter(|| {
            let service = service.clone();
            async move {
                let request = Request::get("http://open.example/items")
                    .body(())
                    .expect("a request");
                black_box(service.oneshot(request).await)
            }
        })
    });
}

fn breaker(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("breaker");
    bench_calls(&mut group, &rt, "bare", bare());
    bench_calls(
        &mut group,
        &rt,
        "ratelimit_open",
        RateLimitLayer::new().layer(bare()),
    );
    bench_calls(
        &mut group,
        &rt,
        "breaker_closed",
        CircuitBreakerLayer::new().layer(bare()),
    );

    let crowded = CircuitBreakerLayer::new().max_keys(10_001);
    let service = crowded.layer(bare());
    rt.block_on(async {
        for i in 0..10_000 {
            let request = Request::get(format!("http://other-{i}.example/"))
                .body(())
                .expect("a request");
            service.clone().oneshot(request).await.expect("closed");
        }
    });
    assert_eq!(crowded.circuits().len(), 10_000);
    bench_calls(&mut group, &rt, "breaker_closed_10k_keys", service);

    let open = CircuitBreakerLayer::new();
    open.circuits().force_open("open.example");
    bench_calls(&mut group, &rt, "breaker_open_refused", open.layer(bare()));
    group.finish();
}

fn bulkhead(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("bulkhead");
    bench_calls(&mut group, &rt, "bare", bare());
    bench_calls(
        &mut group,
        &rt,
        "tower_concurrency_limit",
        ConcurrencyLimitLayer::new(64).layer(bare()),
    );
    bench_calls(
        &mut group,
        &rt,
        "bulkhead_uncontended",
        BulkheadLayer::new(64).layer(bare()),
    );

    // One place, held by a call that never ends: every benched call is refused.
    let full = BulkheadLayer::new(1);
    let service = full.layer(service_fn(|_req: Request<()>| {
        std::future::pending::<Result<Response<()>, BoxError>>()
    }));
    let mut holder = Box::pin(
        service.clone().oneshot(
            Request::get("http://open.example/items")
                .body(())
                .expect("a request"),
        ),
    );
    rt.block_on(async {
        assert!(futures_poll_once(holder.as_mut()).is_pending());
    });
    assert_eq!(full.in_flight("open.example"), 1);
    group.bench_function("bulkhead_full_refused", |b| {
        b.to_async(&rt).iter(|| {
            let service = service.clone();
            async move {
                let request = Request::get("http://open.example/items")
                    .body(())
                    .expect("a request");
                black_box(service.oneshot(request).await.expect_err("refused"))
            }
        })
    });
    drop(holder);
    group.finish();
}

/// Polls `future` once.
fn futures_poll_once<F: std::future::Future>(
    future: std::pin::Pin<&mut F>,
) -> std::task::Poll<F::Output> {
    future.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}

criterion_group!(benches, breaker, bulkhead);
criterion_main!(benches);
