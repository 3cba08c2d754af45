//! The "done when": four replicas (each its own runtime, tokio clock, Redis
//! connection and layers) call one server that enforces a quota and logs arrivals.

mod common;

use std::collections::{BTreeSet, VecDeque};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use towline_auth::{Token, TokenRefreshLayer, from_fn};
use towline_ratelimit::{Quota, RateLimitLayer};
use towline_redis::{Leasing, RedisTokenSource};
use towline_testkit::{Reply, TestServer};

const REPLICAS: usize = 4;
/// Concurrent callers per replica.
const TASKS: usize = 10;
const CALLS: usize = 2000;
const QUOTA: u32 = 400;
const PER: Duration = Duration::from_secs(1);
/// Arrival times are the server's, sends the replicas': a busy 2-core machine moves a call
/// by up to ~100 ms between the two (a burst of a window's calls takes that long to get
/// through), so windows are checked this much shorter (as the chaos soak does).
const JITTER: Duration = Duration::from_millis(150);
/// The request that gets `429` + `Retry-After: 1`.
const GATED_AT: usize = 700;
/// Calls already admitted when the 429 left may still arrive this long after it.
const IN_FLIGHT: Duration = Duration::from_millis(100);
const TOKEN_LIFETIME: Duration = Duration::from_secs(1);

