//! A rate-limit future dropped at each of its await points leaves the shared state fine, on
//! the in-memory store and on a store with round trips.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{SECOND, SlowStore, first_asks_to_wait, ok, request};
use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tower::{BoxError, Layer, Service, ServiceExt};
use towline_core::{Error, RateLimited};
use towline_ratelimit::{GateStore, Quota, RateLimitLayer};

/// Polls `future` once, without a runtime's waker.
fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// A call that takes a quota slot at once, then one that must wait for a window: the call
/// that waits is dropped, and the next one gets its slot.
async fn slot_comes_back(layer: RateLimitLayer, setup_wait: Duration) {
    let mut service = layer.quota(Quota::new(1, SECOND)).layer(ok());
    service.ready().await.unwrap();
    service.call(request("/a")).await.unwrap();
    service.ready().await.unwrap();
    let mut waiting = Box::pin(service.call(request("/a")));
    tokio::time::sleep(setup_wait).await;
    assert!(poll_once(waiting.as_mut()).is_pending());
    drop(waiting);
    let start = Instant::now();
    service.oneshot(request("/a")).await.unwrap();
    // The first call's window ends at 1 s, and the dropped call's slot (at 1 s) is free
    // again: this call takes it (plus a store's round trips), not the one after (at 2 s).
    let waited = start.elapsed();
    assert!(
        waited <= SECOND + Duration::from_millis(50),
        "waited {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_while_waiting_for_its_slot_gives_it_back() {
    slot_comes_back(RateLimitLayer::new(), Duration::ZERO).await;
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_while_a_store_looks_up_its_slot_takes_none() {
    let store = SlowStore::new(Duration::from_millis(10));
    // Dropped in the middle of the store's round trip for the slot.
    slot_comes_back(
        RateLimitLayer::new().store(store.clone()),
        Duration::from_millis(5),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_while_held_at_a_gate_leaves_it_closed_for_others() {
    let layer = RateLimitLayer::new().spread(Duration::ZERO);
    let service = layer.layer(first_asks_to_wait(StatusCode::TOO_MANY_REQUESTS, "5"));
    service.clone().oneshot(request("/a")).await.unwrap();
    let mut held = Box::pin(service.clone().oneshot(request("/b")));
    assert!(poll_once(held.as_mut()).is_pending());
    drop(held);
    assert_eq!(layer.gates().closed().await.unwrap().len(), 1);
    let start = Instant::now();
    service.oneshot(request("/c")).await.unwrap();
    assert_eq!(start.elapsed(), 5 * SECOND);
}

/// Ready only once `open` is set; counts the calls it is given.
#[derive(Clone)]
struct Gated {
    open: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

impl Service<Request<()>> for Gated {
    type Response = Response<()>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Response<()>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.open.load(Ordering::SeqCst) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn call(&mut self, _req: Request<()>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Response::new(())))
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_while_its_service_is_not_ready_gives_its_slot_back() {
    let inner = Gated {
        open: Arc::new(AtomicBool::new(true)),
        calls: Arc::new(AtomicUsize::new(0)),
    };
    let mut service = RateLimitLayer::new()
        .quota(Quota::new(1, SECOND))
        .layer(inner.clone());
    service.ready().await.unwrap();
    service.call(request("/a")).await.unwrap();
    service.ready().await.unwrap();
    let mut waiting = Box::pin(service.call(request("/a")));
    inner.open.store(false, Ordering::SeqCst);
    tokio::time::advance(SECOND).await;
    // Its slot has come; the clone it waits with is not ready.
    assert!(poll_once(waiting.as_mut()).is_pending());
    drop(waiting);
    assert_eq!(inner.calls.load(Ordering::SeqCst), 1, "never sent");
    inner.open.store(true, Ordering::SeqCst);
    let start = Instant::now();
    service.oneshot(request("/a")).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the dropped call's slot is free"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_in_flight_keeps_its_slot() {
    let never = tower::service_fn(|_req: Request<()>| {
        std::future::pending::<Result<Response<()>, BoxError>>()
    });
    let layer = RateLimitLayer::new().quota(Quota::new(1, SECOND));
    let mut in_flight = Box::pin(layer.layer(never).oneshot(request("/a")));
    assert!(poll_once(in_flight.as_mut()).is_pending());
    drop(in_flight);
    // It was sent: its slot counts, so the next call waits for the window.
    let start = Instant::now();
    layer.layer(ok()).oneshot(request("/a")).await.unwrap();
    assert_eq!(start.elapsed(), SECOND);
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_while_a_store_closes_its_gate_still_closes_it() {
    let store = SlowStore::new(Duration::from_millis(10));
    let layer = RateLimitLayer::new().store(store.clone());
    let service = layer.layer(first_asks_to_wait(StatusCode::TOO_MANY_REQUESTS, "30"));
    let mut closing = Box::pin(service.oneshot(request("/a")));
    assert!(
        poll_once(closing.as_mut()).is_pending(),
        "looking the gate up"
    );
    // Past the lookup, the response is in, the close is under way.
    tokio::time::sleep(Duration::from_millis(15)).await;
    assert!(poll_once(closing.as_mut()).is_pending());
    drop(closing);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        store
            .inner
            .closed_for("api.example")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_while_a_store_looks_up_its_gate_leaves_no_trace() {
    let store = SlowStore::new(Duration::from_millis(10));
    let service = RateLimitLayer::new().store(store.clone()).layer(ok());
    let mut looking = Box::pin(service.clone().oneshot(request("/a")));
    assert!(poll_once(looking.as_mut()).is_pending());
    drop(looking);
    service.oneshot(request("/a")).await.unwrap();
    assert!(store.inner.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_store_with_round_trips_holds_gates_and_quotas_too() {
    let store = SlowStore::new(Duration::from_millis(1));
    let layer = RateLimitLayer::new()
        .store(store)
        .spread(Duration::ZERO)
        .quota(Quota::new(2, SECOND));
    let service = layer.layer(first_asks_to_wait(StatusCode::TOO_MANY_REQUESTS, "5"));
    service.clone().oneshot(request("/a")).await.unwrap();
    let start = Instant::now();
    let calls: Vec<_> = (0..4)
        .map(|_| tokio::spawn(service.clone().oneshot(request("/a"))))
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    // The gate's 5 s (counted from the store's answer), then two calls a window.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= 6 * SECOND && elapsed < 6 * SECOND + Duration::from_millis(10),
        "{elapsed:?}"
    );
    let err = Error::from(
        layer
            .max_wait(Duration::ZERO)
            .layer(ok())
            .oneshot(request("/a"))
            .await
            .unwrap_err(),
    );
    assert!(err.find::<RateLimited>().is_some());
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "polled after completion")]
async fn a_response_future_polled_after_completion_panics() {
    let mut service = RateLimitLayer::new().layer(ok());
    let mut future = Box::pin(service.call(request("/a")));
    future.as_mut().await.unwrap();
    let _ = poll_once(future.as_mut());
}

/// Answers 200 and notes when each call arrived.
fn logging(
    log: Arc<std::sync::Mutex<Vec<Instant>>>,
) -> impl Service<Request<()>, Response = Response<()>, Error = BoxError, Future: Send> + Clone + Send
{
    tower::service_fn(move |_req: Request<()>| {
        log.lock().unwrap().push(Instant::now());
        std::future::ready(Ok::<_, BoxError>(Response::new(())))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_cancelled_at_random_never_exceed_the_quota_on_a_multi_thread_runtime() {
    let window = Duration::from_millis(100);
    let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
    let upstream = logging(sent.clone());
    let service = RateLimitLayer::new()
        .quota(Quota::new(5, window))
        .layer(upstream);
    let callers: Vec<_> = (0..60)
        .map(|i| {
            let service = service.clone();
            tokio::spawn(async move {
                let patience = Duration::from_millis(fastrand::u64(0..400));
                tokio::time::sleep(Duration::from_millis(i % 7 * 10)).await;
                let _ = tokio::time::timeout(patience, service.oneshot(request("/a"))).await;
            })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }
    let sent = sent.lock().unwrap().clone();
    for at in &sent {
        // Slack for real time: the timer's millisecond and a busy thread can send a call a
        // little after its slot, closer to the next ones.
        let in_window = sent
            .iter()
            .filter(|s| **s <= *at && **s + window > *at + Duration::from_millis(10))
            .count();
        assert!(in_window <= 5, "{in_window} calls in one window");
    }
    // The cancelled callers gave their slots back: a new call waits one window at most.
    let start = Instant::now();
    service.oneshot(request("/a")).await.unwrap();
    assert!(
        start.elapsed() <= window + Duration::from_millis(5),
        "waited {:?}",
        start.elapsed()
    );
}
