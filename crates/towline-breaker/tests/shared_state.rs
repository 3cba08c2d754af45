//! The circuits are shared by clones across threads: nothing is lost or let through twice.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Upstream, breaker, call, closed, layer};
use towline_breaker::Settings;
use towline_core::ErrorKind;

const HOST: &str = "api.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_outcomes_are_all_counted() {
    let layer = layer(Settings::new().min_throughput(100_000));
    let ok = breaker(&layer, Upstream::answering(200).service());
    let failing = breaker(&layer, Upstream::answering(503).service());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (ok, failing) = (ok.clone(), failing.clone());
            tokio::spawn(async move {
                for _ in 0..250 {
                    call(&ok, HOST).await.unwrap();
                    call(&failing, HOST).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(layer.circuits().state(HOST), closed(4000, 2000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_of_a_half_open_circuit_send_only_the_probes() {
    // No break: the call after the opening failure is a probe.
    let settings = Settings::new()
        .consecutive_failures(1)
        .break_duration(Duration::ZERO)
        .max_break(Duration::ZERO)
        .probes(2);
    let layer = layer(settings);
    call(&breaker(&layer, Upstream::answering(500).service()), HOST)
        .await
        .unwrap();
    let upstream = Upstream::held(200);
    let service = breaker(&layer, upstream.service());
    let refused = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (service, refused) = (service.clone(), refused.clone());
            tokio::spawn(async move {
                match call(&service, HOST).await {
                    Err(ErrorKind::CircuitOpen) => {
                        refused.fetch_add(1, Ordering::SeqCst);
                    }
                    outcome => assert_eq!(outcome, Ok(200)),
                }
            })
        })
        .collect();
    // Bounded real time: every caller has been answered or is a probe held upstream.
    let start = tokio::time::Instant::now();
    while refused.load(Ordering::SeqCst) < 14 {
        assert!(start.elapsed() < Duration::from_secs(10), "callers stuck");
        tokio::task::yield_now().await;
    }
    assert_eq!(upstream.calls(), 2);
    upstream.release(2);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(upstream.calls(), 2);
    assert_eq!(refused.load(Ordering::SeqCst), 14);
    assert_eq!(layer.circuits().state(HOST), closed(0, 0));
}