/// One replica: its own runtime, whose tokio clock is `offset` ahead of the others' start,
/// its own Redis connections, rate-limit layer and token layer.
fn replica(
    redis_url: String,
    prefix: String,
    api: http::Uri,
    offset: Duration,
    fetches: Arc<AtomicUsize>,
    leasing: Option<Leasing>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        // A clock this far from the other replicas', running in real time from here on.
        tokio::time::advance(offset).await;
        tokio::time::resume();
        // This test is about sharing: a loaded machine must not push it into failing open.
        let redis = towline_redis::Redis::open(&redis_url)
            .unwrap()
            .prefix(prefix)
            .op_timeout(Duration::from_secs(1));
        let mut store = towline_redis::RedisStore::new(redis.clone(), open(REPLICAS as u32));
        if let Some(leasing) = leasing {
            store = store.leasing(leasing);
        }
        let login = from_fn(move || {
            fetches.fetch_add(1, Ordering::SeqCst);
            async move {
                let n = std::process::id() as u64 ^ u64::from(fastrand_u32());
                Token::new(format!("tok-{n:x}")).map(|t| t.expires_in(TOKEN_LIFETIME))
            }
        });
        let tokens = RedisTokenSource::new(login, redis, "api-key", open(REPLICAS as u32));
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let service = RateLimitLayer::new()
            .store(store)
            .quota(Quota::new(QUOTA, PER))
            .spread(Duration::ZERO)
            .max_wait(Duration::from_secs(30))
            .layer(TokenRefreshLayer::new(tokens).layer(client));
        // The first token before the run: a call held below the rate limit waiting for it
        // would go later than its slot, and the server would see that window squeezed.
        let warmup = http::Request::get(warmup_url(&api))
            .body(Full::default())
            .unwrap();
        service.clone().oneshot(warmup).await.unwrap();
        let tasks: Vec<_> = (0..TASKS)
            .map(|_| {
                let (service, api) = (service.clone(), api.clone());
                tokio::spawn(async move {
                    for _ in 0..CALLS / REPLICAS / TASKS {
                        let request = http::Request::get(api.clone())
                            .body(Full::default())
                            .unwrap();
                        service.clone().oneshot(request).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

fn warmup_url(api: &http::Uri) -> http::Uri {
    let authority = api.authority().unwrap();
    format!("http://{authority}/warmup").parse().unwrap()
}

/// Distinct per token fetch, without a clock.
fn fastrand_u32() -> u32 {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst) as u32
}

#[test]
fn four_replicas_with_offset_clocks_share_one_quota_one_gate_and_one_token() {
    four_replicas(None);
}

#[test]
fn four_replicas_leasing_quota_slots_still_share_one_quota_and_one_gate() {
    // Eight slots a round trip, each good for 50 ms.
    let leasing = Leasing::new(NonZeroU32::new(8).unwrap(), Duration::from_millis(50));
    four_replicas(Some(leasing));
}

fn four_replicas(leasing: Option<Leasing>) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = server_runtime.block_on(TestServer::start());
    // The server enforces the quota itself (a 429 without a hint past it) and, once, asks
    // everyone to wait a second.
    let accepted = Arc::new(Mutex::new(VecDeque::<Instant>::new()));
    let (seen, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (accepted2, seen2, refused2) = (accepted.clone(), seen.clone(), refused.clone());
    server.route_fn("/api", move |request| {
        if seen2.fetch_add(1, Ordering::SeqCst) + 1 == GATED_AT {
            return Reply::status(429).header("retry-after", "1");
        }
        let mut accepted = accepted2.lock().unwrap();
        while accepted
            .front()
            .is_some_and(|at| *at + PER <= request.arrived_at)
        {
            accepted.pop_front();
        }
        if accepted.len() >= QUOTA as usize {
            refused2.fetch_add(1, Ordering::SeqCst);
            return Reply::status(429);
        }
        accepted.push_back(request.arrived_at);
        Reply::ok()
    });
    server.route("/warmup", Reply::ok());
    server.set_log_limit(CALLS * 2);
    let fetches = Arc::new(AtomicUsize::new(0));
    let started = std::time::SystemTime::now();
    let replicas: Vec<_> = [0u64, 10, 20, 10]
        .into_iter()
        .map(|offset| {
            let (url, prefix, api, fetches) = (
                redis.url(),
                "replicas:".to_owned(),
                server.url("/api"),
                fetches.clone(),
            );
            std::thread::spawn(move || {
                replica(
                    url,
                    prefix,
                    api,
                    Duration::from_secs(offset),
                    fetches,
                    leasing,
                )
            })
        })
        .collect();
    for replica in replicas {
        replica.join().unwrap();
    }
    let elapsed = started.elapsed().unwrap();
    let log = server.requests_to("/api");
    assert_eq!(log.len(), CALLS, "every call sent once");

    // No window (shortened by the jitter) holds more than the quota.
    let arrivals: Vec<Instant> = log.iter().map(|r| r.arrived_at).collect();
    for (i, at) in arrivals.iter().enumerate() {
        let in_window = arrivals[i..]
            .iter()
            .take_while(|a| **a < *at + (PER - JITTER))
            .count();
        assert!(
            in_window <= QUOTA as usize,
            "{in_window} arrivals within {:?} of #{i}",
            PER - JITTER
        );
    }

    // The 429 to one replica held all four: nothing arrived inside the announced second,
    // past the calls already on their way.
    let gated = log[GATED_AT - 1].arrived_at;
    let inside: Vec<_> = arrivals
        .iter()
        .filter(|a| **a > gated + IN_FLIGHT && **a < gated + Duration::from_secs(1))
        .collect();
    assert!(
        inside.is_empty(),
        "{} arrivals inside the gate",
        inside.len()
    );

    // One token at a time for all four: a replacement every half lifetime, plus the first.
    let fetches = fetches.load(Ordering::SeqCst);
    let replacements = (elapsed.as_millis() / (TOKEN_LIFETIME / 2).as_millis()) as usize;
    let tokens: BTreeSet<_> = log
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert!(
        fetches <= replacements + 1,
        "{fetches} fetches in {elapsed:?}"
    );
    assert!(
        tokens.len() <= fetches,
        "{} tokens seen, {fetches} fetched",
        tokens.len()
    );
    eprintln!(
        "{CALLS} calls from {REPLICAS} replicas in {elapsed:?}: {} over the server's strict \
         quota, {fetches} token fetches",
        refused.load(Ordering::SeqCst)
    );
    drop(server);
    drop(server_runtime);
}
