//! The chaos soak: the standard pipeline over hyper-util against a server injecting faults at
//! random (fixed seed), thousands of calls, dozens at once, under a paused clock. Everything
//! asserted is read from the server's own records. The circuit breaker is on, as in the
//! default `Pipeline`: the faults open it, and calls it ends must have been due another attempt.
//! Hedging is on: a slow answer draws a hedge (never for a POST without an idempotency key),
//! and the call's outcome must match whichever of the two answered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::{BoxError, ServiceExt};
use towline::auth::from_fn;
use towline::breaker::{CircuitBreakerLayer, Settings};
use towline::{
    Attempts, DeadlineLayer, Error, ErrorKind, HedgeLayer, Pipeline, TimeoutLayer, Token,
    TokenRefreshLayer,
};
use towline_testkit::{Reply, TestServer};

const SEED: u64 = 0x70_71_1e;
const WORKERS: usize = 40;
const CALLS_PER_WORKER: usize = 75;
const ROTATE_EVERY: u64 = 300;
const DEADLINE: Duration = Duration::from_secs(30);
const HEDGE_AFTER: Duration = Duration::from_millis(500);
const SLOW: Duration = Duration::from_millis(1500);

/// What the server did with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Ok,
    /// A 200, after longer than the hedge delay.
    Slow,
    Wait503,
    Wait429,
    Error500,
    ResetBeforeHead,
    ResetAfterHead,
    Stall,
    Redirect,
    ApiError(u16),
    Unauthorized,
}

impl Fault {
    /// Whether the side effect of the request happened.
    fn processed(self) -> bool {
        matches!(
            self,
            Fault::Ok | Fault::Slow | Fault::Error500 | Fault::ResetAfterHead | Fault::Stall
        )
    }
}

/// The server's records.
#[derive(Default)]
struct Books {
    /// Per call id: the faults served to each attempt, in order.
    served: HashMap<String, Vec<Fault>>,
    /// Per call id: whether the request was a POST without an idempotency key.
    unkeyed_post: HashMap<String, bool>,
    /// Requests with a stale token.
    unauthorized: usize,
}

/// Error bodies of every format, with their statuses.
const BODIES: [(u16, &str, &str); 8] = [
    (
        400,
        "application/json",
        r#"{"type":"Error","data":[{"message":"Required header","propertyName":"Api-Company"}],"moreAfter":null,"status":"error"}"#,
    ),
    (
        404,
        "application/json",
        r#"{"code":5,"message":"Item not found","details":[]}"#,
    ),
    (
        422,
        "application/problem+json",
        r#"{"type":"https://example.com/invalid","title":"Invalid","status":422,"detail":"qty must be positive"}"#,
    ),
    (
        409,
        "application/json",
        r#"{"error":{"code":"address.zip","status":409,"message":"Zip in use"}}"#,
    ),
    (
        400,
        "application/json",
        r#"{"error":{"code":400,"message":"Bad","status":"INVALID_ARGUMENT","details":[]}}"#,
    ),
    (
        402,
        "application/json",
        r#"{"error":{"type":"card_error","code":"card_declined","message":"declined","param":"card"}}"#,
    ),
    (
        422,
        "application/json",
        r#"{"message":"Validation Failed","errors":[{"field":"title","code":"missing_field"}],"documentation_url":"https://docs.github.com/rest"}"#,
    ),
    (
        422,
        "application/vnd.api+json",
        r#"{"errors":[{"status":"422","code":"invalid","source":{"pointer":"/data/attributes/name"},"title":"Invalid"}]}"#,
    ),
];

