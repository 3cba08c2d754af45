//! The tour: towline's layers against a real loopback server that misbehaves on purpose.
//!
//! Run it with `cargo run --release --example tour`. For each scenario it starts a fresh
//! `towline-testkit` server on 127.0.0.1 (so each has its own rate-limit key), scripts the
//! server's replies, sends requests through a hyper-util client wrapped in towline's layers,
//! and prints what the server did (from its own request log), what the client got, and how
//! `towline_core::Error` classified it. Every line about the server comes from its log.
//!
//! This version covers the layers built so far: deadline, retry, rate-limit, no-redirect,
//! per-attempt timeout and error-body decoding. It grows until it drives the full standard
//! pipeline (with token refresh) through each vendor.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use towline_core::{Attempts, Error};
use towline_envelope::ErrorBodyLayer;
use towline_ratelimit::RateLimitLayer;
use towline_redirect::NoRedirectLayer;
use towline_retry::{RetryLayer, RetryPolicy};
use towline_testkit::{Reply, TestServer};
use towline_timeout::{DeadlineLayer, TimeoutLayer};

/// The stack under test, type-erased so the scenarios can share one value.
type Stack = BoxCloneSyncService<Request<Empty<Bytes>>, Response<Bytes>, BoxError>;

struct Scenario {
    name: &'static str,
    server_does: &'static str,
    /// The replies to script on `/api`, given the server (for a redirect to itself).
    replies: fn(&TestServer) -> Vec<Reply>,
    /// How many calls to make at once.
    calls: usize,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "success",
        server_does: "answers 200 with a JSON body",
        replies: |_| vec![Reply::ok().json(r#"{"status":"success","data":[]}"#)],
        calls: 1,
    },
    Scenario {
        name: "scaling up",
        server_does: "answers 503, 503, then 200 (Attraqt's \"API in preparation\")",
        replies: |_| {
            vec![
                Reply::status(503),
                Reply::status(503),
                Reply::ok().body("ready"),
            ]
        },
        calls: 1,
    },
    Scenario {
        name: "rate limited",
        server_does: "answers 429 with Retry-After: 1 once, then 200; 4 calls at once",
        replies: |_| vec![Reply::status(429).header("retry-after", "1"), Reply::ok()],
        calls: 4,
    },
    Scenario {
        name: "wait too long",
        server_does: "answers 503 with X-Wait-Seconds: 30 (Open2b's way to say wait)",
        replies: |_| vec![Reply::status(503).header("x-wait-seconds", "30")],
        calls: 1,
    },
    Scenario {
        name: "absurd hint",
        server_does: "answers 429 with Retry-After: 99999999999",
        replies: |_| vec![Reply::status(429).header("retry-after", "99999999999")],
        calls: 1,
    },
    Scenario {
        name: "token expired",
        server_does: "answers 401 with IXON's envelope: Invalid value on Authorization",
        replies: |_| {
            vec![Reply::status(401).json(
                r#"{"type":"Error","data":[{"message":"Invalid value","propertyName":"Authorization"}],"moreAfter":null,"status":"error"}"#,
            )]
        },
        calls: 1,
    },
    Scenario {
        name: "redirect",
        server_does: "answers 302 to /steal-token on itself",
        replies: |server| {
            vec![Reply::redirect(
                302,
                &server.url("/steal-token").to_string(),
            )]
        },
        calls: 1,
    },
    Scenario {
        name: "hang",
        server_does: "waits 3 s before sending the head",
        replies: |_| vec![Reply::ok().delay(Duration::from_secs(3))],
        calls: 1,
    },
    Scenario {
        name: "stall",
        server_does: "sends the head and 4 body bytes, then stalls",
        replies: |_| vec![Reply::ok().body("0123456789").stall_body_after(4)],
        calls: 1,
    },
    Scenario {
        name: "reset",
        server_does: "reads the request, then resets the TCP connection",
        replies: |_| vec![Reply::reset()],
        calls: 1,
    },
];

/// Deadline > Retry > RateLimit > NoRedirect > Timeout > ErrorBody > hyper-util client.
fn stack(client: Client<HttpConnector, Empty<Bytes>>) -> Stack {
    let service = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Duration::from_secs(5)))
        .layer(RetryLayer::with_policy(RetryPolicy::new().seed(7)))
        .layer(RateLimitLayer::new())
        .layer(NoRedirectLayer::new())
        .layer(TimeoutLayer::new(Duration::from_secs(1)).body_timeout(Duration::from_millis(500)))
        .layer(ErrorBodyLayer::new())
        .service(client)
        // Read the body inside the call, so body timeouts and the deadline count.
        .and_then(collect);
    BoxCloneSyncService::new(service)
}

/// A response with its whole body read.
async fn collect<B>(response: Response<B>) -> Result<Response<Bytes>, BoxError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
    Ok(Response::from_parts(parts, bytes))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let stack = stack(client);
    println!("towline tour: the layers against misbehaving loopback servers");
    println!(
        "stack: Deadline(5s) > Retry(3 retries, 100ms..10s full jitter, budget) > RateLimit\n       > NoRedirect > Timeout(head 1s, body idle 500ms) > ErrorBody > hyper-util client\n"
    );
    let mut redirects_followed = 0;
    for scenario in SCENARIOS {
        let server = TestServer::start().await;
        server.script("/api", (scenario.replies)(&server));
        let started = Instant::now();
        let calls: Vec<_> = (0..scenario.calls)
            .map(|_| {
                let request = Request::get(server.url("/api"))
                    .header("authorization", "Bearer tour-secret")
                    .body(Empty::new());
                let stack = stack.clone();
                tokio::spawn(async move { stack.oneshot(request?).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for call in calls {
            outcomes.push(call.await?);
        }
        let took = started.elapsed();
        let arrivals: Vec<u128> = server
            .requests_to("/api")
            .iter()
            .map(|r| (r.arrived_at - started).as_millis())
            .collect();
        redirects_followed += server.requests_to("/steal-token").len();

        println!("{}", scenario.name);
        println!("  server:  {}", scenario.server_does);
        println!(
            "  log:     {} request(s), arriving at {arrivals:?} ms",
            arrivals.len()
        );
        println!("  took:    {} ms", took.as_millis());
        for outcome in outcomes {
            report(outcome);
        }
        println!();
        server.shutdown().await;
    }
    println!(
        "redirects followed: {redirects_followed} (requests to /steal-token in the servers' logs)"
    );
    Ok(())
}

fn report(outcome: Result<Response<Bytes>, BoxError>) {
    match outcome {
        Ok(response) => {
            let attempts =
                Attempts::from_extensions(response.extensions()).map_or(1, Attempts::count);
            println!(
                "  client:  {}, {} body bytes, {attempts} attempt(s)",
                response.status(),
                response.body().len()
            );
        }
        Err(err) => {
            let err = Error::from(err);
            let attempts = err.attempts().map_or(1, Attempts::count);
            println!(
                "  client:  error after {attempts} attempt(s): {}",
                chain(err.get_ref())
            );
            println!("  towline: ErrorKind::{:?}", err.kind());
            if let Some(api) = err.api() {
                println!("  decoded: {} body, kind {}", api.format, api.kind);
            }
            if let Some(hint) = err.retry_hint() {
                println!("  hint:    {hint}");
            }
        }
    }
}

/// An error and its sources, outermost first: "client error (SendRequest): connection reset".
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}
