//! The bulkhead: the limit per key, the bounded queue, the wait bounds, and the keys.

mod common;

use std::time::Duration;

use common::{SECOND, Upstream, bounded, poll_once, request};
use tokio::time::Instant;
use tower::{BoxError, Layer, ServiceExt};
use towline_breaker::BulkheadLayer;
use towline_core::{BulkheadFull, Deadline, Error, ErrorKind};

const HOST: &str = "api.example";

fn full(error: BoxError) -> BulkheadFull {
    let error = Error::from(error);
    assert_eq!(error.kind(), ErrorKind::BulkheadFull);
    error
        .find::<BulkheadFull>()
        .expect("a BulkheadFull")
        .clone()
}

#[tokio::test(start_paused = true)]
async fn the_limit_is_enforced_exactly_and_the_next_call_waits_for_a_place() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(2).queue(1);
        let service = layer.layer(upstream.service());
        let mut first = Box::pin(service.clone().oneshot(request(HOST)));
        let mut second = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(first.as_mut()).is_pending());
        assert!(poll_once(second.as_mut()).is_pending());
        assert_eq!((upstream.calls(), layer.in_flight(HOST)), (2, 2));

        // The third waits: not sent.
        let mut third = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(third.as_mut()).is_pending());
        assert_eq!(upstream.calls(), 2);
        assert_eq!((layer.in_flight(HOST), layer.waiting(HOST)), (2, 1));

        // One answer frees one place: the third goes.
        upstream.release(1);
        assert!(poll_once(first.as_mut()).is_ready());
        // The freed place went straight to the waiter (no new call can overtake it).
        assert_eq!((layer.in_flight(HOST), layer.waiting(HOST)), (2, 1));
        let overtaking = service.clone().oneshot(request(HOST)).await;
        assert_eq!(
            full(overtaking.expect_err("the queue is full")).in_flight(),
            2
        );
        assert!(poll_once(third.as_mut()).is_pending());
        assert_eq!(upstream.calls(), 3);
        assert_eq!((layer.in_flight(HOST), layer.waiting(HOST)), (2, 0));

        upstream.release(2);
        assert!(poll_once(second.as_mut()).is_ready());
        assert!(poll_once(third.as_mut()).is_ready());
        assert_eq!(layer.in_flight(HOST), 0);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn without_a_queue_a_call_that_finds_no_place_is_refused_at_once() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1);
        let service = layer.layer(upstream.service());
        let mut first = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(first.as_mut()).is_pending());
        let mut second = Box::pin(service.clone().oneshot(request(HOST)));
        let std::task::Poll::Ready(Err(error)) = poll_once(second.as_mut()) else {
            panic!("refused at the first poll")
        };
        let error = full(error);
        assert_eq!(
            (error.key(), error.in_flight(), error.limit()),
            (HOST, 1, 1)
        );
        assert_eq!(error.waited(), Duration::ZERO);
        assert_eq!(upstream.calls(), 1);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_refuses_at_once() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1).queue(2);
        let service = layer.layer(upstream.service());
        let mut held: Vec<_> = (0..3)
            .map(|_| Box::pin(service.clone().oneshot(request(HOST))))
            .collect();
        for call in &mut held {
            assert!(poll_once(call.as_mut()).is_pending());
        }
        assert_eq!((layer.in_flight(HOST), layer.waiting(HOST)), (1, 2));
        let start = Instant::now();
        // Bounded: a call let into the queue would otherwise wait forever.
        let refused = tokio::time::timeout(3600 * SECOND, service.clone().oneshot(request(HOST)))
            .await
            .expect("refused at once, not queued");
        let error = full(refused.expect_err("refused"));
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!((error.in_flight(), error.waited()), (1, Duration::ZERO));
        assert_eq!(upstream.calls(), 1);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_call_waits_at_most_max_wait_then_is_refused() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1).queue(1).max_wait(2 * SECOND);
        let service = layer.layer(upstream.service());
        let mut first = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(first.as_mut()).is_pending());
        let start = Instant::now();
        let error = full(
            service
                .clone()
                .oneshot(request(HOST))
                .await
                .expect_err("refused"),
        );
        assert_eq!(start.elapsed(), 2 * SECOND);
        assert_eq!(error.waited(), 2 * SECOND);
        assert_eq!(layer.waiting(HOST), 0);
        assert_eq!(upstream.calls(), 1);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_place_freed_within_max_wait_is_taken() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1).queue(1).max_wait(2 * SECOND);
        let service = layer.layer(upstream.service());
        let first = tokio::spawn(service.clone().oneshot(request(HOST)));
        tokio::task::yield_now().await;
        let releaser = upstream.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SECOND).await;
            releaser.release(2);
        });
        let start = Instant::now();
        let response = service.clone().oneshot(request(HOST)).await;
        assert_eq!(response.expect("sent").status(), 200);
        assert_eq!(start.elapsed(), SECOND);
        assert!(first.await.unwrap().is_ok());
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_the_wait() {
    bounded(async {
        let upstream = Upstream::held(200);
        // No wait limit of the layer's own: only the deadline ends the wait.
        let layer = BulkheadLayer::new(1).queue(1);
        let service = layer.layer(upstream.service());
        let mut first = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(first.as_mut()).is_pending());

        let mut second = request(HOST);
        Deadline::after(SECOND).tighten(second.extensions_mut());
        let start = Instant::now();
        let error = full(service.clone().oneshot(second).await.expect_err("refused"));
        assert_eq!(start.elapsed(), SECOND);
        assert_eq!(error.waited(), SECOND);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn the_earlier_of_the_deadline_and_max_wait_ends_the_wait() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1).queue(2).max_wait(5 * SECOND);
        let service = layer.layer(upstream.service());
        let mut first = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(first.as_mut()).is_pending());

        let mut soon = request(HOST);
        Deadline::after(SECOND).tighten(soon.extensions_mut());
        let start = Instant::now();
        service.clone().oneshot(soon).await.expect_err("refused");
        assert_eq!(start.elapsed(), SECOND);

        let mut late = request(HOST);
        Deadline::after(60 * SECOND).tighten(late.extensions_mut());
        let start = Instant::now();
        service.clone().oneshot(late).await.expect_err("refused");
        assert_eq!(start.elapsed(), 5 * SECOND);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_max_wait_of_duration_max_never_panics() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1).queue(1).max_wait(Duration::MAX);
        let service = layer.layer(upstream.service());
        let mut first = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(first.as_mut()).is_pending());
        let mut second = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(second.as_mut()).is_pending());
        upstream.release(2);
        assert!(poll_once(first.as_mut()).is_ready());
        assert!(poll_once(second.as_mut()).is_ready());
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn keys_are_independent() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1);
        let service = layer.layer(upstream.service());
        let mut busy = Box::pin(service.clone().oneshot(request("a.example")));
        assert!(poll_once(busy.as_mut()).is_pending());
        let mut other = Box::pin(service.clone().oneshot(request("b.example")));
        assert!(poll_once(other.as_mut()).is_pending());
        assert_eq!(upstream.calls(), 2);
        assert_eq!(
            (layer.in_flight("a.example"), layer.in_flight("b.example")),
            (1, 1)
        );
        let refused = service.clone().oneshot(request("a.example")).await;
        assert_eq!(full(refused.expect_err("refused")).key(), "a.example");
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn key_by_groups_calls_by_its_key() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1).key_by(|_parts| Some("everyone".to_owned()));
        let service = layer.layer(upstream.service());
        let mut busy = Box::pin(service.clone().oneshot(request("a.example")));
        assert!(poll_once(busy.as_mut()).is_pending());
        let refused = service.clone().oneshot(request("b.example")).await;
        assert_eq!(full(refused.expect_err("refused")).key(), "everyone");
        assert_eq!(layer.in_flight("everyone"), 1);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn the_place_is_given_back_with_the_response_head() {
    bounded(async {
        let upstream = Upstream::answering(200);
        let layer = BulkheadLayer::new(1);
        let service = layer.layer(upstream.service());
        let response = service.clone().oneshot(request(HOST)).await.expect("sent");
        // The response (and its body) is still held: the place is free.
        assert_eq!(layer.in_flight(HOST), 0);
        assert!(service.clone().oneshot(request(HOST)).await.is_ok());
        drop(response);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn an_error_gives_the_place_back_too() {
    bounded(async {
        let upstream = Upstream::answering(common::RESET);
        let layer = BulkheadLayer::new(1);
        let service = layer.layer(upstream.service());
        assert!(service.clone().oneshot(request(HOST)).await.is_err());
        assert_eq!(layer.in_flight(HOST), 0);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn idle_keys_are_forgotten_and_busy_ones_kept() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1).max_keys(1);
        let service = layer.layer(upstream.service());
        let mut busy = Box::pin(service.clone().oneshot(request("a.example")));
        assert!(poll_once(busy.as_mut()).is_pending());
        // The bound is reached by a busy key: a new key's calls go, unlimited.
        let mut one = Box::pin(service.clone().oneshot(request("b.example")));
        let mut two = Box::pin(service.clone().oneshot(request("b.example")));
        assert!(poll_once(one.as_mut()).is_pending());
        assert!(poll_once(two.as_mut()).is_pending());
        assert_eq!(upstream.calls(), 3);
        assert_eq!(layer.keys(), 1);
        layer.sweep();
        assert_eq!(layer.keys(), 1, "a.example is busy");

        upstream.release(3);
        for call in [&mut busy, &mut one, &mut two] {
            assert!(poll_once(call.as_mut()).is_ready());
        }
        // a.example is idle now: the next new key forgets it and is limited.
        let mut limited = Box::pin(service.clone().oneshot(request("b.example")));
        assert!(poll_once(limited.as_mut()).is_pending());
        assert_eq!(layer.in_flight("b.example"), 1);
        assert_eq!(layer.in_flight("a.example"), 0);
        assert_eq!(layer.keys(), 1);
        upstream.release(1);
        assert!(poll_once(limited.as_mut()).is_ready());
        layer.sweep();
        assert_eq!(layer.keys(), 0);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_request_without_an_authority_is_not_limited() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1);
        let service = layer.layer(upstream.service());
        let relative = || http::Request::get("/items").body(()).unwrap();
        let mut one = Box::pin(service.clone().oneshot(relative()));
        let mut two = Box::pin(service.clone().oneshot(relative()));
        assert!(poll_once(one.as_mut()).is_pending());
        assert!(poll_once(two.as_mut()).is_pending());
        assert_eq!((upstream.calls(), layer.keys()), (2, 0));
    })
    .await
}
