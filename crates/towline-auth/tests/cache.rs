//! The token cache under callers that come and go: one fetch per expiry, owned by the cache,
//! whoever drops or parks; proactive refresh in the background; short-lived tokens; 401s for
//! old tokens.

mod cache_support;

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::time::{Instant, advance, sleep, timeout};
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceExt, service_fn};
use towline_auth::TokenRefreshLayer;
use towline_core::{AuthReason, Error};

use cache_support::{
    Body, Gate, call, client, echo, gated_source, poll_once, request, seen, source, token,
};

const MS: Duration = Duration::from_millis(1);
const S: Duration = Duration::from_secs(1);

fn auth_reason(error: BoxError) -> Option<AuthReason> {
    Error::from(error).auth_reason()
}

#[tokio::test(start_paused = true)]
async fn callers_dropped_by_their_own_timeouts_leave_one_fetch_for_the_next_caller() {
    // A 600 ms token endpoint, callers that give up after 400 ms.
    let (source, fetches) = source(|n| async move {
        sleep(600 * MS).await;
        token(n, None)
    });
    let client = client(&TokenRefreshLayer::new(source), echo());
    let callers: Vec<_> = (0..30)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { timeout(400 * MS, call(&client)).await })
        })
        .collect();
    for caller in callers {
        assert!(caller.await.unwrap().is_err(), "every caller gave up");
    }
    assert_eq!(fetches.count(), 1, "the fetch outlived its callers");
    sleep(300 * MS).await;
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    assert_eq!(
        fetches.count(),
        1,
        "the next caller used the finished fetch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_aborted_mid_fetch_leave_one_fetch_on_a_multi_thread_runtime() {
    let gate = Gate::closed();
    let (source, fetches) = gated_source(&gate, 1, None);
    let client = client(&TokenRefreshLayer::new(source), echo());
    let callers: Vec<_> = (0..30)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { call(&client).await })
        })
        .collect();
    fetches.reach(1).await;
    for caller in &callers {
        caller.abort();
    }
    for caller in callers {
        // Some may have been aborted before their first poll; none got a token.
        assert!(caller.await.unwrap_err().is_cancelled());
    }
    gate.open();
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    assert_eq!(fetches.count(), 1, "one fetch, whoever dropped");
}