fn start_chaos(server: &TestServer, books: Arc<Mutex<Books>>, token_generation: Arc<AtomicU64>) {
    let rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(SEED)));
    let requests = Arc::new(AtomicU64::new(0));
    let elsewhere = server.url("/elsewhere").to_string();
    server.route_fn("/op", move |request| {
        let id = request.header("x-call-id").unwrap_or("?").to_owned();
        let mut books = books.lock().unwrap();
        let unkeyed = request.method == Method::POST && request.header("idempotency-key").is_none();
        books.unkeyed_post.insert(id.clone(), unkeyed);

        // Every ROTATE_EVERY requests the token expires.
        let n = requests.fetch_add(1, Ordering::SeqCst) + 1;
        if n.is_multiple_of(ROTATE_EVERY) {
            token_generation.fetch_add(1, Ordering::SeqCst);
        }
        let valid = format!("Bearer soak-{}", token_generation.load(Ordering::SeqCst));
        let (fault, reply) = if request.header("authorization") != Some(valid.as_str()) {
            books.unauthorized += 1;
            (Fault::Unauthorized, Reply::status(401))
        } else {
            let roll = rng.lock().unwrap().u32(0..100);
            match roll {
                0..=54 => (Fault::Ok, Reply::ok().body("done")),
                55..=59 => (Fault::Slow, Reply::ok().body("done").delay(SLOW)),
                60..=64 => (
                    Fault::Wait503,
                    Reply::status(503).header("x-wait-seconds", "1"),
                ),
                65..=69 => (
                    Fault::Wait429,
                    Reply::status(429).header("retry-after", "1"),
                ),
                70..=74 => (Fault::Error500, Reply::status(500)),
                75..=77 => (Fault::ResetBeforeHead, Reply::reset()),
                78..=80 => (
                    Fault::ResetAfterHead,
                    Reply::ok().body("0123456789").reset_after_head(),
                ),
                81..=82 => (
                    Fault::Stall,
                    Reply::ok().body("0123456789").stall_body_after(2),
                ),
                83..=84 => (Fault::Redirect, Reply::redirect(302, &elsewhere)),
                _ => {
                    let (status, content_type, body) = BODIES[roll as usize % BODIES.len()];
                    (
                        Fault::ApiError(status),
                        Reply::status(status)
                            .header("content-type", content_type)
                            .body(body),
                    )
                }
            }
        };
        books.served.entry(id).or_default().push(fault);
        reply
    });
}

/// The waits the client was told about, seen where requests leave it: a request that leaves
/// after a 429/503 asking for a second arrived and before that second is over was sent while
/// the gate was closed. (Watched at the client, not at the server: under a paused clock,
/// virtual time may move on while a request is on the loopback socket, so a request sent
/// before the gate closed could arrive inside it.)
#[derive(Default)]
struct GateWatch {
    /// When each 429/503 with a wait reached the client.
    told: Vec<Instant>,
    sent_while_closed: usize,
}

/// Whether a call's outcome matches what the server did for it: the last request, or, for a
/// hedged call, either of the last two (the first answer wins, and an attempt that fails
/// first waits for the other one's answer).
fn consistent_with_served(
    served: &[Fault],
    hedged: bool,
    outcome: &Result<StatusCode, ErrorKind>,
) -> bool {
    match served {
        [.., first, hedge] if hedged => {
            consistent(Some(*first), outcome) || consistent(Some(*hedge), outcome)
        }
        _ => consistent(served.last().copied(), outcome),
    }
}

/// Whether a call's outcome matches the last thing the server did for it.
fn consistent(last: Option<Fault>, outcome: &Result<StatusCode, ErrorKind>) -> bool {
    use ErrorKind as K;
    let network = |k: &ErrorKind| matches!(k, K::Network { .. });
    match (last, outcome) {
        // An open circuit ends a call at once, where a first attempt, a retry or the resend
        // after a token refresh was due: never after an answer that ends the call anyway.
        (
            None
            | Some(
                Fault::Wait503
                | Fault::Wait429
                | Fault::Error500
                | Fault::ResetBeforeHead
                | Fault::Stall
                | Fault::Unauthorized,
            ),
            Err(K::CircuitOpen),
        ) => true,
        // Nothing reached the server: the gate or the deadline stopped the call first.
        (None, Err(kind)) => matches!(kind, K::RateLimited | K::DeadlineExceeded),
        (None, Ok(_)) => false,
        (Some(Fault::Ok | Fault::Slow), Ok(status)) => *status == StatusCode::OK,
        (Some(Fault::Ok | Fault::Slow), Err(kind)) => matches!(kind, K::DeadlineExceeded),
        (Some(Fault::Wait503 | Fault::Wait429), Err(kind)) => {
            matches!(
                kind,
                K::RateLimited | K::Api | K::RetryBudgetExhausted | K::DeadlineExceeded
            )
        }
        // A retryable failure whose retry then met a gate another call's 429/503 closed
        // past the call's deadline (or `max_wait`) ends `RateLimited`.
        (Some(Fault::Error500), Err(kind)) => matches!(
            kind,
            K::Api | K::RetryBudgetExhausted | K::DeadlineExceeded | K::RateLimited
        ),
        (Some(Fault::ResetBeforeHead), Err(kind)) => {
            network(kind)
                || matches!(
                    kind,
                    K::RetryBudgetExhausted | K::DeadlineExceeded | K::RateLimited
                )
        }
        // The head came: the body read fails.
        (Some(Fault::ResetAfterHead), Err(kind)) => {
            network(kind) || matches!(kind, K::DeadlineExceeded)
        }
        (Some(Fault::Stall), Err(kind)) => {
            matches!(kind, K::Timeout | K::DeadlineExceeded | K::RateLimited)
        }
        (Some(Fault::Redirect), Err(kind)) => matches!(kind, K::Redirected | K::DeadlineExceeded),
        (Some(Fault::ApiError(_)), Err(kind)) => matches!(kind, K::Api | K::DeadlineExceeded),
        // The resend after the refresh goes through the gate, which may hold it too long.
        (Some(Fault::Unauthorized), Err(kind)) => {
            matches!(kind, K::Auth | K::DeadlineExceeded | K::RateLimited)
        }
        _ => false,
    }
}

