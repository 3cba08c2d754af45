//! The tour: towline's layers against a real loopback server that misbehaves on purpose.
//!
//! Run it with `cargo run --release --example tour`. It starts `towline-testkit` on
//! 127.0.0.1, scripts one fault per scenario, sends one request through a hyper-util client
//! wrapped in towline's layers, and prints, per scenario, what the server did (from its own
//! request log), what the client got, and how `towline_core::Error` classified it.
//!
//! This is the first version of the tour: it covers the layers built so far (no-redirect,
//! retry, per-attempt timeout, whole-call deadline, error-body decoding) and core's error model
//! and retry hints. It grows
//! with each layer until it drives the full standard pipeline through each vendor.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use towline_core::{Attempts, Error};
use towline_envelope::ErrorBodyLayer;
use towline_redirect::NoRedirectLayer;
use towline_retry::{RetryLayer, RetryPolicy};
use towline_testkit::{Reply, TestServer};
use towline_timeout::{DeadlineLayer, TimeoutLayer};

struct Scenario {
    path: &'static str,
    server_does: &'static str,
    reply: Reply,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = TestServer::start().await;
    // The redirect points at this same server, so its log would show a followed redirect.
    let elsewhere = server.url("/steal-token").to_string();
    let scenarios = [
        Scenario {
            path: "/ok",
            server_does: "answers 200 with a JSON body",
            reply: Reply::ok().json(r#"{"status":"success","data":[]}"#),
        },
        Scenario {
            path: "/scaling-up",
            server_does: "answers 503, 503, then 200 (Attraqt's \"API in preparation\")",
            reply: Reply::ok(),
        },
        Scenario {
            path: "/busy",
            server_does: "answers 503 with X-Wait-Seconds: 30 (Open2b's way to say wait)",
            reply: Reply::status(503).header("x-wait-seconds", "30"),
        },
        Scenario {
            path: "/slow-down",
            server_does: "answers 429 with Retry-After: 99999999999 (absurd)",
            reply: Reply::status(429).header("retry-after", "99999999999"),
        },
        Scenario {
            path: "/token-expired",
            server_does: "answers 401 with IXON's envelope: Invalid value on Authorization",
            reply: Reply::status(401).json(
                r#"{"type":"Error","data":[{"message":"Invalid value","propertyName":"Authorization"}],"moreAfter":null,"status":"error"}"#,
            ),
        },
        Scenario {
            path: "/moved",
            server_does: "answers 302 to /steal-token",
            reply: Reply::redirect(302, &elsewhere),
        },
        Scenario {
            path: "/hang",
            server_does: "waits 3 s before sending the head",
            reply: Reply::ok().delay(Duration::from_secs(3)),
        },
        Scenario {
            path: "/stall",
            server_does: "sends the head and 4 body bytes, then stalls",
            reply: Reply::ok().body("0123456789").stall_body_after(4),
        },
        Scenario {
            path: "/reset",
            server_does: "reads the request, then resets the TCP connection",
            reply: Reply::reset(),
        },
    ];
    for scenario in &scenarios {
        server.route(scenario.path, scenario.reply.clone());
    }
    server.script(
        "/scaling-up",
        [
            Reply::status(503),
            Reply::status(503),
            Reply::ok().body("ready"),
        ],
    );

    // The layers built so far, outermost first, over hyper-util's legacy client.
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let stack = ServiceBuilder::new()
        .layer(DeadlineLayer::new(Duration::from_secs(5)))
        .layer(RetryLayer::with_policy(RetryPolicy::new().seed(7)))
        .layer(NoRedirectLayer::new())
        .layer(TimeoutLayer::new(Duration::from_secs(1)).body_timeout(Duration::from_millis(500)))
        .layer(ErrorBodyLayer::new())
        .service(client);

    println!(
        "towline tour: layers against a misbehaving server on {}",
        server.addr()
    );
    println!(
        "stack: Deadline(5s) > Retry(3 retries, 100ms..10s full jitter, budget) > NoRedirect\n       > Timeout(head 1s, body idle 500ms) > ErrorBody > hyper-util client\n"
    );

    for scenario in &scenarios {
        let request = Request::get(server.url(scenario.path))
            .header("authorization", "Bearer tour-secret")
            .body(Empty::new())?;
        let started = tokio::time::Instant::now();
        let outcome = stack.clone().oneshot(request).await;
        let outcome = match outcome {
            Ok(response) => read_body(response).await,
            Err(err) => Err(err),
        };
        let took = started.elapsed();

        println!("{}", scenario.path);
        println!("  server:  {}", scenario.server_does);
        println!(
            "  log:     {} request(s) received on this path",
            server.requests_to(scenario.path).len()
        );
        println!("  took:    {} ms", took.as_millis());
        match outcome {
            Ok((status, len, attempts)) => {
                println!("  client:  {status}, {len} body bytes");
                println!(
                    "  retry:   {} attempt(s)",
                    attempts.map_or(1, |a| a.count())
                );
            }
            Err(err) => {
                let err = Error::from(err);
                println!("  client:  error: {}", chain(err.get_ref()));
                println!("  towline: ErrorKind::{:?}", err.kind());
                if let Some(api) = err.api() {
                    println!("  decoded: {} body, kind {}", api.format, api.kind);
                }
                if let Some(hint) = err.retry_hint() {
                    println!("  hint:    {hint}");
                }
                println!(
                    "  retry:   {} attempt(s)",
                    err.attempts().map_or(1, |a| a.count())
                );
            }
        }
        println!();
    }

    println!(
        "redirects followed: {} (requests to /steal-token in the server's log); requests logged: {}",
        server.requests_to("/steal-token").len(),
        server.request_count()
    );
    server.shutdown().await;
    Ok(())
}

type Outcome = (http::StatusCode, usize, Option<Attempts>);

async fn read_body<B>(response: Response<B>) -> Result<Outcome, BoxError>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.map_err(Into::into)?.to_bytes();
    let attempts = Attempts::from_extensions(&parts.extensions).cloned();
    Ok((parts.status, bytes.len(), attempts))
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
