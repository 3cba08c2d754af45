//! A rate-limited call's admission over loopback Redis (`RedisStore`) against the same on the
//! `InMemoryStore` (the baseline, same group): a gate check plus a quota reservation, on the
//! store alone and through `RateLimitLayer` with a quota.
//!
//! Redis is a `redis-server` the bench starts itself (`towline_testkit::RedisServer`); without
//! one installed, the Redis cases are skipped with a message. The quota is large (10^9 calls a
//! second) so every reservation is granted at once; the log it fills expires after a second.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use tokio::runtime::Runtime;
use tower::{BoxError, Layer, ServiceExt, service_fn};
use towline_ratelimit::{GateStore, InMemoryStore, Quota, RateLimitLayer};
use towline_redis::{OnFailure, Redis, RedisStore};
use towline_testkit::RedisServer;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

fn quota() -> Quota {
    Quota::new(1_000_000_000, Duration::from_secs(1))
}

/// The store alone: `closed_for` then `reserve`, as one admission does.
fn admit<S: GateStore>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    name: &str,
    store: S,
) {
    let far = Duration::from_secs(60);
    group.bench_function(name, |b| {
        b.to_async(rt).iter(|| async {
            let gate = store.closed_for("api.example:443").await.expect("answers");
            let slot = store
                .reserve("api.example:443", quota(), Duration::ZERO, far)
                .await
                .expect("answers");
            black_box((gate, slot))
        })
    });
}

/// Through the layer, with a quota: the success path of a paced call.
fn layer<S: GateStore>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    name: &str,
    store: S,
) {
    let service = RateLimitLayer::new()
        .store(store)
        .quota(quota())
        .layer(service_fn(|_req: Request<()>| async {
            Ok::<_, BoxError>(Response::new(()))
        }));
    group.bench_function(name, |b| {
        b.to_async(rt).iter(|| {
            let service = service.clone();
            async move {
                let request = Request::get("http://api.example/items")
                    .body(())
                    .expect("a request");
                black_box(service.oneshot(request).await.expect("ok"))
            }
        })
    });
}

fn redis_store(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("shared_store");
    admit(&mut group, &rt, "admit/in_memory", InMemoryStore::new());
    layer(&mut group, &rt, "layer/in_memory", InMemoryStore::new());
    let Some(server) = RedisServer::start() else {
        group.finish();
        return;
    };
    let store = rt.block_on(async {
        let redis = Redis::open(&server.url()).expect("a url").prefix("bench:");
        let replicas = NonZeroU32::new(1).expect("one");
        RedisStore::new(redis, OnFailure::Open { replicas })
    });
    admit(&mut group, &rt, "admit/redis", store.clone());
    layer(&mut group, &rt, "layer/redis", store);
    group.finish();
}

criterion_group!(benches, redis_store);
criterion_main!(benches);