#[tokio::test(start_paused = true)]
async fn chaos_soak() {
    let server = TestServer::start().await;
    let books = Arc::new(Mutex::new(Books::default()));
    let generation = Arc::new(AtomicU64::new(1));
    start_chaos(&server, books.clone(), generation.clone());

    let fetches = Arc::new(AtomicUsize::new(0));
    let (g, f) = (generation.clone(), fetches.clone());
    let source = from_fn(move || {
        f.fetch_add(1, Ordering::SeqCst);
        let token = format!("soak-{}", g.load(Ordering::SeqCst));
        async move { Token::new(token) }
    });
    let gates = Arc::new(Mutex::new(GateWatch::default()));
    let (watch, told) = (gates.clone(), gates.clone());
    let client = tower::ServiceBuilder::new()
        .map_request(move |request: Request<Full<Bytes>>| {
            let now = Instant::now();
            let mut watch = watch.lock().unwrap();
            let second = Duration::from_secs(1);
            if watch.told.iter().any(|at| now > *at && now < *at + second) {
                watch.sent_while_closed += 1;
            }
            request
        })
        .map_response(move |response: http::Response<_>| {
            if matches!(response.status().as_u16(), 429 | 503) {
                told.lock().unwrap().told.push(Instant::now());
            }
            response
        })
        .service(Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>());
    // The retry jitter is seeded too; only the gate's release spread is not (it draws from
    // fastrand's per-thread generator).
    let service = Pipeline::new()
        .retry(towline::RetryLayer::with_policy(
            towline::RetryPolicy::new().seed(SEED),
        ))
        // The chaos server fails about one attempt in ten, all the time: the default breaker
        // (10 % over 30 s) would stay open for most of the run. This one opens on short bursts
        // (three failures in a row), so the soak sees it open, probe and close among the rest.
        .circuit_breaker(
            CircuitBreakerLayer::with_settings(
                Settings::new()
                    .failure_ratio(0.5)
                    .consecutive_failures(3)
                    .break_duration(Duration::from_secs(1))
                    .max_break(Duration::from_secs(4)),
            )
            .expect("valid settings"),
        )
        .hedge(HedgeLayer::after(HEDGE_AFTER))
        .deadline(DeadlineLayer::new(DEADLINE))
        .timeout(TimeoutLayer::new(Duration::from_secs(2)).body_timeout(Duration::from_secs(2)))
        .auth(TokenRefreshLayer::new(source))
        .service(client);

    let started = Instant::now();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let service = service.clone();
            let url = server.url("/op");
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                // Workers pause a little between calls, so that calls start at every moment,
                // also while a gate is closed.
                let mut think = fastrand::Rng::with_seed(SEED + worker as u64);
                for call in 0..CALLS_PER_WORKER {
                    tokio::time::sleep(Duration::from_millis(think.u64(0..400))).await;
                    let id = format!("{worker}-{call}");
                    let mut builder = Request::builder().uri(url.clone()).header("x-call-id", &id);
                    builder = match call % 3 {
                        0 => builder.method(Method::GET),
                        1 => builder.method(Method::POST),
                        _ => builder.method(Method::POST).header("idempotency-key", &id),
                    };
                    let request = builder.body(Full::new(Bytes::from_static(b"{}"))).unwrap();
                    let begun = Instant::now();
                    let hedges = |a: Option<&Attempts>| a.map_or(0, Attempts::hedges);
                    let (outcome, hedges) = match service.clone().oneshot(request).await {
                        Ok(response) => {
                            let status = response.status();
                            let hedges = hedges(Attempts::from_extensions(response.extensions()));
                            match response.into_body().collect().await {
                                Ok(_) => (Ok(status), hedges),
                                Err(err) => (Err(Error::from(BoxError::from(err)).kind()), hedges),
                            }
                        }
                        Err(err) => {
                            let err = Error::from(err);
                            (Err(err.kind()), hedges(err.attempts()))
                        }
                    };
                    outcomes.push((id, outcome, begun.elapsed(), hedges));
                }
                outcomes
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for worker in workers {
        outcomes.extend(worker.await.expect("no worker panicked"));
    }
    let virtual_time = started.elapsed();

    let books = books.lock().unwrap();
    let calls = WORKERS * CALLS_PER_WORKER;
    let attempts: usize = books.served.values().map(Vec::len).sum();
    let successes = outcomes.iter().filter(|(_, o, ..)| o.is_ok()).count();
    let mut by_kind: HashMap<String, usize> = HashMap::new();
    for (_, outcome, ..) in &outcomes {
        let key = match outcome {
            Ok(status) => format!("ok {status}"),
            Err(kind) => format!("{kind:?}"),
        };
        *by_kind.entry(key).or_default() += 1;
    }
    println!(
        "soak: {calls} calls, {attempts} requests served, {successes} successes, virtual time {virtual_time:?}"
    );
    println!("soak: outcomes {by_kind:?}");
    println!(
        "soak: token fetches {}, token generations {}, 401s served {}",
        fetches.load(Ordering::SeqCst),
        generation.load(Ordering::SeqCst),
        books.unauthorized
    );

    // The breaker took part: bursts opened it, and calls went on after.
    assert!(
        by_kind.contains_key("CircuitOpen"),
        "the circuit never opened"
    );

    // Nothing lost: every call issued has exactly one outcome.
    assert_eq!(outcomes.len(), calls);
    let mut ids: Vec<&String> = outcomes.iter().map(|(id, ..)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), calls, "each call accounted for exactly once");

    // Every call ended within its deadline, in a success or a typed error matching the server.
    for (id, outcome, took, hedges) in &outcomes {
        assert!(
            *took <= DEADLINE + Duration::from_millis(1),
            "{id} took {took:?}"
        );
        let served = books.served.get(id).map_or(&[][..], Vec::as_slice);
        assert!(
            consistent_with_served(served, *hedges > 0, outcome),
            "{id}: server did {:?}, client got {outcome:?}",
            books.served.get(id)
        );
    }

    // No POST without a key processed twice.
    for (id, faults) in &books.served {
        if books.unkeyed_post.get(id) == Some(&true) {
            let processed = faults.iter().filter(|f| f.processed()).count();
            assert!(
                processed <= 1,
                "{id} processed {processed} times: {faults:?}"
            );
        }
    }

    // Hedging took part, never for a POST without a key.
    let hedged: usize = outcomes.iter().filter(|(.., hedges)| *hedges > 0).count();
    assert!(hedged > 0, "no call was hedged");
    for (id, .., hedges) in &outcomes {
        if books.unkeyed_post.get(id) == Some(&true) {
            assert_eq!(*hedges, 0, "{id}, an unkeyed POST, was hedged");
        }
    }
    println!("soak: calls hedged: {hedged}");

    // No redirect followed.
    assert!(server.requests_to("/elsewhere").is_empty());

    // Attempts within the retry budget's bound (20 % of calls + 10/s floor over the run and the
    // 10 s window), plus one replay per 401 (the auth layer's, outside the budget).
    let floor = 10 * (virtual_time.as_secs() as usize + 10);
    let bound = calls + calls / 5 + floor + books.unauthorized;
    assert!(attempts <= bound, "{attempts} attempts > bound {bound}");

    // Single flight: one fetch at the start and one per token expiry.
    assert_eq!(
        fetches.load(Ordering::SeqCst) as u64,
        generation.load(Ordering::SeqCst),
        "token refreshes equal expiries (+ the first)"
    );

    // Nothing sent while the key's gate was closed.
    assert_eq!(
        gates.lock().unwrap().sent_while_closed,
        0,
        "requests sent while the gate was closed"
    );
    println!(
        "soak: sent while the gate was closed: 0; redirects followed: 0; unkeyed POSTs processed twice: 0"
    );
}
