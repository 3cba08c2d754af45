//! Runs one case of the success path 100,000 times, for `valgrind --tool=callgrind` to count
//! the instructions it takes: `benches/instructions.sh` runs every case and writes the
//! instructions per call, and their difference to the bare service, beside the criterion times.
//!
//! Instruction counts are exact and repeatable, where times on a shared 2-core VM drift by
//! tens of ns: they show what a change saves before criterion can. Each call is the same as in
//! the `layers` bench (a fresh GET with two headers, the service cloned, the body collected),
//! and building the requests is counted in every case alike.
//!
//! `cargo run --release -p towline-benches --example instructions -- <case>`; `list` prints
//! the cases, `sizes` the size of each case's response future and of its response.

#![allow(missing_docs)]

use std::fmt::Debug;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tokio::runtime::Runtime;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};
use towline_auth::{StaticToken, Token, TokenRefreshLayer};
use towline_envelope::ErrorBodyLayer;
use towline_ratelimit::RateLimitLayer;
use towline_redirect::NoRedirectLayer;
use towline_retry::{RetryLayer, RetryPolicy};
use towline_timeout::{DeadlineLayer, TimeoutLayer};

// The same request, upstream and tower policy as the `layers` bench.
#[path = "../benches/bodies/mod.rs"]
mod bodies;
#[path = "../benches/common/mod.rs"]
mod common;
use common::{
    BUDGET, HEAD, answer, loopback_request, request, server_thread, tower_pair, tower_retry,
    tower_retry_budget, towline_stack,
};

const CALLS: usize = 100_000;
/// Calls of a loopback case (each costs about ten times an in-memory one).
const LOOPBACK_CALLS: usize = 10_000;
/// Decodes of a decode case (a 1 KB body costs about five times an in-memory call).
const DECODE_CALLS: usize = 5_000;

const CASES: &[&str] = &[
    "bare",
    "tower-timeout",
    "tower-retry",
    "tower-retry+budget",
    "tower-retry+timeout",
    "noredirect",
    "timeout",
    "deadline",
    "ratelimit",
    "telemetry",
    "tower-http-trace",
    "breaker",
    "bulkhead",
    "hedge",
    "errorbody",
    "auth",
    "retry",
    "retry-no-budget",
    "retry+auth",
    "stack",
    "pipeline",
    "loopback-bare",
    "loopback-tower-retry+timeout",
    "loopback-stack",
    "loopback-pipeline",
    "decode-ixon",
    "decode-telecom",
    "decode-attraqt",
    "decode-open2b",
    "decode-problem+json",
    "decode-google",
    "decode-stripe",
    "decode-github",
    "decode-json:api",
];

/// What a case does with its service: run the calls, or print its future's size.
enum Mode {
    Run,
    Size,
}

fn go<S, B>(rt: &Runtime, mode: &Mode, name: &str, service: S)
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: Debug,
    B: Body<Data = Bytes>,
    B::Error: Debug,
{
    go_with(rt, mode, name, service, CALLS, &request);
}

/// Runs `calls` calls of `request()` through clones of `service`, or prints its future's size.
fn go_with<S, B>(
    rt: &Runtime,
    mode: &Mode,
    name: &str,
    mut service: S,
    calls: usize,
    request: &dyn Fn() -> Request<Full<Bytes>>,
) where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone,
    S::Error: Debug,
    B: Body<Data = Bytes>,
    B::Error: Debug,
{
    match mode {
        Mode::Size => {
            let _runtime = rt.enter();
            let future = service.call(request());
            println!(
                "{name}\t{} bytes\t{} bytes",
                std::mem::size_of_val(&future),
                std::mem::size_of::<Response<B>>()
            );
        }
        Mode::Run => {
            let requests: Vec<_> = (0..calls).map(|_| request()).collect();
            rt.block_on(async {
                for request in requests {
                    let response = service.clone().oneshot(request).await.expect("a response");
                    let body = response.into_body().collect().await.expect("the body");
                    std::hint::black_box(body);
                }
            });
        }
    }
}

