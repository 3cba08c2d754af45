//! Over loopback, against the testkit server: a server failing every call for a while, then
//! recovering. Once the circuit is open the server sees only the probes, callers fail fast,
//! and traffic returns after it recovers. Real time (a real socket), bounded to a few seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::{Layer, ServiceExt};
use towline_breaker::{CircuitBreakerLayer, CircuitState, Settings};
use towline_core::{Error, ErrorKind};
use towline_testkit::{Reply, TestServer};

const FAILING: Duration = Duration::from_millis(1500);
const RECOVERED: Duration = Duration::from_millis(1000);
const BREAK: Duration = Duration::from_millis(200);
const MAX_BREAK: Duration = Duration::from_millis(400);
const MIN_THROUGHPUT: u32 = 10;

#[derive(Debug)]
enum Seen {
    Status(u16),
    Refused(Duration),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_open_the_server_sees_only_probes_until_it_recovers() {
    let server = TestServer::start().await;
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = healthy.clone();
    server.route_fn("/x", move |_| {
        if flag.load(Ordering::SeqCst) {
            Reply::ok()
        } else {
            Reply::status(503)
        }
    });
    let settings = Settings::new()
        .min_throughput(MIN_THROUGHPUT)
        .failure_ratio(0.5)
        .sampling_window(Duration::from_secs(2))
        .break_duration(BREAK)
        .max_break(MAX_BREAK);
    let layer = CircuitBreakerLayer::with_settings(settings).unwrap();
    let service = layer.layer(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());

    let start = Instant::now();
    let mut failing_phase = Vec::new();
    let mut served_while_failing = 0;
    let mut recovered_phase = Vec::new();
    let mut recovered_at = None;
    while start.elapsed() < FAILING + RECOVERED {
        if recovered_at.is_none() && start.elapsed() >= FAILING {
            served_while_failing = server.request_count();
            healthy.store(true, Ordering::SeqCst);
            recovered_at = Some(Instant::now());
        }
        let request = Request::get(server.url("/x")).body(Empty::new()).unwrap();
        let sent = Instant::now();
        let seen = match service.clone().oneshot(request).await {
            Ok(response) => Seen::Status(response.status().as_u16()),
            Err(error) => {
                let took = sent.elapsed();
                assert_eq!(Error::from(error).kind(), ErrorKind::CircuitOpen);
                Seen::Refused(took)
            }
        };
        match recovered_at {
            None => failing_phase.push(seen),
            Some(at) => recovered_phase.push((at.elapsed(), seen)),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // While failing: the first calls open the circuit, then only probes reach the server,
    // one per break (200, 400, 400, ... ms), out of hundreds of calls.
    let refused: Vec<Duration> = failing_phase
        .iter()
        .filter_map(|seen| match seen {
            Seen::Refused(took) => Some(*took),
            Seen::Status(_) => None,
        })
        .collect();
    assert!(refused.len() > 100, "{} calls refused", refused.len());
    let probes_at_most = (FAILING.as_millis() / BREAK.as_millis()) as usize + 1;
    assert!(
        served_while_failing <= MIN_THROUGHPUT as usize + probes_at_most,
        "the server saw {served_while_failing} calls while failing"
    );
    assert!(matches!(
        failing_phase[..MIN_THROUGHPUT as usize],
        [Seen::Status(503), ..]
    ));

    // Callers fail fast: the refusal does not touch the network.
    let mut took = refused.clone();
    took.sort();
    let p99 = took[took.len() * 99 / 100];
    println!(
        "while failing: {} calls, {} refused (p99 {p99:?}, max {:?}), {served_while_failing} served",
        failing_phase.len(),
        refused.len(),
        took.last().copied().unwrap_or_default()
    );
    assert!(p99 < Duration::from_millis(1), "p99 of a refusal: {p99:?}");

    // After recovery: within one (longest) break a probe succeeds and traffic returns.
    let first_ok = recovered_phase
        .iter()
        .find(|(_, seen)| matches!(seen, Seen::Status(200)))
        .map(|(at, _)| *at)
        .expect("traffic returned");
    println!("traffic returned {first_ok:?} after the server recovered");
    assert!(
        first_ok <= MAX_BREAK + Duration::from_millis(100),
        "{first_ok:?}"
    );
    let after: Vec<&Seen> = recovered_phase
        .iter()
        .filter(|(at, _)| *at > first_ok)
        .map(|(_, seen)| seen)
        .collect();
    assert!(after.len() > 50);
    assert!(
        after.iter().all(|seen| matches!(seen, Seen::Status(200))),
        "{after:?}"
    );
    assert!(matches!(
        layer.circuits().state(server.authority().as_ref()),
        Some(CircuitState::Closed { failures: 0, .. })
    ));
}
