//! A call dropped at each of its await points counts nothing, and a dropped probe gives its
//! place back.

mod common;

use std::time::Duration;

use common::{SECOND, Upstream, breaker, call, closed, is_open, layer, poll_once, request};
use tokio::time::advance;
use tower::{Service, ServiceExt};
use towline_breaker::{CircuitState, Settings};
use towline_core::ErrorKind;

const HOST: &str = "api.example";

fn quick() -> Settings {
    Settings::new()
        .consecutive_failures(1)
        .break_duration(5 * SECOND)
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_while_waiting_for_its_answer_counts_nothing() {
    let upstream = Upstream::held(500);
    let layer = layer(quick());
    let service = breaker(&layer, upstream.service());
    let mut waiting = Box::pin(service.clone().oneshot(request(HOST)));
    assert!(poll_once(waiting.as_mut()).is_pending());
    drop(waiting);
    upstream.release(1);
    assert_eq!(layer.circuits().state(HOST), closed(0, 0));
    // The circuit is still closed: the next call goes (and its failure opens it).
    assert_eq!(call(&service, HOST).await, Ok(500));
    assert!(is_open(layer.circuits().state(HOST)));
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_before_it_is_polled_counts_nothing() {
    let upstream = Upstream::answering(500);
    let layer = layer(quick());
    let mut service = breaker(&layer, upstream.service());
    service.ready().await.unwrap();
    drop(service.call(request(HOST)));
    assert_eq!(layer.circuits().state(HOST), closed(0, 0));
}

/// Opens the circuit of `HOST` and lets its break pass.
async fn half_open(layer: &towline_breaker::CircuitBreakerLayer) {
    call(&breaker(layer, Upstream::answering(500).service()), HOST)
        .await
        .unwrap();
    advance(5 * SECOND).await;
}

#[tokio::test(start_paused = true)]
async fn a_probe_dropped_while_waiting_for_its_answer_gives_its_place_back() {
    let upstream = Upstream::held(200);
    let layer = layer(quick());
    let service = breaker(&layer, upstream.service());
    half_open(&layer).await;
    let mut probe = Box::pin(service.clone().oneshot(request(HOST)));
    assert!(poll_once(probe.as_mut()).is_pending());
    assert_eq!(call(&service, HOST).await, Err(ErrorKind::CircuitOpen));
    drop(probe);
    assert_eq!(
        layer.circuits().state(HOST),
        Some(CircuitState::HalfOpen {
            probes_in_flight: 0
        })
    );
    // The next call is the probe: sent, and its success closes the circuit.
    upstream.release(2);
    assert_eq!(call(&service, HOST).await, Ok(200));
    assert_eq!(layer.circuits().state(HOST), closed(0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_probe_dropped_before_it_is_polled_gives_its_place_back() {
    let upstream = Upstream::answering(200);
    let layer = layer(quick());
    let mut service = breaker(&layer, upstream.service());
    half_open(&layer).await;
    service.ready().await.unwrap();
    drop(service.call(request(HOST)));
    assert_eq!(call(&service, HOST).await, Ok(200));
    assert_eq!(layer.circuits().state(HOST), closed(0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_refused_call_dropped_unpolled_changes_nothing() {
    let upstream = Upstream::answering(200);
    let layer = layer(quick());
    let mut service = breaker(&layer, upstream.service());
    half_open(&layer).await;
    let mut probe = Box::pin(service.clone().oneshot(request(HOST)));
    assert!(poll_once(probe.as_mut()).is_ready());
    // Closed by the probe; now force it open and drop a refused call's future.
    layer.circuits().force_open(HOST);
    service.ready().await.unwrap();
    drop(service.call(request(HOST)));
    assert_eq!(layer.circuits().state(HOST), Some(CircuitState::ForcedOpen));
    advance(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "polled after completion")]
async fn polling_after_completion_panics() {
    let upstream = Upstream::answering(200);
    let layer = layer(quick());
    let mut service = breaker(&layer, upstream.service());
    service.ready().await.unwrap();
    let mut future = Box::pin(service.call(request(HOST)));
    assert!(poll_once(future.as_mut()).is_ready());
    let _ = poll_once(future.as_mut());
}
