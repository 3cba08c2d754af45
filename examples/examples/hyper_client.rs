//! Adding towline's layers to an existing hyper-util client, one `ServiceBuilder` method each.
//!
//! Run it with `cargo run --example hyper_client`. The upstream is the loopback test server,
//! which fails twice with 503 before answering.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use towline::prelude::*;
use towline::{Attempts, RetryPolicy};
use towline_testkit::{Reply, TestServer};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = TestServer::start().await;
    server.script(
        "/status",
        [
            Reply::status(503),
            Reply::status(503),
            Reply::ok().json(r#"{"up":true}"#),
        ],
    );

    // The client you already have...
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    // ... and the layers you want, outermost first.
    let client = ServiceBuilder::new()
        .call_deadline(Duration::from_secs(10))
        .retries(RetryLayer::with_policy(RetryPolicy::new().seed(1)))
        .no_redirects()
        .attempt_timeout(Duration::from_secs(2))
        .decode_error_bodies()
        .service(client);

    let response = client
        .oneshot(Request::get(server.url("/status")).body(Empty::new())?)
        .await?;
    let attempts = Attempts::from_extensions(response.extensions()).map_or(1, Attempts::count);
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    println!(
        "GET /status -> {status} {} after {attempts} attempts",
        String::from_utf8_lossy(&body)
    );
    println!(
        "the server logged {} requests",
        server.requests_to("/status").len()
    );
    assert_eq!(attempts, 3);
    Ok(())
}
