//! Gate lookup against the number of keys: a call to an open key while 0, 1, 10 000 and
//! 100 000 other keys have closed gates, through `RateLimitLayer` and on the
//! `InMemoryStore` alone. The cost must not grow with the number of keys.
//!
//! The inner service is a `tower::service_fn` answering an empty `Response<()>` at once; each
//! iteration clones the service, builds a GET and sends it with `oneshot` on a current-thread
//! tokio runtime (time driver only). The gates are closed for an hour, so none expires (and
//! no sweep runs) while measuring.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use tokio::runtime::Runtime;
use tower::{BoxError, Layer, ServiceExt, service_fn};
use towline_ratelimit::{GateStore, InMemoryStore, RateLimitLayer};

const CLOSED: [usize; 4] = [0, 1, 10_000, 100_000];

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
}

/// A store with `closed` gates closed for an hour, on keys no call in the bench uses.
fn store_with(rt: &Runtime, closed: usize) -> Arc<InMemoryStore> {
    let store = Arc::new(InMemoryStore::with_max_keys(closed + 1));
    rt.block_on(async {
        for i in 0..closed {
            let key = format!("closed-{i}.example:443");
            store
                .close(&key, Duration::from_secs(3600))
                .await
                .expect("in memory");
        }
    });
    store
}

fn gate_lookup(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("gate_lookup");
    for closed in CLOSED {
        let store = store_with(&rt, closed);
        let service = RateLimitLayer::new().store(store.clone()).layer(service_fn(
            |_req: Request<()>| async { Ok::<_, BoxError>(Response::new(())) },
        ));
        group.bench_with_input(BenchmarkId::new("layer", closed), &closed, |b, _| {
            b.to_async(&rt).iter(|| {
                let service = service.clone();
                async move {
                    let request = Request::get("http://open.example/items")
                        .body(())
                        .expect("a request");
                    black_box(service.oneshot(request).await.expect("open"))
                }
            })
        });
        group.bench_with_input(BenchmarkId::new("store", closed), &closed, |b, _| {
            b.to_async(&rt)
                .iter(|| async { black_box(store.closed_for("open.example").await) })
        });
    }
    group.finish();
}

criterion_group!(benches, gate_lookup);
criterion_main!(benches);
