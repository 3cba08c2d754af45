//! The standard towline pipeline over a reqwest client, through `towline-reqwest`.
//!
//! Run it with `cargo run --example reqwest_client`. The upstream is the loopback test server:
//! `/status` fails twice with 503 before answering, `/old` redirects elsewhere.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use tower::{BoxError, ServiceExt};
use towline::{Attempts, Error, ErrorKind, Pipeline, RetryLayer, RetryPolicy};
use towline_reqwest::ReqwestService;
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
    server.route("/old", Reply::redirect(302, "/login"));

    // A reqwest client configured as you like; the service never lets it follow a redirect.
    let builder = reqwest::Client::builder().pool_max_idle_per_host(4);
    // The request body type is named: see "Why `B` is in the type" on `ReqwestService`.
    let client = ReqwestService::<Full<Bytes>>::from_builder(builder)?;
    let service = Pipeline::new()
        .retry(RetryLayer::with_policy(RetryPolicy::new().seed(1)))
        .service(client);

    let response = service
        .clone()
        .oneshot(Request::get(server.url("/status")).body(Full::new(Bytes::new()))?)
        .await?;
    let attempts = Attempts::from_extensions(response.extensions()).map_or(1, Attempts::count);
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    println!(
        "GET /status -> {status} {} after {attempts} attempts",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(attempts, 3);

    let err = match service
        .oneshot(Request::get(server.url("/old")).body(Full::new(Bytes::new()))?)
        .await
    {
        Ok(response) => {
            return Err(format!("expected a redirect error, got {}", response.status()).into());
        }
        Err(err) => Error::from(err),
    };
    println!("GET /old -> {err}");
    assert_eq!(err.kind(), ErrorKind::Redirected);
    assert!(server.requests_to("/login").is_empty());
    println!(
        "the server logged {} requests, none to /login",
        server.requests().len()
    );
    Ok(())
}
