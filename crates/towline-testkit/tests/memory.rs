//! Huge bodies stream in bounded memory. A test binary of its own, so that no
//! other test allocates in the same process while the peak is measured.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use towline_testkit::{Reply, TestServer};

/// Peak resident set size of this process, in bytes (Linux only).
#[cfg(target_os = "linux")]
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("VmHWM value");
    kib * 1024
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn huge_body_does_not_hold_its_length_in_memory() {
    const LEN: u64 = 256 << 20;
    const ALLOWANCE: u64 = 64 << 20;

    let server = TestServer::start().await;
    server.route("/huge", Reply::huge_body(LEN));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();

    let before = peak_rss();
    let response = client.get(server.url("/huge")).await.unwrap();
    let mut incoming = response.into_body();
    let mut received = 0u64;
    while let Some(frame) = incoming.frame().await {
        received += frame.unwrap().into_data().unwrap().len() as u64;
    }
    let growth = peak_rss().saturating_sub(before);

    assert_eq!(received, LEN);
    // A server that built the body up front would need all 256 MiB at once.
    assert!(
        growth < ALLOWANCE,
        "peak RSS grew by {} MiB while streaming {} MiB",
        growth >> 20,
        LEN >> 20
    );
    server.shutdown().await;
}
