//! The shared-state soak, in real time on a multi-thread runtime: many callers at once whose
//! own timeouts cancel their calls at any await point, short-lived tokens, 429/503 storms and
//! many quota keys, all through one `Pipeline` over hyper-util against the testkit server.
//! Bounded to about 15 s. What it asserts is read from the server's records and the token
//! source's count:
//!
//! - no call outlives its deadline (nor its caller's timeout) by more than scheduling slack;
//! - token fetches ≤ token lifetimes elapsed + 1: one fetch per expiry, whoever is cancelled;
//! - no quota window on any key saw more than the quota;
//! - retries stayed within the budget's bound;
//! - memory stayed bounded.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::ServiceExt;
use towline::auth::from_fn;
use towline::ratelimit::{Quota, RateLimitLayer};
use towline::retry::{RetryBudget, RetryLayer, RetryPolicy};
use towline::{DeadlineLayer, Pipeline, Token, TokenRefreshLayer};
use towline_testkit::{Reply, TestServer};

const CALLERS: usize = 64;
const RUN_FOR: Duration = Duration::from_secs(12);
const DEADLINE: Duration = Duration::from_secs(2);
const TOKEN_LIFETIME: Duration = Duration::from_secs(3);
const REFRESH_MARGIN: Duration = Duration::from_secs(1);
const KEYS: u64 = 40;
const QUOTA_CALLS: u32 = 10;
const QUOTA_PER: Duration = Duration::from_secs(1);
/// A 2-core machine running other tests too schedules late; a bug overshoots by seconds.
const SLACK: Duration = Duration::from_millis(400);
const BUDGET_RATIO: f32 = 0.2;
const BUDGET_FLOOR: u32 = 10;
const BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// The server's records.
#[derive(Default)]
struct Books {
    /// Per quota key: when each request arrived.
    arrivals: HashMap<String, Vec<Instant>>,
    /// Per call id: how many attempts reached the server.
    attempts: HashMap<String, usize>,
    /// Requests answered 401 (a token past its expiry).
    unauthorized: usize,
}

