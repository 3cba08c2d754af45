//! The state clones of a layer share (gates, quota logs) holds under cancelled callers, many
//! keys and absurd hints (issue 16, items 5 to 7).

mod common;

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use common::{SECOND, first_asks_to_wait, ok, request};
use http::{Request, StatusCode};
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use towline_core::{Deadline, Error, RateLimitReason, RateLimited};
use towline_ratelimit::{DEFAULT_MAX_CLOSE, InMemoryStore, Quota, RateLimitLayer};

#[tokio::test(start_paused = true)]
async fn cancelled_quota_waiters_give_their_slots_back() {
    let service = RateLimitLayer::new()
        .quota(Quota::new(2, SECOND))
        .layer(ok());
    let held: Vec<_> = (0..20)
        .map(|_| tokio::spawn(service.clone().oneshot(request("/a"))))
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for call in &held {
        call.abort();
    }
    for call in held {
        let _ = call.await;
    }
    let start = Instant::now();
    service.oneshot(request("/a")).await.unwrap();
    // Two calls went at 0: the next window opens at 1 s, not after 18 cancelled slots.
    assert_eq!(start.elapsed(), Duration::from_millis(900));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_quota_waiters_give_their_slots_back_on_a_multi_thread_runtime() {
    let window = Duration::from_millis(200);
    let service = RateLimitLayer::new()
        .quota(Quota::new(2, window))
        .layer(ok());
    // 40 callers that give up after 50 ms, from both threads at once.
    let callers: Vec<_> = (0..40)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(Duration::from_millis(50), service.oneshot(request("/a")))
                        .await;
            })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }
    let start = Instant::now();
    service.oneshot(request("/a")).await.unwrap();
    // At most one window, not the 19 windows the cancelled callers had reserved.
    assert!(start.elapsed() <= window, "waited {:?}", start.elapsed());
}

#[tokio::test(start_paused = true)]
async fn one_off_keys_are_forgotten_once_their_windows_pass() {
    let store = Arc::new(InMemoryStore::default());
    let service = RateLimitLayer::new()
        .quota(Quota::new(10, Duration::from_millis(10)))
        .key_by(|parts: &http::request::Parts| Some(parts.uri.path().to_owned()))
        .store(store.clone())
        .layer(ok());
    for i in 0..5_000 {
        service
            .clone()
            .oneshot(request(&format!("/{i}")))
            .await
            .unwrap();
    }
    tokio::time::advance(Duration::from_millis(20)).await;
    // The calls that follow the burst clear it, a few entries each.
    for _ in 0..200 {
        service.clone().oneshot(request("/steady")).await.unwrap();
    }
    assert!(store.len() <= 2, "{} keys kept", store.len());
}

