//! The hedge layer against a hand-written inner service, under a paused clock.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;
use tower::{BoxError, Layer, Service, ServiceExt};
use towline_core::{
    Attempts, CallContext, CircuitOpen, Deadline, ReplayBody, Replayable, Resend, Retried,
};
use towline_retry::{HedgeLayer, Outcome, RetryBudget, RetryLayer, RetryPolicy, Verdict};

const DELAY: Duration = Duration::from_millis(100);

/// What the n-th call (from 0) does: answer (or fail) after a delay.
#[derive(Clone, Copy)]
enum Step {
    Answer(u64),
    Fail(u64),
    /// Refused at once, unsent, as an open circuit refuses.
    Refuse,
    /// Refused after a wait (a gate's), unsent.
    RefuseAfter(u64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Seen {
    attempt: u32,
    resend: Resend,
}

/// An inner service whose calls follow `script`; its responses carry the call's number, and
/// a call dropped before it finished is counted in `dropped`.
#[derive(Clone)]
struct Scripted {
    script: Arc<dyn Fn(usize) -> Step + Send + Sync>,
    seen: Arc<Mutex<Vec<Seen>>>,
    dropped: Arc<AtomicUsize>,
}

impl Scripted {
    fn new(script: impl Fn(usize) -> Step + Send + Sync + 'static) -> Self {
        Scripted {
            script: Arc::new(script),
            seen: Arc::default(),
            dropped: Arc::default(),
        }
    }

    fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn dropped(&self) -> usize {
        self.dropped.load(SeqCst)
    }
}

struct Guard {
    done: bool,
    dropped: Arc<AtomicUsize>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.done {
            self.dropped.fetch_add(1, SeqCst);
        }
    }
}

impl<B: Send + 'static> Service<Request<B>> for Scripted {
    type Response = Response<usize>;
    type Error = BoxError;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<usize>, BoxError>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let context = CallContext::from_extensions(request.extensions()).copied();
        let mut seen = self.seen.lock().unwrap();
        let n = seen.len();
        seen.push(Seen {
            attempt: context.map_or(1, |c| c.attempt()),
            resend: context.map_or(Resend::No, |c| c.resend()),
        });
        let step = (self.script)(n);
        let guard = Guard {
            done: false,
            dropped: self.dropped.clone(),
        };
        Box::pin(async move {
            // The whole guard moves in, not only the field written.
            let mut guard = guard;
            let (ms, ok) = match step {
                Step::Answer(ms) => (ms, true),
                Step::Fail(ms) => (ms, false),
                Step::Refuse | Step::RefuseAfter(_) => {
                    if let Step::RefuseAfter(ms) = step {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    guard.done = true;
                    let until = Instant::now() + Duration::from_secs(5);
                    return Err(CircuitOpen::new("api.test", until).into());
                }
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            guard.done = true;
            if ok {
                let mut response = Response::new(n);
                response.headers_mut().insert("x-call", n.into());
                Ok(response)
            } else {
                Err(format!("call {n} failed").into())
            }
        })
    }
}

/// The first call takes `first` ms, the others `rest`.
fn slow_first(first: u64, rest: u64) -> Scripted {
    Scripted::new(move |n| Step::Answer(if n == 0 { first } else { rest }))
}

fn get() -> Request<Full<Bytes>> {
    Request::get("http://api.test/items")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn hedges(response: &Response<usize>) -> usize {
    Attempts::from_extensions(response.extensions()).map_or(0, Attempts::hedges)
}

#[tokio::test(start_paused = true)]
async fn fires_after_the_delay_and_not_before() {
    let inner = slow_first(1000, 10);
    let service = HedgeLayer::after(DELAY).layer(inner.clone());
    let started = Instant::now();
    let call = tokio::spawn(service.oneshot(get()));
    tokio::time::sleep(DELAY - Duration::from_millis(1)).await;
    assert_eq!(inner.calls(), 1, "no hedge before the delay");
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(inner.calls(), 2, "the hedge went out at the delay");
    let response = call.await.unwrap().unwrap();
    assert_eq!(*response.body(), 1);
    assert_eq!(started.elapsed(), DELAY + Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn the_hedge_wins_and_the_first_attempt_is_dropped() {
    let inner = slow_first(1000, 10);
    let response = HedgeLayer::after(DELAY)
        .layer(inner.clone())
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(*response.body(), 1);
    assert_eq!(inner.dropped(), 1, "the slow first attempt was dropped");
    let attempts = Attempts::from_extensions(response.extensions()).unwrap();
    assert_eq!(
        (attempts.count(), attempts.retries(), attempts.hedges()),
        (2, 0, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn the_first_attempt_wins_and_the_hedge_is_dropped() {
    let inner = slow_first(150, 100);
    let started = Instant::now();
    let response = HedgeLayer::after(DELAY)
        .layer(inner.clone())
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(*response.body(), 0);
    assert_eq!(started.elapsed(), Duration::from_millis(150));
    assert_eq!((inner.calls(), inner.dropped()), (2, 1));
    assert_eq!(hedges(&response), 1, "the hedge was sent, and shows");
}

#[tokio::test(start_paused = true)]
async fn the_loser_is_dropped_before_the_future_is() {
    // Each winner in turn; the hedge's own future is polled (no `Oneshot` around it, which
    // would drop it on completion and hide a loser kept alive).
    for (first, rest, winner) in [(1000, 10, 1), (150, 100, 0)] {
        let inner = slow_first(first, rest);
        let mut service = HedgeLayer::after(DELAY).layer(inner.clone());
        let ready = ServiceExt::<Request<Full<Bytes>>>::ready(&mut service)
            .await
            .unwrap();
        let mut call = Box::pin(ready.call(get()));
        let response = (&mut call).await.unwrap();
        assert_eq!(*response.body(), winner);
        assert_eq!(
            inner.dropped(),
            1,
            "dropped on completion, with the future still alive"
        );
        drop(call);
    }
}

#[tokio::test(start_paused = true)]
async fn a_fast_answer_sends_no_hedge_and_records_nothing() {
    let inner = slow_first(10, 10);
    let response = HedgeLayer::after(DELAY)
        .layer(inner.clone())
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(inner.calls(), 1);
    assert!(Attempts::from_extensions(response.extensions()).is_none());
}

#[tokio::test(start_paused = true)]
async fn an_error_waits_for_the_other_attempt() {
    // The first fails while the hedge is in flight: the hedge's answer wins.
    let inner = Scripted::new(|n| {
        if n == 0 {
            Step::Fail(150)
        } else {
            Step::Answer(100)
        }
    });
    let response = HedgeLayer::after(DELAY)
        .layer(inner)
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(*response.body(), 1);

    // The hedge fails while the first is in flight: the first's answer wins.
    let inner = Scripted::new(|n| {
        if n == 0 {
            Step::Answer(300)
        } else {
            Step::Fail(10)
        }
    });
    let response = HedgeLayer::after(DELAY)
        .layer(inner)
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(*response.body(), 0);
    assert_eq!(hedges(&response), 1);

    // Both fail: the first error comes back, once the other has failed too.
    let inner = Scripted::new(|n| {
        if n == 0 {
            Step::Fail(300)
        } else {
            Step::Fail(10)
        }
    });
    let started = Instant::now();
    let error = HedgeLayer::after(DELAY)
        .layer(inner)
        .oneshot(get())
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    // Two requests went: the error says so, as a record that counts the hedge.
    let retried = error
        .downcast_ref::<Retried>()
        .expect("a record of the hedge");
    assert_eq!(retried.last().to_string(), "call 1 failed");
    let attempts = retried.attempts();
    assert_eq!(
        (attempts.count(), attempts.retries(), attempts.hedges()),
        (2, 0, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_hedge_refused_below_is_not_counted_and_the_first_attempt_goes_on() {
    // The hedge is refused at once, unsent (an open circuit below): not a hedge. The first
    // attempt's answer is the call's.
    let inner = Scripted::new(|n| {
        if n == 0 {
            Step::Answer(300)
        } else {
            Step::Refuse
        }
    });
    let response = HedgeLayer::after(DELAY)
        .layer(inner.clone())
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(*response.body(), 0);
    assert_eq!(hedges(&response), 0, "a refused copy is no hedge");
    // The same when the first attempt then fails: its error, as it is.
    let inner = Scripted::new(|n| {
        if n == 0 {
            Step::Fail(300)
        } else {
            Step::Refuse
        }
    });
    let error = HedgeLayer::after(DELAY)
        .layer(inner)
        .oneshot(get())
        .await
        .unwrap_err();
    assert!(error.downcast_ref::<Retried>().is_none(), "{error}");
    assert_eq!(error.to_string(), "call 0 failed");
}

#[tokio::test(start_paused = true)]
async fn when_both_fail_the_servers_answer_is_reported_over_a_refusal() {
    // The first attempt is refused (after the hedge went), the hedge reaches the server and
    // fails: the server's answer is the call's error.
    let inner = Scripted::new(|n| {
        if n == 0 {
            Step::RefuseAfter(150)
        } else {
            Step::Fail(100)
        }
    });
    let error = HedgeLayer::after(DELAY)
        .layer(inner)
        .oneshot(get())
        .await
        .unwrap_err();
    let retried = error
        .downcast_ref::<Retried>()
        .expect("a record of the hedge");
    assert_eq!(retried.last().to_string(), "call 1 failed");
    assert_eq!(retried.attempts().hedges(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_a_hedged_answer_is_numbered_after_the_hedge() {
    // Attempt 1 is slow; its hedge (attempt 2) answers first, with an answer the classifier
    // retries; the retry is attempt 3, not a second attempt 2.
    let inner = Scripted::new(|n| Step::Answer(if n == 0 { 300 } else { 10 }));
    let policy = RetryPolicy::new()
        .classifier(|outcome: Outcome<'_>| match outcome {
            Outcome::Response { headers, .. } if headers["x-call"] == "1" => Verdict::retry(),
            _ => Verdict::Done,
        })
        .seed(1);
    let response = RetryLayer::with_policy(policy)
        .layer(HedgeLayer::after(DELAY).layer(inner.clone()))
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(*response.body(), 2);
    let seen: Vec<u32> = inner
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.attempt)
        .collect();
    assert_eq!(seen, [1, 2, 3]);
    let attempts = Attempts::from_extensions(response.extensions()).unwrap();
    assert_eq!(
        (attempts.count(), attempts.retries(), attempts.hedges()),
        (3, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn under_a_retry_layer_a_failed_hedged_call_is_classified_and_recorded() {
    // Attempt 1 and its hedge fail; the retry (attempt 3) answers.
    let inner = Scripted::new(|n| match n {
        0 => Step::Fail(300),
        1 => Step::Fail(10),
        _ => Step::Answer(10),
    });
    // The classifier sees the attempt's own error, not the hedge layer's record around it.
    let policy = RetryPolicy::new()
        .classifier(|outcome: Outcome<'_>| match outcome {
            Outcome::Error(error) if error.to_string().starts_with("call ") => Verdict::retry(),
            _ => Verdict::Done,
        })
        .seed(1);
    let response = RetryLayer::with_policy(policy)
        .layer(HedgeLayer::after(DELAY).layer(inner))
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(*response.body(), 2);
    let attempts = Attempts::from_extensions(response.extensions()).unwrap();
    assert_eq!(
        (attempts.count(), attempts.retries(), attempts.hedges()),
        (3, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_before_the_delay_ends_the_call_unhedged() {
    let inner = Scripted::new(|_| Step::Fail(10));
    let error = HedgeLayer::after(DELAY)
        .layer(inner.clone())
        .oneshot(get())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "call 0 failed");
    assert_eq!(inner.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_hedge_for_a_post_without_an_idempotency_key() {
    let post = |key: Option<&str>| {
        let mut builder = Request::post("http://api.test/orders");
        if let Some(key) = key {
            builder = builder.header("idempotency-key", key);
        }
        builder.body(Full::new(Bytes::from_static(b"{}"))).unwrap()
    };
    let inner = slow_first(1000, 10);
    let response = HedgeLayer::after(DELAY)
        .layer(inner.clone())
        .oneshot(post(None))
        .await
        .unwrap();
    assert_eq!((*response.body(), inner.calls()), (0, 1));

    let inner = slow_first(1000, 10);
    let response = HedgeLayer::after(DELAY)
        .layer(inner.clone())
        .oneshot(post(Some("k-1")))
        .await
        .unwrap();
    assert_eq!(
        (*response.body(), inner.calls()),
        (1, 2),
        "a keyed POST is hedged"
    );

    let inner = slow_first(1000, 10);
    let mut patch = post(None);
    *patch.method_mut() = Method::PATCH;
    HedgeLayer::after(DELAY)
        .layer(inner.clone())
        .oneshot(patch)
        .await
        .unwrap();
    assert_eq!(inner.calls(), 1);
}

/// A body that can never be sent again.
struct Once;

impl Replayable for Once {
    fn replay(&self) -> Option<Self> {
        None
    }
}

#[tokio::test(start_paused = true)]
async fn no_hedge_for_a_body_that_cannot_be_sent_again() {
    let inner = slow_first(1000, 10);
    HedgeLayer::after(DELAY)
        .layer(inner.clone())
        .oneshot(Request::new(Once))
        .await
        .unwrap();
    assert_eq!(inner.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn no_hedge_once_a_replay_body_went_past_its_cap() {
    // The first attempt reads its whole body (past the cap) before stalling.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let inner = tower::service_fn(move |request: Request<ReplayBody<Full<Bytes>>>| {
        counted.fetch_add(1, SeqCst);
        async move {
            request.into_body().collect().await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, BoxError>(Response::new(()))
        }
    });
    let body = ReplayBody::new(Full::new(Bytes::from(vec![7u8; 64])), 16);
    let request = Request::put("http://api.test/blob").body(body).unwrap();
    HedgeLayer::after(DELAY)
        .layer(inner)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(calls.load(SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn no_hedge_when_the_budget_is_empty() {
    let empty = RetryBudget::new(Duration::from_secs(10), 0, 0.0).unwrap();
    let inner = slow_first(1000, 10);
    let started = Instant::now();
    HedgeLayer::after(DELAY)
        .own_budget(empty)
        .layer(inner.clone())
        .oneshot(get())
        .await
        .unwrap();
    assert_eq!(inner.calls(), 1);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_hedge_spends_from_the_budget_it_shares() {
    // One retry a second, over one second: one hedge, then the clone the test holds is empty.
    let budget = RetryBudget::new(Duration::from_secs(1), 1, 0.0).unwrap();
    let layer = HedgeLayer::after(DELAY).budget(budget.clone());
    let inner = Scripted::new(|n| Step::Answer(if n == 0 || n == 2 { 1000 } else { 10 }));
    let response = layer.layer(inner.clone()).oneshot(get()).await.unwrap();
    assert_eq!(hedges(&response), 1);
    assert!(!budget.withdraw(), "the hedge spent the shared budget");
    let response = layer.layer(inner.clone()).oneshot(get()).await.unwrap();
    assert_eq!(
        (*response.body(), inner.calls()),
        (2, 3),
        "no budget, no hedge"
    );
}

#[tokio::test(start_paused = true)]
async fn no_hedge_when_the_deadline_leaves_less_than_the_delay() {
    let inner = slow_first(1000, 10);
    let mut request = get();
    Deadline::after(DELAY).tighten(request.extensions_mut());
    HedgeLayer::after(DELAY)
        .layer(inner.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(inner.calls(), 1);

    let inner = slow_first(1000, 10);
    let mut request = get();
    Deadline::after(DELAY * 2).tighten(request.extensions_mut());
    HedgeLayer::after(DELAY)
        .layer(inner.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(
        inner.calls(),
        2,
        "a deadline past the delay allows the hedge"
    );
}

#[tokio::test(start_paused = true)]
async fn the_hedged_copy_is_the_next_attempt_with_the_same_promise() {
    let inner = slow_first(1000, 10);
    let mut request = get();
    let context = CallContext::of_mut(request.extensions_mut());
    context.set_attempt(3);
    context.set_resend(Resend::OnRefresh);
    HedgeLayer::after(DELAY)
        .layer(inner.clone())
        .oneshot(request)
        .await
        .unwrap();
    let seen = inner.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            Seen {
                attempt: 3,
                resend: Resend::OnRefresh
            },
            Seen {
                attempt: 4,
                resend: Resend::OnRefresh
            },
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_percentile_mode_hedges_only_after_enough_samples() {
    let layer = HedgeLayer::latency_percentile(50.0)
        .unwrap()
        .window(Duration::from_secs(1))
        .unwrap()
        .min_samples(10);
    // Calls answer in 10 ms, but those given a `slow` path stall for a second the first time.
    let slow = Arc::new(Mutex::new(false));
    let stall = slow.clone();
    let inner = Scripted::new(move |_| {
        let mut stall = stall.lock().unwrap();
        Step::Answer(if std::mem::take(&mut *stall) {
            1000
        } else {
            10
        })
    });
    let service = layer.layer(inner.clone());
    for _ in 0..9 {
        service.clone().oneshot(get()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1) - Duration::from_millis(90)).await;
    // A full window of 9 samples: too few.
    *slow.lock().unwrap() = true;
    let before = inner.calls();
    service.clone().oneshot(get()).await.unwrap();
    assert_eq!(inner.calls() - before, 1, "not hedged on 9 samples");

    // Ten more in this window (the slow one counts too), then the next window hedges at p50.
    let window_started = Instant::now();
    for _ in 0..10 {
        service.clone().oneshot(get()).await.unwrap();
    }
    tokio::time::sleep_until(window_started + Duration::from_secs(1)).await;
    *slow.lock().unwrap() = true;
    let before = inner.calls();
    let started = Instant::now();
    let response = service.clone().oneshot(get()).await.unwrap();
    assert_eq!(inner.calls() - before, 2, "hedged once ten samples were in");
    assert_eq!(hedges(&response), 1);
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(20)..Duration::from_millis(22)).contains(&took),
        "p50 (10 ms) then a 10 ms hedge: {took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn dropping_the_call_drops_both_attempts() {
    let inner = slow_first(1000, 1000);
    let mut call = Box::pin(HedgeLayer::after(DELAY).layer(inner.clone()).oneshot(get()));
    // Before the hedge: one attempt in flight, dropped with the call.
    assert!(tokio::time::timeout(DELAY / 2, &mut call).await.is_err());
    drop(call);
    assert_eq!((inner.calls(), inner.dropped()), (1, 1));

    let inner = slow_first(1000, 1000);
    let mut call = Box::pin(HedgeLayer::after(DELAY).layer(inner.clone()).oneshot(get()));
    assert!(tokio::time::timeout(DELAY * 2, &mut call).await.is_err());
    assert_eq!(inner.calls(), 2);
    drop(call);
    assert_eq!(inner.dropped(), 2, "both attempts dropped with the call");
}

#[tokio::test(start_paused = true)]
async fn under_a_retry_layer_the_record_keeps_the_hedge() {
    let budget = RetryBudget::default();
    // Attempt 1 fails at once, attempt 2 stalls, its hedge (attempt 3) answers.
    let inner = Scripted::new(|n| match n {
        0 => Step::Fail(1),
        1 => Step::Answer(1000),
        _ => Step::Answer(10),
    });
    let policy = RetryPolicy::new()
        .budget(budget.clone())
        .classifier(|outcome: Outcome<'_>| match outcome {
            Outcome::Error(_) => Verdict::retry(),
            _ => Verdict::Done,
        })
        .seed(1);
    let service = RetryLayer::with_policy(policy)
        .layer(HedgeLayer::after(DELAY).budget(budget).layer(inner.clone()));
    let response = service.oneshot(get()).await.unwrap();
    assert_eq!(*response.body(), 2);
    let attempts = Attempts::from_extensions(response.extensions()).unwrap();
    assert_eq!(
        (attempts.count(), attempts.retries(), attempts.hedges()),
        (3, 1, 1)
    );
    let seen: Vec<u32> = inner
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.attempt)
        .collect();
    assert_eq!(seen, [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_budget() {
    // 40 calls deposit; at 10 % and no floor, at most 4 of their hedges are paid for.
    let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.1).unwrap();
    let inner = Scripted::new(|_| Step::Answer(200));
    let layer = HedgeLayer::after(Duration::from_millis(20)).own_budget(budget);
    let calls: Vec<_> = (0..40)
        .map(|_| tokio::spawn(layer.layer(inner.clone()).oneshot(get())))
        .collect();
    let mut hedged = 0;
    for call in calls {
        hedged += hedges(&call.await.unwrap().unwrap());
    }
    assert!(hedged <= 4, "{hedged} hedges");
    assert!(hedged >= 1, "some hedges went out");
    assert_eq!(inner.calls(), 40 + hedged);
}