fn case(rt: &Runtime, mode: &Mode, name: &str) {
    let inner = service_fn(answer);
    let auth = TokenRefreshLayer::new(StaticToken::new(
        Token::new("t0k3n").expect("a valid token"),
    ));
    let retry = || RetryLayer::with_policy(RetryPolicy::new().seed(7));
    match name {
        "bare" => go(rt, mode, name, inner),
        "tower-timeout" => go(
            rt,
            mode,
            name,
            tower::timeout::TimeoutLayer::new(HEAD).layer(inner),
        ),
        "tower-retry" => go(rt, mode, name, tower_retry().layer(inner)),
        "tower-retry+budget" => go(rt, mode, name, tower_retry_budget().layer(inner)),
        "tower-retry+timeout" => go(rt, mode, name, tower_pair(inner)),
        "noredirect" => go(rt, mode, name, NoRedirectLayer::new().layer(inner)),
        "timeout" => go(rt, mode, name, TimeoutLayer::new(HEAD).layer(inner)),
        "deadline" => go(rt, mode, name, DeadlineLayer::new(BUDGET).layer(inner)),
        "ratelimit" => go(rt, mode, name, RateLimitLayer::new().layer(inner)),
        "telemetry" => go(
            rt,
            mode,
            name,
            ServiceBuilder::new()
                .layer(towline_telemetry::CallSpanLayer::new())
                .layer(towline_telemetry::AttemptSpanLayer::new())
                .service(inner),
        ),
        // What the Pipeline's spans replaced, with no subscriber either.
        "tower-http-trace" => go(
            rt,
            mode,
            name,
            tower_http::trace::TraceLayer::new_for_http().layer(inner),
        ),
        "breaker" => go(
            rt,
            mode,
            name,
            towline_breaker::CircuitBreakerLayer::new().layer(inner),
        ),
        "bulkhead" => go(
            rt,
            mode,
            name,
            towline_breaker::BulkheadLayer::new(64).layer(inner),
        ),
        // Armed on every call, never fired: the answer comes at once.
        "hedge" => go(
            rt,
            mode,
            name,
            towline_retry::HedgeLayer::after(std::time::Duration::from_secs(1)).layer(inner),
        ),
        "errorbody" => go(rt, mode, name, ErrorBodyLayer::new().layer(inner)),
        "auth" => go(rt, mode, name, auth.layer(inner)),
        "retry" => go(rt, mode, name, retry().layer(inner)),
        "retry-no-budget" => go(
            rt,
            mode,
            name,
            RetryLayer::with_policy(RetryPolicy::new().no_budget().seed(7)).layer(inner),
        ),
        "retry+auth" => go(
            rt,
            mode,
            name,
            ServiceBuilder::new()
                .layer(retry())
                .layer(auth)
                .service(inner),
        ),
        "stack" => go(rt, mode, name, towline_stack(inner, auth)),
        "pipeline" => go(
            rt,
            mode,
            name,
            towline::Pipeline::new().auth(auth).service(inner),
        ),
        loopback if loopback.starts_with("loopback-") => loopback_case(mode, name),
        decode if decode.starts_with("decode-") => decode_case(mode, name),
        other => {
            eprintln!("unknown case {other:?}; `list` prints the cases");
            std::process::exit(2);
        }
    }
}

/// The decode cases: `towline_envelope::decode` of the `envelope` bench's body of one format
/// (`decode-ixon` decodes "ixon 401 (1 KB)"), no service. Read their instructions per call,
/// not the difference to the bare service.
fn decode_case(mode: &Mode, name: &str) {
    let format = name.trim_start_matches("decode-");
    let Some((_, status, body)) = bodies::bodies()
        .into_iter()
        .find(|(label, _, _)| label.split(' ').next() == Some(format))
    else {
        eprintln!("no body for {name:?}");
        std::process::exit(2);
    };
    let headers = http::HeaderMap::new();
    match mode {
        Mode::Size => println!(
            "{name}\t{} bytes (ApiError)\t-",
            std::mem::size_of::<towline_core::ApiError>()
        ),
        Mode::Run => {
            for _ in 0..DECODE_CALLS {
                let body = std::hint::black_box(body.clone());
                std::hint::black_box(towline_envelope::decode(status, &headers, body));
            }
        }
    }
}

/// The loopback cases: the testkit server on its own thread, hyper-util's legacy client.
fn loopback_case(mode: &Mode, name: &str) {
    let rt = &tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime with I/O");
    let url = server_thread();
    let request = move || loopback_request(&url);
    let client = {
        let _runtime = rt.enter();
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<Full<Bytes>>()
    };
    let auth = TokenRefreshLayer::new(StaticToken::new(
        Token::new("t0k3n").expect("a valid token"),
    ));
    match name {
        "loopback-bare" => go_with(rt, mode, name, client, LOOPBACK_CALLS, &request),
        "loopback-tower-retry+timeout" => {
            go_with(rt, mode, name, tower_pair(client), LOOPBACK_CALLS, &request)
        }
        "loopback-stack" => go_with(
            rt,
            mode,
            name,
            towline_stack(client, auth),
            LOOPBACK_CALLS,
            &request,
        ),
        _ => go_with(
            rt,
            mode,
            name,
            towline::Pipeline::new().auth(auth).service(client),
            LOOPBACK_CALLS,
            &request,
        ),
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    match std::env::args().nth(1).as_deref() {
        None | Some("list") => CASES.iter().for_each(|case| println!("{case}")),
        Some("sizes") => CASES.iter().for_each(|name| case(&rt, &Mode::Size, name)),
        Some("calls") => {
            let name = std::env::args().nth(2).unwrap_or_default();
            let calls = if name.starts_with("loopback-") {
                LOOPBACK_CALLS
            } else if name.starts_with("decode-") {
                DECODE_CALLS
            } else {
                CALLS
            };
            println!("{calls}");
        }
        Some(name) => case(&rt, &Mode::Run, name),
    }
}
