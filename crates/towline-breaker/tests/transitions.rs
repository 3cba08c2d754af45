//! Each transition of a circuit, under a paused clock.

mod common;

use std::time::Duration;

use common::{
    RESET, SECOND, Upstream, breaker, call, closed, is_open, layer, poll_once, refusal, request,
};
use tokio::time::{Instant, advance};
use tower::{Service, ServiceExt};
use towline_breaker::{CircuitState, Settings};
use towline_core::ErrorKind;

const HOST: &str = "api.example";

#[tokio::test(start_paused = true)]
async fn opens_exactly_at_the_failure_ratio() {
    let upstream = Upstream::answering(200);
    let layer = layer(Settings::new()); // 10 %, at least 100 calls
    let service = breaker(&layer, upstream.service());
    for _ in 0..90 {
        assert_eq!(call(&service, HOST).await, Ok(200));
    }
    upstream.set(500);
    for _ in 0..9 {
        assert_eq!(call(&service, HOST).await, Ok(500));
    }
    assert_eq!(layer.circuits().state(HOST), closed(99, 9));
    // 10 failures of 100 calls is exactly 10 %: open, and this failure is still handed back.
    assert_eq!(call(&service, HOST).await, Ok(500));
    assert!(is_open(layer.circuits().state(HOST)));
    assert_eq!(call(&service, HOST).await, Err(ErrorKind::CircuitOpen));
    assert_eq!(upstream.calls(), 100, "the refused call was not sent");
}

#[tokio::test(start_paused = true)]
async fn a_ratio_just_below_the_threshold_keeps_it_closed() {
    let upstream = Upstream::answering(200);
    let layer = layer(Settings::new());
    let service = breaker(&layer, upstream.service());
    for _ in 0..100 {
        call(&service, HOST).await.unwrap();
    }
    upstream.set(500);
    // 11 failures of 111 calls is 9.9 %: still closed; 12 of 112 is 10.7 %: open.
    for _ in 0..11 {
        call(&service, HOST).await.unwrap();
    }
    assert_eq!(layer.circuits().state(HOST), closed(111, 11));
    call(&service, HOST).await.unwrap();
    assert!(is_open(layer.circuits().state(HOST)));
}

#[tokio::test(start_paused = true)]
async fn does_not_open_before_the_minimum_throughput() {
    let upstream = Upstream::answering(RESET);
    let layer = layer(Settings::new().min_throughput(100));
    let service = breaker(&layer, upstream.service());
    for _ in 0..99 {
        assert!(call(&service, HOST).await.is_err());
    }
    assert_eq!(layer.circuits().state(HOST), closed(99, 99));
    assert_eq!(
        call(&service, HOST).await,
        Err(ErrorKind::Network {
            may_have_reached_server: true
        })
    );
    assert!(is_open(layer.circuits().state(HOST)));
}

#[tokio::test(start_paused = true)]
async fn outcomes_older_than_the_window_no_longer_count() {
    let upstream = Upstream::answering(500);
    let layer = layer(Settings::new().min_throughput(10).failure_ratio(0.5));
    let service = breaker(&layer, upstream.service());
    for _ in 0..9 {
        call(&service, HOST).await.unwrap();
    }
    // 30 s later the nine failures have left the window: the tenth call is alone in it.
    advance(Duration::from_secs(30)).await;
    call(&service, HOST).await.unwrap();
    assert_eq!(layer.circuits().state(HOST), closed(1, 1));
}

#[tokio::test(start_paused = true)]
async fn consecutive_failures_open_below_the_minimum_throughput() {
    let upstream = Upstream::answering(503);
    let layer = layer(Settings::new().consecutive_failures(3));
    let service = breaker(&layer, upstream.service());
    call(&service, HOST).await.unwrap();
    call(&service, HOST).await.unwrap();
    upstream.set(200);
    call(&service, HOST).await.unwrap();
    upstream.set(503);
    call(&service, HOST).await.unwrap();
    call(&service, HOST).await.unwrap();
    assert_eq!(
        layer.circuits().state(HOST),
        closed(5, 4),
        "a success broke the run"
    );
    call(&service, HOST).await.unwrap();
    assert!(is_open(layer.circuits().state(HOST)));
}

