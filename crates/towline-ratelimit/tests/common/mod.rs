//! Upstreams and stores the rate-limit tests share.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tower::{BoxError, Service, service_fn};
use towline_ratelimit::{GateStore, InMemoryStore, Quota, Reservation, Slot, StoreFuture};

pub const SECOND: Duration = Duration::from_secs(1);

pub fn request(path: &str) -> Request<()> {
    Request::get(format!("http://api.example{path}"))
        .body(())
        .unwrap()
}

/// Answers 200 to everything.
pub fn ok() -> impl Service<Request<()>, Response = Response<()>, Error = BoxError, Future: Send>
+ Clone
+ Send
+ 'static {
    service_fn(|_req: Request<()>| async { Ok::<_, BoxError>(Response::new(())) })
}

/// Answers the first call with `status` and `retry-after: <retry_after>`, then 200.
pub fn first_asks_to_wait(
    status: StatusCode,
    retry_after: &'static str,
) -> impl Service<Request<()>, Response = Response<()>, Error = BoxError, Future: Send>
+ Clone
+ Send
+ 'static {
    let calls = Arc::new(AtomicUsize::new(0));
    service_fn(move |_req: Request<()>| {
        let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            let mut response = Response::new(());
            if first {
                *response.status_mut() = status;
                response
                    .headers_mut()
                    .insert("retry-after", retry_after.parse().unwrap());
            }
            Ok::<_, BoxError>(response)
        }
    })
}

/// A stand-in for a remote store: every answer takes `delay` (a round trip), and a close is
/// sent from a task of its own, as the trait asks.
#[derive(Clone)]
pub struct SlowStore {
    pub inner: Arc<InMemoryStore>,
    pub delay: Duration,
}

impl SlowStore {
    pub fn new(delay: Duration) -> Self {
        SlowStore {
            inner: Arc::new(InMemoryStore::default()),
            delay,
        }
    }

    fn later<T: Send + 'static>(
        &self,
        answer: impl FnOnce(&InMemoryStore) -> StoreFuture<T> + Send + 'static,
    ) -> StoreFuture<T> {
        let inner = self.inner.clone();
        let delay = self.delay;
        // The lookup happens after the round trip, in the same poll as the answer: a future
        // dropped before then reserved nothing.
        StoreFuture::new(async move {
            tokio::time::sleep(delay).await;
            answer(&inner).await
        })
    }
}

impl GateStore for SlowStore {
    fn closed_for(&self, key: &str) -> StoreFuture<Option<Duration>> {
        let key = key.to_owned();
        self.later(move |s| s.closed_for(&key))
    }

    fn close(&self, key: &str, wait: Duration) -> StoreFuture<()> {
        let key = key.to_owned();
        let task = tokio::spawn(self.later(move |s| s.close(&key, wait)));
        StoreFuture::new(async move { task.await? })
    }

    fn reserve(
        &self,
        key: &str,
        quota: Quota,
        not_before: Duration,
        latest: Duration,
    ) -> StoreFuture<Slot> {
        let key = key.to_owned();
        // The round trip comes out of the wait: the store's answer is from its own now.
        self.later(move |s| s.reserve(&key, quota, not_before, latest))
    }

    fn release(&self, key: &str, reservation: Reservation) {
        self.inner.release(key, reservation)
    }

    fn closed_gates(&self) -> StoreFuture<Vec<(String, Duration)>> {
        self.later(|s| s.closed_gates())
    }

    fn reopen(&self, key: &str) -> StoreFuture<bool> {
        let key = key.to_owned();
        self.later(move |s| s.reopen(&key))
    }
}
