//! A resilient client kept in axum state, used from a handler that calls an upstream.
//!
//! Run it with `cargo run --example axum_state`. It starts the upstream (the loopback test
//! server, flaky on purpose), an axum app on 127.0.0.1 whose handler calls the upstream through
//! towline's standard pipeline, calls the app once, prints the answer and exits.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, ServiceExt};
use towline::{Error, ErrorKind, Pipeline, Standard};
use towline_testkit::{Reply, TestServer};

/// The app's state: the resilient upstream client (cheap to clone: the pipeline shares its
/// budget, gates and token cache across clones) and where the upstream lives.
#[derive(Clone)]
struct AppState {
    upstream: Standard<Client<HttpConnector, Empty<Bytes>>>,
    base: String,
}

async fn price(State(state): State<AppState>) -> (StatusCode, String) {
    let request = match Request::get(format!("{}/price", state.base)).body(Empty::new()) {
        Ok(request) => request,
        Err(err) => return (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
    };
    match state.upstream.oneshot(request).await {
        Ok(response) => match response.into_body().collect().await {
            Ok(body) => (
                StatusCode::OK,
                String::from_utf8_lossy(&body.to_bytes()).into_owned(),
            ),
            Err(err) => (StatusCode::BAD_GATEWAY, err.to_string()),
        },
        // The typed outcome decides what our own caller sees; the log gets the whole story,
        // each cause once ("gave up after 4 attempts: 502 Bad Gateway (...)").
        Err(err) => {
            let err = Error::from(err);
            eprintln!("upstream call failed: {}", err.chain());
            upstream_failure(err.kind())
        }
    }
}

/// What our caller sees when the upstream call failed.
fn upstream_failure(kind: ErrorKind) -> (StatusCode, String) {
    match kind {
        ErrorKind::Timeout | ErrorKind::DeadlineExceeded => {
            (StatusCode::GATEWAY_TIMEOUT, "upstream too slow".into())
        }
        ErrorKind::RateLimited => (
            StatusCode::TOO_MANY_REQUESTS,
            "upstream asked us to wait".into(),
        ),
        other => (StatusCode::BAD_GATEWAY, format!("upstream failed: {other}")),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let upstream = TestServer::start().await;
    upstream.script(
        "/price",
        [Reply::status(502), Reply::ok().body("42.00 EUR")],
    );

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let state = AppState {
        upstream: Pipeline::new().service(client),
        base: format!("http://{}", upstream.addr()),
    };
    let app = Router::new().route("/price", get(price)).with_state(state);

    // The app on 127.0.0.1, port chosen by the system.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // One call to the app, as a user would make.
    let caller = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = caller
        .request(Request::get(format!("http://{addr}/price")).body(Empty::new())?)
        .await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    println!(
        "GET /price on the app -> {status}: {}",
        String::from_utf8_lossy(&body)
    );
    println!(
        "the upstream logged {} requests (a 502, retried, then the price)",
        upstream.requests_to("/price").len()
    );
    assert_eq!(status, StatusCode::OK);
    server.abort();
    Ok(())
}
