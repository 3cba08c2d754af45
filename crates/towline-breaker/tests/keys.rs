//! The bound on keys: idle circuits are forgotten, busy ones kept.

mod common;

use std::time::Duration;

use common::{SECOND, Upstream, breaker, call, closed, is_open, layer};
use tokio::time::advance;
use towline_breaker::Settings;

const WINDOW: Duration = Duration::from_secs(30);

#[tokio::test(start_paused = true)]
async fn idle_keys_are_evicted_when_new_keys_come() {
    let upstream = Upstream::answering(200);
    let layer = layer(Settings::new()).max_keys(10);
    let service = breaker(&layer, upstream.service());
    for i in 0..5 {
        call(&service, &format!("k{i}.example")).await.unwrap();
    }
    assert_eq!(layer.circuits().len(), 5);
    // Their windows empty out: the next new key forgets them.
    advance(WINDOW).await;
    call(&service, "new.example").await.unwrap();
    assert_eq!(layer.circuits().len(), 1);
    assert_eq!(layer.circuits().state("new.example"), closed(1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_busy_key_is_kept_at_the_bound_and_a_new_key_goes_unwatched() {
    let upstream = Upstream::answering(200);
    let layer = layer(Settings::new()).max_keys(1);
    let service = breaker(&layer, upstream.service());
    call(&service, "busy.example").await.unwrap();
    assert_eq!(call(&service, "new.example").await, Ok(200));
    assert_eq!(layer.circuits().state("new.example"), None);
    assert_eq!(layer.circuits().state("busy.example"), closed(1, 0));
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_is_kept_for_a_window_past_its_break() {
    let upstream = Upstream::answering(500);
    let settings = Settings::new()
        .consecutive_failures(1)
        .break_duration(5 * SECOND);
    let layer = layer(settings).max_keys(1);
    let service = breaker(&layer, upstream.service());
    let healthy = breaker(&layer, Upstream::answering(200).service());
    call(&service, "sick.example").await.unwrap();
    advance(5 * SECOND + WINDOW - Duration::from_millis(1)).await;
    call(&healthy, "other.example").await.unwrap();
    assert!(is_open(layer.circuits().state("sick.example")));
    assert_eq!(layer.circuits().state("other.example"), None);
    advance(Duration::from_millis(1)).await;
    call(&healthy, "other.example").await.unwrap();
    assert_eq!(layer.circuits().state("sick.example"), None);
    assert_eq!(layer.circuits().state("other.example"), closed(1, 0));
}

#[tokio::test(start_paused = true)]
async fn sweep_forgets_every_idle_circuit_and_keeps_forced_ones() {
    let upstream = Upstream::answering(200);
    let layer = layer(Settings::new());
    let service = breaker(&layer, upstream.service());
    for i in 0..100 {
        call(&service, &format!("k{i}.example")).await.unwrap();
    }
    layer.circuits().force_open("held.example");
    advance(WINDOW).await;
    layer.circuits().sweep();
    assert_eq!(layer.circuits().len(), 1);
    assert!(layer.circuits().state("held.example").is_some());
}