#[tokio::test(start_paused = true)]
async fn gates_of_one_off_keys_are_forgotten_once_they_open() {
    let store = Arc::new(InMemoryStore::default());
    let layer = RateLimitLayer::new()
        .key_by(|parts: &http::request::Parts| Some(parts.uri.path().to_owned()))
        .store(store.clone());
    let service = layer.layer(first_asks_to_wait(StatusCode::TOO_MANY_REQUESTS, "1"));
    service.clone().oneshot(request("/closed")).await.unwrap();
    assert_eq!(store.len(), 1);
    tokio::time::advance(2 * SECOND).await;
    service.clone().oneshot(request("/other")).await.unwrap();
    assert!(store.is_empty(), "{} keys kept", store.len());
    assert!(layer.gates().closed().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_store_keeps_at_most_its_bound_of_keys() {
    let store = Arc::new(InMemoryStore::with_max_keys(100));
    let service = RateLimitLayer::new()
        .quota(Quota::new(10, Duration::from_secs(60)))
        .key_by(|parts: &http::request::Parts| Some(parts.uri.path().to_owned()))
        .store(store.clone())
        .layer(ok());
    // Every window still open: the bound, not expiry, keeps the store small.
    for i in 0..1_000 {
        service
            .clone()
            .oneshot(request(&format!("/{i}")))
            .await
            .unwrap();
    }
    assert_eq!(store.len(), 100);
}

#[tokio::test(start_paused = true)]
async fn one_absurd_hint_closes_a_gate_for_at_most_max_close() {
    for hint in ["99999999999", "Thu, 01 Jan 2099 00:00:00 GMT"] {
        let layer = RateLimitLayer::new();
        let service = layer.layer(first_asks_to_wait(StatusCode::SERVICE_UNAVAILABLE, hint));
        let start = Instant::now();
        service.clone().oneshot(request("/a")).await.unwrap();
        let closed = layer.gates().closed().await.unwrap();
        assert_eq!(closed[0].until(), start + DEFAULT_MAX_CLOSE, "{hint}");
        tokio::time::advance(DEFAULT_MAX_CLOSE).await;
        service.oneshot(request("/b")).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn rate_limited_says_until_when_and_how_long_remains() {
    let service =
        RateLimitLayer::new().layer(first_asks_to_wait(StatusCode::TOO_MANY_REQUESTS, "600"));
    let start = Instant::now();
    service.clone().oneshot(request("/a")).await.unwrap();
    tokio::time::advance(100 * SECOND).await;
    let err = Error::from(service.oneshot(request("/b")).await.unwrap_err());
    let limited = err.find::<RateLimited>().unwrap();
    assert_eq!(limited.until(), start + 600 * SECOND);
    assert_eq!(limited.remaining(), 500 * SECOND);
    assert_eq!(
        limited.to_string(),
        "rate limited: longer than the call may wait; calls may go again in 500s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_of_exactly_max_wait_without_a_deadline_is_waited() {
    let service = RateLimitLayer::new()
        .spread(Duration::ZERO)
        .layer(first_asks_to_wait(StatusCode::TOO_MANY_REQUESTS, "60"));
    service.clone().oneshot(request("/a")).await.unwrap();
    let start = Instant::now();
    service.oneshot(request("/b")).await.unwrap();
    assert_eq!(start.elapsed(), 60 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_without_a_deadline_never_blames_the_deadline() {
    for wait in ["59", "60", "61", "600"] {
        let service = RateLimitLayer::new()
            .max_wait(60 * SECOND)
            .layer(first_asks_to_wait(StatusCode::TOO_MANY_REQUESTS, wait));
        service.clone().oneshot(request("/a")).await.unwrap();
        if let Err(err) = service.oneshot(request("/b")).await {
            let err = Error::from(err);
            let reason = err.find::<RateLimited>().unwrap().reason();
            assert_eq!(reason, RateLimitReason::WaitTooLong, "{wait}: {err}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_gate_ending_at_the_deadline_is_refused_as_past_it() {
    let service =
        RateLimitLayer::new().layer(first_asks_to_wait(StatusCode::TOO_MANY_REQUESTS, "10"));
    service.clone().oneshot(request("/a")).await.unwrap();
    let mut held = request("/b");
    Deadline::after(10 * SECOND).tighten(held.extensions_mut());
    let err = Error::from(service.oneshot(held).await.unwrap_err());
    let reason = err.find::<RateLimited>().unwrap().reason();
    assert_eq!(reason, RateLimitReason::PastDeadline);
}

#[tokio::test(start_paused = true)]
async fn the_gates_handle_lists_closed_gates_and_reopens_one() {
    let layer = RateLimitLayer::new().key_by(|parts: &http::request::Parts| {
        Some(parts.uri.path().trim_start_matches('/').to_owned())
    });
    let service = layer.layer(common::ok());
    let closer = layer.layer(first_asks_to_wait(StatusCode::TOO_MANY_REQUESTS, "300"));
    closer.oneshot(request("/tenant-a")).await.unwrap();
    let gates = layer.gates();
    let closed = gates.closed().await.unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].key(), "tenant-a");
    assert_eq!(closed[0].remaining(), 300 * SECOND);
    assert!(
        !format!("{:?}", closed[0]).contains("tenant-a"),
        "keys may be secrets"
    );
    assert!(service.clone().oneshot(request("/tenant-a")).await.is_err());

    assert!(gates.reopen("tenant-a").await.unwrap());
    assert!(!gates.reopen("tenant-a").await.unwrap(), "already open");
    assert!(gates.closed().await.unwrap().is_empty());
    let start = Instant::now();
    service.oneshot(request("/tenant-a")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
}

/// The events a test's code emitted, as text.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

struct Recorder(Events);

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={value:?}", field.name()));
            }
        }
        let mut text = Text(event.metadata().level().to_string());
        event.record(&mut text);
        (self.0).0.lock().unwrap().push(text.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_gate_closed_for_longer_than_callers_may_wait_logs_a_warning() {
    let events = Events::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    tracing::subscriber::with_default(Recorder(events.clone()), || {
        runtime.block_on(async {
            let layer = RateLimitLayer::new()
                .key_by(|_: &http::request::Parts| Some("secret-api-key".to_owned()));
            for wait in ["30", "600"] {
                let service = layer.layer(first_asks_to_wait(StatusCode::TOO_MANY_REQUESTS, wait));
                let request = Request::get("http://api.example/").body(()).unwrap();
                service.oneshot(request).await.unwrap();
            }
        })
    });
    let events = events.0.lock().unwrap();
    let warnings: Vec<_> = events.iter().filter(|e| e.starts_with("WARN")).collect();
    assert_eq!(warnings.len(), 1, "only the 600 s one: {events:?}");
    assert!(warnings[0].contains("close_ms=600000"), "{}", warnings[0]);
    assert!(
        events.iter().all(|e| !e.contains("secret-api-key")),
        "{events:?}"
    );
}

/// A store whose gate lookups answer at once and whose quota reservations never do (a
/// remote store that stopped answering mid-call, with a long timeout of its own).
struct StalledQuotaStore(InMemoryStore);

impl towline_ratelimit::GateStore for StalledQuotaStore {
    fn closed_for(&self, key: &str) -> towline_ratelimit::StoreFuture<Option<Duration>> {
        self.0.closed_for(key)
    }
    fn close(&self, key: &str, wait: Duration) -> towline_ratelimit::StoreFuture<()> {
        self.0.close(key, wait)
    }
    fn reserve(
        &self,
        _: &str,
        _: Quota,
        _: Duration,
        _: Duration,
    ) -> towline_ratelimit::StoreFuture<towline_ratelimit::Slot> {
        towline_ratelimit::StoreFuture::new(std::future::pending())
    }
    fn release(&self, key: &str, reservation: towline_ratelimit::Reservation) {
        self.0.release(key, reservation)
    }
    fn closed_gates(&self) -> towline_ratelimit::StoreFuture<Vec<(String, Duration)>> {
        self.0.closed_gates()
    }
    fn reopen(&self, key: &str) -> towline_ratelimit::StoreFuture<bool> {
        self.0.reopen(key)
    }
}

/// Sends one call with a 2 s deadline (and no deadline layer: the rate-limit layer alone must
/// keep it) through `layer`; returns how long it took and its error.
async fn call_with_a_deadline(layer: RateLimitLayer) -> (Duration, Error) {
    let sent = Arc::new(Mutex::new(0u32));
    let upstream = tower::service_fn({
        let sent = sent.clone();
        move |_: Request<()>| {
            *sent.lock().unwrap() += 1;
            async { Ok::<_, tower::BoxError>(http::Response::new(())) }
        }
    });
    let mut request = request("/a");
    Deadline::after(2 * SECOND).tighten(request.extensions_mut());
    let start = Instant::now();
    let err = layer.layer(upstream).oneshot(request).await.unwrap_err();
    assert_eq!(*sent.lock().unwrap(), 0, "nothing was sent");
    (start.elapsed(), Error::from(err))
}

#[tokio::test(start_paused = true)]
async fn a_gate_lookup_that_never_answers_ends_at_the_calls_deadline() {
    let store = common::SlowStore::new(Duration::from_secs(3600));
    let (took, err) = call_with_a_deadline(RateLimitLayer::new().store(store)).await;
    assert_eq!(took, 2 * SECOND);
    assert_eq!(
        err.kind(),
        towline_core::ErrorKind::DeadlineExceeded,
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_quota_reservation_that_never_answers_ends_at_the_calls_deadline() {
    let store = StalledQuotaStore(InMemoryStore::default());
    let layer = RateLimitLayer::new()
        .store(store)
        .quota(Quota::new(10, SECOND));
    let (took, err) = call_with_a_deadline(layer).await;
    assert_eq!(took, 2 * SECOND);
    assert_eq!(
        err.kind(),
        towline_core::ErrorKind::DeadlineExceeded,
        "{err}"
    );
}
