//! The circuit breaker's closed path against the open rate-limit gate and a bare service, on
//! the same calls: a call to a key whose circuit is closed (with 0 and 10 000 other keys
//! kept), and a call refused by an open circuit (the fail-fast path).
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
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use towline_breaker::CircuitBreakerLayer;
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

criterion_group!(benches, breaker);
criterion_main!(benches);