#[tokio::test(start_paused = true)]
async fn a_source_that_never_answers_is_asked_once_by_concurrent_callers() {
    let (source, fetches) = source(|_| std::future::pending());
    let client = client(&TokenRefreshLayer::new(source), echo());
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { timeout(S, call(&client)).await })
        })
        .collect();
    for caller in callers {
        assert!(caller.await.unwrap().is_err());
    }
    assert_eq!(fetches.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_leader_polled_once_and_parked_does_not_stall_other_waiters() {
    let (source, fetches) = source(|n| async move {
        sleep(100 * MS).await;
        token(n, None)
    });
    let client = client(&TokenRefreshLayer::new(source), echo());
    let mut leader = pin!(client.clone().oneshot(request()));
    // Polled once: it starts the fetch; then never again.
    assert!(poll_once(leader.as_mut()).await.is_pending());
    let waiter = timeout(S, call(&client)).await;
    assert_eq!(waiter.expect("not stalled").unwrap(), "Bearer token-1");
    assert_eq!(fetches.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parked_leader_does_not_stall_waiters_on_a_multi_thread_runtime() {
    let gate = Gate::closed();
    let (source, fetches) = gated_source(&gate, 1, None);
    let client = client(&TokenRefreshLayer::new(source), echo());
    let mut leader = pin!(client.clone().oneshot(request()));
    assert!(poll_once(leader.as_mut()).await.is_pending());
    let waiters: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { call(&client).await })
        })
        .collect();
    gate.open();
    for waiter in waiters {
        // A bound for the failure case only; on success they finish at once.
        let seen = timeout(5 * S, waiter).await.expect("not stalled");
        assert_eq!(seen.unwrap().unwrap(), "Bearer token-1");
    }
    assert_eq!(fetches.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn inside_the_margin_calls_use_the_valid_token_at_once_while_one_refresh_runs() {
    let (source, fetches) = source(|n| async move {
        sleep(S).await;
        token(n, Some(900 * S))
    });
    let client = client(&TokenRefreshLayer::new(source), echo());
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    // 50 s left: inside the 60 s margin.
    advance(850 * S).await;
    let before = Instant::now();
    for _ in 0..10 {
        assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    }
    assert_eq!(Instant::now(), before, "no call waited for the refresh");
    tokio::task::yield_now().await;
    assert_eq!(fetches.count(), 2, "one background refresh for ten calls");
    sleep(2 * S).await;
    assert_eq!(call(&client).await.unwrap(), "Bearer token-2");
    assert_eq!(fetches.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failing_background_refresh_keeps_the_valid_token_and_retries_with_backoff() {
    // Fetch 1 gives a 900 s token; fetches 2 to 8 fail; from 9 on they succeed.
    let (source, fetches) = source(|n| async move {
        match n {
            2..=8 => Err("token endpoint down".into()),
            _ => token(n, Some(900 * S)),
        }
    });
    let start = Instant::now();
    let client = client(&TokenRefreshLayer::new(source), echo());
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    advance(840 * S).await;
    // A call every 250 ms until the expiry: all served by token-1, refresh failing behind.
    while Instant::now() < start + 900 * S {
        assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
        // Let a refresh the call started begin at the call's instant.
        tokio::task::yield_now().await;
        advance(250 * MS).await;
    }
    let s = |secs| secs * S;
    assert_eq!(
        fetches.since(start),
        [s(0), s(840), s(841), s(843), s(847), s(855), s(871)],
        "retried after 1, 2, 4, 8, 16 s, then 30 s cut to the expiry"
    );
    // Expired: now the call waits for a fetch of its own, and fails with it.
    let error = call(&client).await.unwrap_err();
    assert_eq!(auth_reason(error), Some(AuthReason::SourceFailed));
    assert_eq!(fetches.count(), 8);
    assert_eq!(call(&client).await.unwrap(), "Bearer token-9");
}

#[tokio::test(start_paused = true)]
async fn a_token_shorter_lived_than_the_margin_is_fetched_once_per_half_life() {
    // expires_in: 30 against the default 60 s margin.
    let (source, fetches) = source(|n| async move { token(n, Some(30 * S)) });
    let client = client(&TokenRefreshLayer::new(source), echo());
    for _ in 0..100 {
        call(&client).await.unwrap();
        advance(300 * MS).await;
    }
    // 100 calls over 30 s: the first fetch and one refresh at 15 s.
    assert_eq!(fetches.count(), 2);
}

/// An upstream that, while `refused` is set, answers token-1 with 401 (counted in
/// `refusals`) and echoes the token it got; a request with `x-slow` waits at `gate` first.
fn scripted(
    refused: Arc<AtomicBool>,
    refusals: Arc<AtomicUsize>,
    gate: Gate,
) -> cache_support::Upstream {
    BoxCloneSyncService::new(service_fn(move |request: Request<Body>| {
        let refused = refused.clone();
        let refusals = refusals.clone();
        let gate = gate.passed();
        async move {
            if request.headers().contains_key("x-slow") {
                gate.await;
            }
            let auth = request.headers()["authorization"].clone();
            let mut response = Response::new(());
            if auth == "Bearer token-1" && refused.load(Ordering::SeqCst) {
                *response.status_mut() = StatusCode::UNAUTHORIZED;
                refusals.fetch_add(1, Ordering::SeqCst);
            }
            response.headers_mut().insert("x-seen", auth);
            Ok::<_, BoxError>(response)
        }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_401_for_an_old_token_keeps_the_newer_token_and_fetches_nothing_more() {
    let (source, fetches) = source(|n| async move { token(n, None) });
    let refused = Arc::new(AtomicBool::new(true));
    let gate = Gate::closed();
    let client = client(
        &TokenRefreshLayer::new(source),
        scripted(refused.clone(), Arc::default(), gate.clone()),
    );
    // A: sends token-1 and hears its 401 only once the gate opens.
    let slow = {
        let client = client.clone();
        let mut request = request();
        request.headers_mut().insert("x-slow", "1".parse().unwrap());
        tokio::spawn(async move { client.oneshot(request).await })
    };
    fetches.reach(1).await;
    // B: 401 on token-1, one refresh, replayed with token-2.
    let response = client.clone().oneshot(request()).await.unwrap();
    assert_eq!(seen(&response), "Bearer token-2");
    assert_eq!(fetches.count(), 2);
    // A's late 401 (token-1): replayed with token-2, no fetch.
    gate.open();
    let response = slow.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen(&response), "Bearer token-2");
    assert_eq!(fetches.count(), 2, "the late 401 fetched nothing");
    let response = client.oneshot(request()).await.unwrap();
    assert_eq!(
        seen(&response),
        "Bearer token-2",
        "the newer token was kept"
    );
    assert_eq!(fetches.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_401_for_the_current_token_stops_other_calls_from_sending_it() {
    let (source, fetches) = source(|n| async move {
        sleep(100 * MS).await;
        token(n, None)
    });
    let refused = Arc::new(AtomicBool::new(false));
    let refusals = Arc::new(AtomicUsize::new(0));
    let client = client(
        &TokenRefreshLayer::new(source),
        scripted(refused.clone(), refusals.clone(), Gate::closed()),
    );
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    refused.store(true, Ordering::SeqCst);
    let first = tokio::spawn({
        let client = client.clone();
        async move { call(&client).await }
    });
    // The first call has had its 401 and waits for the refresh; this one comes meanwhile.
    sleep(10 * MS).await;
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.oneshot(request()).await }
    });
    assert_eq!(first.await.unwrap().unwrap(), "Bearer token-2");
    let second = second.await.unwrap().unwrap();
    assert_eq!(seen(&second), "Bearer token-2");
    assert_eq!(
        refusals.load(Ordering::SeqCst),
        1,
        "no call sent token-1 after its 401"
    );
    assert_eq!(fetches.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_while_its_401_refresh_runs_leaves_no_stuck_fetch() {
    let (source, fetches) = source(|n| async move {
        sleep(200 * MS).await;
        token(n, None)
    });
    let refused = Arc::new(AtomicBool::new(false));
    let client = client(
        &TokenRefreshLayer::new(source),
        scripted(refused.clone(), Arc::default(), Gate::closed()),
    );
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    refused.store(true, Ordering::SeqCst);
    // Dropped at the await of its refresh, as the leader of the fetch...
    assert!(timeout(50 * MS, call(&client)).await.is_err());
    // ... and one dropped there while following the same fetch.
    assert!(timeout(50 * MS, call(&client)).await.is_err());
    sleep(200 * MS).await;
    assert_eq!(call(&client).await.unwrap(), "Bearer token-2");
    assert_eq!(fetches.count(), 2, "the refresh finished for the next call");
}

#[test]
fn a_fetch_lost_with_its_runtime_leaves_no_stuck_in_flight_mark() {
    let (source, fetches) = source(|n| async move {
        match n {
            1 => std::future::pending::<Result<_, BoxError>>().await,
            _ => token(n, None),
        }
    });
    let layer = TokenRefreshLayer::new(source);
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    };
    let first = runtime();
    let client = first.block_on(async { client(&layer, echo()) });
    first.block_on(async {
        let mut call = pin!(call(&client));
        assert!(poll_once(call.as_mut()).await.is_pending());
        tokio::task::yield_now().await;
    });
    // The fetch task dies with its runtime, unfinished.
    drop(first);
    let seen = runtime().block_on(async { timeout(S, call(&client)).await });
    assert_eq!(seen.expect("not stuck").unwrap(), "Bearer token-2");
    assert_eq!(fetches.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_inside_the_margin_start_one_background_refresh_on_a_multi_thread_runtime()
{
    // Real time, bounded: a 2 s token is inside its (half-life) margin after 1 s.
    let gate = Gate::closed();
    let (source, fetches) = gated_source(&gate, 2, Some(2 * S));
    let client = client(&TokenRefreshLayer::new(source), echo());
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    sleep(1200 * MS).await;
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { call(&client).await })
        })
        .collect();
    for caller in callers {
        let seen = timeout(5 * S, caller).await.expect("served at once");
        assert_eq!(seen.unwrap().unwrap(), "Bearer token-1");
    }
    timeout(5 * S, fetches.reach(2))
        .await
        .expect("a refresh began");
    assert_eq!(fetches.count(), 2, "one background refresh for 50 calls");
    gate.open();
}

#[tokio::test(start_paused = true)]
async fn refresh_margin_duration_max_does_not_panic() {
    let (source, fetches) = source(|n| async move { token(n, Some(3600 * S)) });
    let layer = TokenRefreshLayer::builder(source)
        .refresh_margin(Duration::MAX)
        .build();
    let client = client(&layer, echo());
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    advance(1000 * S).await;
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    // Past half its life: replaced in the background, the call served at once.
    advance(1000 * S).await;
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    tokio::task::yield_now().await;
    assert_eq!(fetches.count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_token_lifetime_of_u64_max_seconds_does_not_panic() {
    let forever = Duration::from_secs(u64::MAX);
    let (source, fetches) = source(move |n| async move { token(n, Some(forever)) });
    let layer = TokenRefreshLayer::builder(source)
        .refresh_margin(Duration::MAX)
        .build();
    let client = client(&layer, echo());
    for _ in 0..3 {
        assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
        advance(86_400 * S).await;
    }
    assert_eq!(fetches.count(), 1);
}
