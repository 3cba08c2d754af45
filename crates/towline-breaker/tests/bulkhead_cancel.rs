//! A bulkhead call dropped at each of its await points gives back what it held: a waiting
//! call its place in the queue, a call in flight its place.

mod common;

use common::{SECOND, Upstream, bounded, poll_once, request};
use tower::{Layer, Service, ServiceExt};
use towline_breaker::BulkheadLayer;

const HOST: &str = "api.example";

#[tokio::test(start_paused = true)]
async fn a_call_dropped_in_flight_gives_its_place_back() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1);
        let service = layer.layer(upstream.service());
        let mut in_flight = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(in_flight.as_mut()).is_pending());
        assert_eq!(layer.in_flight(HOST), 1);
        drop(in_flight);
        assert_eq!(layer.in_flight(HOST), 0);
        upstream.release(1);
        assert!(service.clone().oneshot(request(HOST)).await.is_ok());
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_before_it_is_polled_gives_its_place_back() {
    bounded(async {
        let upstream = Upstream::answering(200);
        let layer = BulkheadLayer::new(1);
        let mut service = layer.layer(upstream.service());
        service.ready().await.unwrap();
        let unpolled = service.call(request(HOST));
        assert_eq!(layer.in_flight(HOST), 1);
        drop(unpolled);
        assert_eq!(layer.in_flight(HOST), 0);
        assert!(service.clone().oneshot(request(HOST)).await.is_ok());
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_while_waiting_leaves_the_queue() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1).queue(1);
        let service = layer.layer(upstream.service());
        let mut first = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(first.as_mut()).is_pending());
        let mut waiting = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(waiting.as_mut()).is_pending());
        assert_eq!(layer.waiting(HOST), 1);
        drop(waiting);
        assert_eq!(layer.waiting(HOST), 0);
        // Its place in the queue is free: the next call waits (rather than being refused), and
        // gets the place the first call gives back.
        let mut next = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(next.as_mut()).is_pending());
        assert_eq!(layer.waiting(HOST), 1);
        upstream.release(2);
        assert!(poll_once(first.as_mut()).is_ready());
        assert!(poll_once(next.as_mut()).is_ready());
        assert_eq!(upstream.calls(), 2, "the dropped call was never sent");
        assert_eq!((layer.in_flight(HOST), layer.waiting(HOST)), (0, 0));
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_waiting_call_dropped_before_it_is_polled_leaves_the_queue() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1).queue(1);
        let mut service = layer.layer(upstream.service());
        let mut first = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(first.as_mut()).is_pending());
        service.ready().await.unwrap();
        let unpolled = service.call(request(HOST));
        assert_eq!(layer.waiting(HOST), 1);
        drop(unpolled);
        assert_eq!(layer.waiting(HOST), 0);
        upstream.release(1);
        assert!(poll_once(first.as_mut()).is_ready());
        assert_eq!(layer.in_flight(HOST), 0);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_waiter_dropped_after_a_place_was_handed_to_it_gives_the_place_on() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1).queue(2);
        let service = layer.layer(upstream.service());
        let mut first = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(first.as_mut()).is_pending());
        let mut handed = Box::pin(service.clone().oneshot(request(HOST)));
        let mut last = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(handed.as_mut()).is_pending());
        assert!(poll_once(last.as_mut()).is_pending());
        // The first answer hands its place to `handed`, which is dropped before it is polled.
        upstream.release(1);
        assert!(poll_once(first.as_mut()).is_ready());
        drop(handed);
        assert_eq!(layer.waiting(HOST), 1);
        assert!(poll_once(last.as_mut()).is_pending());
        assert_eq!(
            (upstream.calls(), layer.in_flight(HOST), layer.waiting(HOST)),
            (2, 1, 0)
        );
        upstream.release(1);
        assert!(poll_once(last.as_mut()).is_ready());
        assert_eq!(layer.in_flight(HOST), 0);
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_refused_call_dropped_unpolled_changes_nothing() {
    bounded(async {
        let upstream = Upstream::held(200);
        let layer = BulkheadLayer::new(1);
        let mut service = layer.layer(upstream.service());
        let mut first = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(first.as_mut()).is_pending());
        service.ready().await.unwrap();
        drop(service.call(request(HOST)));
        assert_eq!((layer.in_flight(HOST), layer.waiting(HOST)), (1, 0));
        tokio::time::advance(SECOND).await;
    })
    .await
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "polled after completion")]
async fn polling_after_completion_panics() {
    let upstream = Upstream::answering(200);
    let layer = BulkheadLayer::new(1);
    let mut service = layer.layer(upstream.service());
    service.ready().await.unwrap();
    let mut future = Box::pin(service.call(request(HOST)));
    assert!(poll_once(future.as_mut()).is_ready());
    let _ = poll_once(future.as_mut());
}
