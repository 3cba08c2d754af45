//! A rate-limited call's admission over loopback Redis (`RedisStore`, with and without leased
//! quota slots) against the same on the `InMemoryStore` (the baseline, same group): a gate
//! check plus a quota reservation on the store alone, through `RateLimitLayer` with a quota,
//! and the whole `Pipeline`'s success path with a quota. After the timed runs, each Redis
//! case prints its round trips per call (reservation scripts, gate lookups), counted by Redis.
//!
//! Redis is a `redis-server` the bench starts itself (`towline_testkit::RedisServer`); without
//! one installed, the Redis cases are skipped with a message. The quota is large (10^9 calls a
//! second) so every reservation is granted at once; the log it fills expires after a second.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Full;
use tokio::runtime::Runtime;
use tower::util::BoxCloneService;
use tower::{BoxError, Layer, ServiceExt, service_fn};
use towline_ratelimit::{GateStore, InMemoryStore, Quota, RateLimitLayer};
use towline_redis::{Leasing, OnFailure, Redis, RedisStore};
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

type Paced = BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, BoxError>;

fn ok() -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<Full<Bytes>>,
    Error = BoxError,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, BoxError>>,
> + Clone {
    service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, BoxError>(Response::new(Full::new(Bytes::new())))
    })
}

/// Through the layer alone, with a quota: the success path of a paced call.
fn layer(store: impl GateStore) -> Paced {
    BoxCloneService::new(
        RateLimitLayer::new()
            .store(store)
            .quota(quota())
            .layer(ok()),
    )
}

/// The whole standard pipeline, with a quota.
fn pipeline(store: impl GateStore) -> Paced {
    let service = towline::Pipeline::new()
        .rate_limit(RateLimitLayer::new().quota(quota()))
        .gate_store(store)
        .service(ok())
        .map_response(|r| r.map(|_| Full::new(Bytes::new())));
    BoxCloneService::new(service)
}

fn call(service: &Paced) -> impl Future<Output = Response<Full<Bytes>>> + use<> {
    let request = Request::get("http://api.example/items")
        .body(Full::new(Bytes::new()))
        .expect("a request");
    let call = service.clone().oneshot(request);
    async move { call.await.expect("ok") }
}

fn bench_calls(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    name: &str,
    service: &Paced,
) {
    group.bench_function(name, |b| {
        b.to_async(rt)
            .iter(|| async { black_box(call(service).await) })
    });
}

/// Round trips per call over `CALLS` sequential calls of `service`: reservation scripts, and
/// gate lookups (`PTTL` sent by the store, not by the script, which runs one itself).
fn round_trips_per_call(rt: &Runtime, server: &RedisServer, service: &Paced) -> (f64, f64) {
    const CALLS: u32 = 10_000;
    let counts = || {
        [
            server.command_calls("evalsha"),
            server.command_calls("pttl"),
        ]
    };
    let [scripts, pttl] = counts();
    rt.block_on(async {
        for _ in 0..CALLS {
            call(service).await;
        }
    });
    let [scripts_after, pttl_after] = counts();
    let scripts = scripts_after - scripts;
    let lookups = (pttl_after - pttl) - scripts;
    let per_call = |n: u64| n as f64 / f64::from(CALLS);
    (per_call(scripts), per_call(lookups))
}

/// Waits (at most 5 s) for the store's pub/sub mirror, which answers open-gate checks.
fn mirrored(rt: &Runtime, store: RedisStore) -> RedisStore {
    rt.block_on(async {
        for _ in 0..500 {
            if store.is_mirrored() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    if !store.is_mirrored() {
        eprintln!("shared_store: the gate mirror is not live; gate checks go to Redis");
    }
    store
}

fn redis_store(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("shared_store");
    admit(&mut group, &rt, "admit/in_memory", InMemoryStore::new());
    bench_calls(
        &mut group,
        &rt,
        "layer/in_memory",
        &layer(InMemoryStore::new()),
    );
    bench_calls(
        &mut group,
        &rt,
        "pipeline/in_memory",
        &pipeline(InMemoryStore::new()),
    );
    let Some(server) = RedisServer::start() else {
        group.finish();
        return;
    };
    let url = server.url();
    let store = |prefix: &str, leasing: Option<Leasing>| {
        let store = rt.block_on(async {
            let redis = Redis::open(&url).expect("a url").prefix(prefix);
            let replicas = NonZeroU32::new(1).expect("one");
            let store = RedisStore::new(redis, OnFailure::Open { replicas });
            match leasing {
                Some(leasing) => store.leasing(leasing),
                None => store,
            }
        });
        mirrored(&rt, store)
    };
    // 64 slots a round trip, each good for 100 ms (a tenth of the quota's window).
    let leasing = Some(Leasing::new(
        NonZeroU32::new(64).expect("64"),
        Duration::from_millis(100),
    ));
    admit(&mut group, &rt, "admit/redis", store("admit:", None));
    admit(
        &mut group,
        &rt,
        "admit/redis_leasing",
        store("admit-lease:", leasing),
    );
    let cases = [
        ("layer/redis", layer(store("layer:", None))),
        ("layer/redis_leasing", layer(store("layer-lease:", leasing))),
        ("pipeline/redis", pipeline(store("pipeline:", None))),
        (
            "pipeline/redis_leasing",
            pipeline(store("pipeline-lease:", leasing)),
        ),
    ];
    for (name, service) in &cases {
        bench_calls(&mut group, &rt, name, service);
    }
    group.finish();
    for (name, service) in &cases {
        let (scripts, lookups) = round_trips_per_call(&rt, &server, service);
        eprintln!(
            "shared_store/{name}: per call, {scripts:.4} reservation scripts and {lookups:.4} \
             gate lookups sent to redis"
        );
    }
}

criterion_group!(benches, redis_store);
criterion_main!(benches);