/// A layer that opens on the first failure, with a 5 s break doubling up to 20 s.
fn quick() -> Settings {
    Settings::new()
        .consecutive_failures(1)
        .break_duration(5 * SECOND)
        .max_break(20 * SECOND)
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_fails_fast_until_the_break_ends() {
    let upstream = Upstream::answering(502);
    let layer = layer(quick());
    let service = breaker(&layer, upstream.service());
    call(&service, HOST).await.unwrap();
    let opened = Instant::now();
    advance(Duration::from_millis(4_999)).await;
    let refused = refusal(&service, HOST).await;
    assert_eq!(refused.until(), opened + 5 * SECOND);
    assert_eq!(refused.key(), HOST);
    assert_eq!(refused.remaining(), Duration::from_millis(1));
    assert_eq!(upstream.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_only_the_probes() {
    let upstream = Upstream::held(200);
    let layer = layer(quick().probes(2));
    let service = breaker(&layer, upstream.service());
    // Another service of the same layer shares its circuits: one failure there opens it.
    let failing = breaker(&layer, Upstream::answering(500).service());
    call(&failing, HOST).await.unwrap();
    assert!(is_open(layer.circuits().state(HOST)));
    advance(5 * SECOND).await;

    let mut probes = Vec::new();
    for _ in 0..2 {
        let mut probe = Box::pin(service.clone().oneshot(request(HOST)));
        assert!(poll_once(probe.as_mut()).is_pending(), "a probe is sent");
        probes.push(probe);
    }
    assert_eq!(
        layer.circuits().state(HOST),
        Some(CircuitState::HalfOpen {
            probes_in_flight: 2
        })
    );
    let refused = refusal(&service, HOST).await;
    assert_eq!(refused.until(), Instant::now(), "a probe's answer decides");
    assert_eq!(upstream.calls(), 2, "two probes; the third call not sent");

    // One probe's success is not enough with two probes out ...
    upstream.release(1);
    probes.remove(0).await.unwrap();
    assert_eq!(
        layer.circuits().state(HOST),
        Some(CircuitState::HalfOpen {
            probes_in_flight: 1
        })
    );
    // ... both close it.
    upstream.release(1);
    probes.remove(0).await.unwrap();
    assert_eq!(layer.circuits().state(HOST), closed(0, 0));
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_with_a_longer_break_up_to_the_cap() {
    let upstream = Upstream::answering(504);
    let layer = layer(quick());
    let service = breaker(&layer, upstream.service());
    call(&service, HOST).await.unwrap();
    let mut breaks = Vec::new();
    for _ in 0..4 {
        let until = refusal(&service, HOST).await.until();
        breaks.push(until - Instant::now());
        tokio::time::sleep_until(until).await;
        // The probe fails.
        assert_eq!(call(&service, HOST).await, Ok(504));
    }
    let secs: Vec<u64> = breaks.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [5, 10, 20, 20]);
    assert_eq!(upstream.calls(), 5, "only the probes were sent");
}

#[tokio::test(start_paused = true)]
async fn a_successful_probe_closes_and_the_break_starts_short_again() {
    let upstream = Upstream::answering(500);
    let layer = layer(quick());
    let service = breaker(&layer, upstream.service());
    call(&service, HOST).await.unwrap();
    advance(5 * SECOND).await;
    call(&service, HOST).await.unwrap(); // a failed probe: 10 s
    advance(10 * SECOND).await;
    upstream.set(200);
    assert_eq!(call(&service, HOST).await, Ok(200)); // the probe succeeds
    assert_eq!(layer.circuits().state(HOST), closed(0, 0));
    assert_eq!(call(&service, HOST).await, Ok(200));
    upstream.set(500);
    call(&service, HOST).await.unwrap();
    assert_eq!(refusal(&service, HOST).await.remaining(), 5 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn keys_are_independent() {
    let upstream = Upstream::answering(500);
    let layer = layer(quick());
    let service = breaker(&layer, upstream.service());
    call(&service, "a.example").await.unwrap();
    assert_eq!(
        call(&service, "a.example").await,
        Err(ErrorKind::CircuitOpen)
    );
    upstream.set(200);
    assert_eq!(call(&service, "b.example").await, Ok(200));
    assert_eq!(
        layer.circuits().state("b.example:8080"),
        None,
        "the port is part of the authority"
    );
    assert_eq!(call(&service, "b.example:8080").await, Ok(200));
    assert_eq!(layer.circuits().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn key_by_keys_circuits_and_a_request_without_a_key_is_not_watched() {
    let upstream = Upstream::answering(500);
    let layer = layer(quick()).key_by(|parts: &http::request::Parts| {
        Some(parts.headers.get("x-tenant")?.to_str().ok()?.to_owned())
    });
    let mut service = breaker(&layer, upstream.service());
    let tenant = |name: &'static str| {
        http::Request::get("http://shared.example/")
            .header("x-tenant", name)
            .body(())
            .unwrap()
    };
    service.ready().await.unwrap();
    service.call(tenant("t1")).await.unwrap();
    assert!(is_open(layer.circuits().state("t1")));
    assert!(
        service
            .ready()
            .await
            .unwrap()
            .call(tenant("t1"))
            .await
            .is_err()
    );
    assert!(
        service
            .ready()
            .await
            .unwrap()
            .call(tenant("t2"))
            .await
            .is_ok()
    );
    // No tenant header: no key, never refused.
    for _ in 0..3 {
        assert_eq!(call(&service, "shared.example").await, Ok(500));
    }
    assert_eq!(layer.circuits().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_429_counts_nothing_and_a_4xx_is_a_success() {
    let upstream = Upstream::answering(429);
    let layer = layer(Settings::new().min_throughput(1).consecutive_failures(1));
    let service = breaker(&layer, upstream.service());
    for _ in 0..5 {
        assert_eq!(call(&service, HOST).await, Ok(429));
    }
    assert_eq!(layer.circuits().state(HOST), closed(0, 0));
    upstream.set(404);
    call(&service, HOST).await.unwrap();
    assert_eq!(layer.circuits().state(HOST), closed(1, 0));
}

#[tokio::test(start_paused = true)]
async fn an_answer_to_a_call_sent_before_the_circuit_opened_is_not_a_probe() {
    let slow = Upstream::held(200);
    let layer = layer(quick());
    let service = breaker(&layer, slow.service());
    // A slow call goes while the circuit is closed ...
    let mut before = Box::pin(service.clone().oneshot(request(HOST)));
    assert!(poll_once(before.as_mut()).is_pending());
    // ... another call fails and opens it; after the break a probe goes.
    let failing = breaker(&layer, Upstream::answering(500).service());
    call(&failing, HOST).await.unwrap();
    advance(5 * SECOND).await;
    let mut probe = Box::pin(service.clone().oneshot(request(HOST)));
    assert!(poll_once(probe.as_mut()).is_pending());
    // The slow call's success (the first waiter released) says nothing about now ...
    slow.release(1);
    assert_eq!(before.await.unwrap().status(), 200);
    assert_eq!(
        layer.circuits().state(HOST),
        Some(CircuitState::HalfOpen {
            probes_in_flight: 1
        })
    );
    // ... the probe's does.
    slow.release(1);
    probe.await.unwrap();
    assert_eq!(layer.circuits().state(HOST), closed(0, 0));
}

#[tokio::test(start_paused = true)]
async fn forced_open_holds_until_forced_closed() {
    let upstream = Upstream::answering(200);
    let layer = layer(quick());
    let service = breaker(&layer, upstream.service());
    layer.circuits().force_open(HOST);
    advance(Duration::from_secs(3600)).await;
    let refused = refusal(&service, HOST).await;
    assert!(refused.remaining() > Duration::from_secs(86_400 * 365));
    assert_eq!(layer.circuits().state(HOST), Some(CircuitState::ForcedOpen));
    assert!(layer.circuits().force_closed(HOST));
    assert_eq!(call(&service, HOST).await, Ok(200));
    assert_eq!(upstream.calls(), 1);
    assert_eq!(
        layer.circuits().list(),
        [(
            HOST.to_owned(),
            CircuitState::Closed {
                calls: 1,
                failures: 0
            }
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn every_duration_setting_at_max_does_not_panic() {
    let upstream = Upstream::answering(500);
    let settings = quick()
        .sampling_window(Duration::MAX)
        .break_duration(Duration::MAX)
        .max_break(Duration::MAX);
    let layer = layer(settings);
    let service = breaker(&layer, upstream.service());
    call(&service, HOST).await.unwrap();
    assert!(refusal(&service, HOST).await.remaining() > Duration::from_secs(86_400 * 365));
    layer.circuits().sweep();
}