fn resident_bytes() -> u64 {
    // Linux: the second field of statm is resident pages.
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_state_holds_under_cancellation_and_load() {
    let server = TestServer::start().await;
    let books = Arc::new(Mutex::new(Books::default()));
    // Tokens the server accepts, with their expiry (the token source's own word).
    let valid: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let started = Instant::now();
    let storms = Arc::new(AtomicU64::new(0));

    let (record, accepted, storm_count) = (books.clone(), valid.clone(), storms.clone());
    server.route_fn("/op", move |request| {
        let now = Instant::now();
        let key = request.header("x-tenant").unwrap_or("none").to_owned();
        let call = request.header("x-call").unwrap_or("").to_owned();
        let token = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or("")
            .to_owned();
        let mut books = record.lock().unwrap();
        books.arrivals.entry(key.clone()).or_default().push(now);
        *books.attempts.entry(call).or_default() += 1;
        let fresh = accepted
            .lock()
            .unwrap()
            .get(&token)
            .is_some_and(|expiry| now < *expiry);
        if !fresh {
            books.unauthorized += 1;
            return Reply::status(401);
        }
        // A storm every 3 s for 300 ms on a few keys: 429 or 503 with a wait.
        let phase = now.duration_since(started).as_millis() % 3000;
        let stormy_key = key.ends_with('3') || key.ends_with('7');
        if phase < 300 && stormy_key {
            storm_count.fetch_add(1, Ordering::Relaxed);
            return if key.ends_with('3') {
                Reply::status(429).header("retry-after", "1")
            } else {
                Reply::status(503).header("x-wait-seconds", "1")
            };
        }
        if fastrand::u8(..) < 8 {
            return Reply::status(502);
        }
        Reply::ok().body("ok")
    });

    let fetches = Arc::new(AtomicUsize::new(0));
    let (counted, issued) = (fetches.clone(), valid.clone());
    let source = from_fn(move || {
        let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
        let issued = issued.clone();
        async move {
            // A token endpoint that takes its time: callers come and go meanwhile.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let secret = format!("tok-{n}");
            issued
                .lock()
                .unwrap()
                .insert(secret.clone(), Instant::now() + TOKEN_LIFETIME);
            Token::new(secret).map(|token| token.expires_in(TOKEN_LIFETIME))
        }
    });
    let auth = TokenRefreshLayer::builder(source)
        .refresh_margin(REFRESH_MARGIN)
        .build();
    let budget = RetryBudget::new(BUDGET_WINDOW, BUDGET_FLOOR, BUDGET_RATIO).unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let service = Pipeline::new()
        .deadline(DeadlineLayer::new(DEADLINE))
        .retry(RetryLayer::with_policy(RetryPolicy::new().budget(budget)))
        .rate_limit(
            RateLimitLayer::new()
                .quota(Quota::new(QUOTA_CALLS, QUOTA_PER))
                .key_by(|parts: &http::request::Parts| {
                    parts
                        .headers
                        .get("x-tenant")
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned)
                }),
        )
        .auth(auth)
        .service(client);

    // The first token, before the callers start: the quota is paced above the token layer, so
    // calls held for a first fetch would reach the server bunched together. Later tokens are
    // fetched in the background while the current one is valid, so nobody waits for them.
    let warm_up = Request::get(server.url("/op"))
        .header("x-tenant", "warm-up")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let _ = service.clone().oneshot(warm_up).await;

    let baseline = resident_bytes();
    let calls = Arc::new(AtomicUsize::new(0));
    let overran = Arc::new(Mutex::new(Vec::new()));
    let mut callers = Vec::new();
    for caller in 0..CALLERS {
        let (service, calls, overran, url) = (
            service.clone(),
            calls.clone(),
            overran.clone(),
            server.url("/op"),
        );
        callers.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(caller as u64);
            let mut n = 0;
            while started.elapsed() < RUN_FOR {
                n += 1;
                calls.fetch_add(1, Ordering::Relaxed);
                let request = Request::get(url.clone())
                    .header("x-tenant", format!("tenant-{}", rng.u64(..KEYS)))
                    .header("x-call", format!("{caller}-{n}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                // The caller's own patience: often shorter than the deadline, so calls are
                // dropped at whatever await point they are in.
                let patience = Duration::from_millis(rng.u64(20..2_500));
                let begun = Instant::now();
                let call = async {
                    let response = service.clone().oneshot(request).await?;
                    response.into_body().collect().await?;
                    Ok::<_, tower::BoxError>(())
                };
                let _ = tokio::time::timeout(patience, call).await;
                let took = begun.elapsed();
                if took > patience.min(DEADLINE) + SLACK {
                    overran.lock().unwrap().push(took);
                }
            }
        }));
    }
    for caller in callers {
        caller.await.unwrap();
    }
    let elapsed = started.elapsed();
    let grown = resident_bytes().saturating_sub(baseline);
    let books = std::mem::take(&mut *books.lock().unwrap());

    assert!(
        overran.lock().unwrap().is_empty(),
        "calls outlived their deadline: {:?}",
        overran.lock().unwrap()
    );

    let fetched = fetches.load(Ordering::SeqCst) as u64;
    let serves = TOKEN_LIFETIME - REFRESH_MARGIN;
    let expiries = (elapsed.as_millis() / serves.as_millis()) as u64;
    assert!(
        fetched <= expiries + 1,
        "{fetched} token fetches for {expiries} expiries"
    );

    // Client-side pacing is exact; arrivals bunch up by the network's and the scheduler's
    // jitter (up to ~70 ms seen on 2 busy cores). A lost slot or a bypassed gate bunches
    // them by most of the window (94 ms for 11 calls, seen before the store's fix).
    let window = QUOTA_PER - Duration::from_millis(150);
    for (key, arrivals) in &books.arrivals {
        let mut arrivals = arrivals.clone();
        arrivals.sort();
        for pair in arrivals.windows(QUOTA_CALLS as usize + 1) {
            assert!(
                pair[QUOTA_CALLS as usize].duration_since(pair[0]) >= window,
                "key {key}: {} calls within {:?}",
                QUOTA_CALLS + 1,
                pair[QUOTA_CALLS as usize].duration_since(pair[0])
            );
        }
    }

    let distinct: HashSet<&String> = books.attempts.keys().collect();
    let sent: usize = books.attempts.values().sum();
    let resent = sent - distinct.len();
    // Resends after a 401 are not retries; each 401 allows one.
    let retries = resent.saturating_sub(books.unauthorized);
    let made = calls.load(Ordering::Relaxed) as f64;
    let bound = made * f64::from(BUDGET_RATIO)
        + f64::from(BUDGET_FLOOR) * (elapsed + BUDGET_WINDOW).as_secs_f64();
    assert!(
        (retries as f64) <= bound,
        "{retries} retries over the budget's bound {bound}"
    );

    assert!(
        storms.load(Ordering::Relaxed) > 0,
        "the storms happened (else this proves less)"
    );
    assert!(grown < 64 << 20, "resident memory grew by {grown} bytes");
    eprintln!(
        "soak: {made} calls, {sent} attempts at the server, {fetched} token fetches, \
         {retries} retries (bound {bound:.0}), {} 401s, RSS +{} KiB, {elapsed:?}",
        books.unauthorized,
        grown / 1024
    );
    server.shutdown().await;
}
