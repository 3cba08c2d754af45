//! The tour: the standard pipeline against simulators of four real APIs, and against a server
//! that misbehaves on purpose.
//!
//! Run it with `cargo run --release --example tour`. Everything runs on 127.0.0.1: the
//! simulators of `towline-testkit` (IXON, Attraqt, Open2b, Telecom X, faithful to their error
//! docs, with their minutes scaled to seconds) and a plain test server for transport faults.
//! Each scenario prints what the server did (read from its own request log), what towline did
//! (attempts, waits, refreshes, the decoded error), the outcome, and the call's timeline, drawn
//! from the spans and events towline emits (a `Timeline` subscriber).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tower::{BoxError, Service, ServiceExt};
use towline::auth::from_fn;
use towline::breaker::{CircuitBreakerLayer, CircuitState, Settings};
use towline::{
    Attempts, ClientCredentials, Error, Pipeline, Timeline, Token, TokenRefreshLayer, vendors,
};
use towline_testkit::vendors::{
    ATTRAQT_CLIENT, AttraqtSim, IxonSim, OPEN2B_KEY, Open2bSim, TelecomXSim,
};
use towline_testkit::{Reply, TestServer};
use tracing_subscriber::layer::SubscriberExt;

/// The tour's one subscriber: it keeps the timeline of every call the pipelines make.
static TIMELINE: OnceLock<Timeline> = OnceLock::new();

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let timeline = TIMELINE.get_or_init(Timeline::new).clone();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(timeline))?;
    let started = Instant::now();
    println!("towline tour: the standard pipeline against four API simulators and a faulty server");
    println!(
        "pipeline: CallSpan > Deadline 30s > Retry (3, 100ms..10s full jitter, 20% budget) > CircuitBreaker"
    );
    println!(
        "          > RateLimit > Auth > AttemptSpan > NoRedirect > Timeout (10s head, 30s idle body)"
    );
    println!("          > ErrorBody > Decompression > client\n");
    ixon().await?;
    attraqt().await?;
    open2b().await?;
    telecom_x().await?;
    faults().await?;
    circuit().await?;
    println!("tour finished in {} ms", started.elapsed().as_millis());
    Ok(())
}

/// One call through `service`: the status and body, or towline's typed error.
async fn call<S, B, ReqB>(
    service: &S,
    request: Request<ReqB>,
) -> Result<(Response<()>, Bytes), Error>
where
    S: Service<Request<ReqB>, Response = Response<B>, Error = BoxError> + Clone,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let response = service
        .clone()
        .oneshot(request)
        .await
        .map_err(Error::from)?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| Error::from(e.into()))?
        .to_bytes();
    Ok((Response::from_parts(parts, ()), body))
}

/// Prints one outcome: the status and attempts, or the error, its kind, body and hint; then the
/// timeline of the last call made.
fn report(label: &str, outcome: &Result<(Response<()>, Bytes), Error>) {
    print_outcome(label, outcome);
    let calls = TIMELINE.get().map(Timeline::take).unwrap_or_default();
    if let Some(last) = calls.last() {
        for line in last.to_string().lines() {
            println!("      | {line}");
        }
    }
}

fn print_outcome(label: &str, outcome: &Result<(Response<()>, Bytes), Error>) {
    match outcome {
        Ok((response, body)) => {
            let attempts = Attempts::from_extensions(response.extensions());
            println!(
                "  {label}: {} ({} body bytes) after {}",
                response.status(),
                body.len(),
                requests(attempts)
            );
        }
        Err(err) => {
            println!(
                "  {label}: error after {}: {:?}",
                requests(err.attempts()),
                err.kind()
            );
            // What finally happened, each cause once: "gave up after 4 attempts: 503 ...".
            println!("      {}", err.chain());
            if let Some(api) = err.api() {
                match &api.code {
                    Some(code) => println!(
                        "      decoded: {} body, kind {}, code {code}",
                        api.format, api.kind
                    ),
                    None => println!("      decoded: {} body, kind {}", api.format, api.kind),
                }
            }
            if let Some(reason) = err.auth_reason() {
                println!("      auth reason: {reason}");
            }
            if let Some(hint) = err.retry_hint() {
                println!("      server's wait: {hint}");
            }
        }
    }
}

/// How many requests a call sent, and why each after the first was sent again.
fn requests(attempts: Option<&Attempts>) -> String {
    let Some(attempts) = attempts else {
        return "1 attempt".to_owned();
    };
    let mut text = format!("{} attempts", attempts.count());
    if attempts.replays() > 0 {
        text.push_str(&format!(" ({} after a token refresh)", attempts.replays()));
    }
    if !attempts.earlier().is_empty() {
        let earlier: Vec<String> = attempts.earlier().iter().map(ToString::to_string).collect();
        text.push_str(&format!(", re-sent after {}", earlier.join(", ")));
    }
    text
}

fn client<B>() -> Client<hyper_util::client::legacy::connect::HttpConnector, B>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    Client::builder(TokioExecutor::new()).build_http()
}

async fn timed<T>(future: impl Future<Output = T>) -> (T, u128) {
    let start = Instant::now();
    let value = future.await;
    (value, start.elapsed().as_millis())
}

async fn ixon() -> Result<(), BoxError> {
    println!("IXON Cloud APIv2 (burst limit 5/s, lock 600 s)");
    let sim = IxonSim::start(5, Duration::from_secs(600)).await;
    let issuer = sim.clone();
    let source = from_fn(move || {
        let token = issuer.issue_token();
        async move { Token::new(token) }
    });
    let service = vendors::ixon("tour-app", "tour-company", TokenRefreshLayer::new(source))?
        .service(client::<Empty<Bytes>>());
    let get = || Request::get(sim.server.url("/api/devices")).body(Empty::new());

    report("list devices", &call(&service, get()?).await);
    let sent = &sim.server.requests_to("/api/devices")[0];
    println!(
        "      server saw Api-Version {:?}, Api-Application {:?}, Api-Company {:?}, Authorization sensitive",
        sent.header("api-version").unwrap_or("-"),
        sent.header("api-application").unwrap_or("-"),
        sent.header("api-company").unwrap_or("-"),
    );
    sim.expire_tokens();
    report("token expired", &call(&service, get()?).await);
    println!(
        "      tokens issued: {} (one refresh, one replay)",
        sim.tokens_issued()
    );
    sim.require_2fa(true);
    report("2FA required", &call(&service, get()?).await);
    println!(
        "      tokens issued: {} (no refresh for 2FA)",
        sim.tokens_issued()
    );
    sim.require_2fa(false);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut last = None;
    for _ in 0..6 {
        last = Some(call(&service, get()?).await);
    }
    if let Some(last) = &last {
        report("6th call in a second (burst lock)", last);
    }
    println!(
        "      server log: {} requests\n",
        sim.server.request_count()
    );
    Ok(())
}

async fn attraqt() -> Result<(), BoxError> {
    println!("Attraqt Items API (OAuth client credentials, 3 calls/s, 2 x 503 \"in preparation\")");
    let sim = AttraqtSim::start(Duration::from_secs(3600), 2, 3).await;
    let tokens = ClientCredentials::new(
        client::<Full<Bytes>>(),
        sim.server.url("/oauth/token"),
        ATTRAQT_CLIENT.0,
        ATTRAQT_CLIENT.1,
    );
    let service = vendors::attraqt(tokens).service(client::<Empty<Bytes>>());
    let get = || Request::get(sim.server.url("/items")).body(Empty::new());
    let (outcome, ms) = timed(call(&service, get()?)).await;
    report("get items while the API scales up", &outcome);
    println!("      took {ms} ms; tokens issued: {}", sim.tokens_issued());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (outcomes, ms) = timed(async {
        let mut outcomes = Vec::new();
        for _ in 0..4 {
            outcomes.push(call(&service, get()?).await);
        }
        Ok::<_, BoxError>(outcomes)
    })
    .await;
    let outcomes = outcomes?;
    report("4th call in a second (429 + Retry-After: 1)", &outcomes[3]);
    println!(
        "      4 calls took {ms} ms: the Retry-After was honoured; server log: {} item requests\n",
        sim.server.requests_to("/items").len()
    );
    Ok(())
}

async fn open2b() -> Result<(), BoxError> {
    println!(
        "Open2b 7.8 (POST only, X-Key, quota 3 per 3 s in the simulator, errors inside HTTP 200)"
    );
    let sim = Open2bSim::start(3, Duration::from_secs(3)).await;
    let service = vendors::open2b(Token::new(OPEN2B_KEY)?).service(client::<Full<Bytes>>());
    let url = sim.server.url("/api/v7.8/commerce.products.add");
    let post = |body: &'static str| {
        Request::post(url.clone())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
    };
    report(
        "add a product without a name (200 + error)",
        &call(&service, post(r#"{"price":10}"#)?).await,
    );
    report(
        "add a product",
        &call(&service, post(r#"{"name":"rope"}"#)?).await,
    );
    report(
        "add another",
        &call(&service, post(r#"{"name":"knot"}"#)?).await,
    );
    let (outcome, ms) = timed(call(&service, post(r#"{"name":"hook"}"#)?)).await;
    report("4th call in the window (503 + X-Wait-Seconds)", &outcome);
    println!(
        "      took {ms} ms; products processed: {} (each POST at most once)",
        sim.processed()
    );
    let before = sim.server.requests_to(url.path()).len();
    let old = Request::post(sim.server.url("/old")).body(Full::new(Bytes::new()))?;
    report("a 301", &call(&service, old).await);
    println!(
        "      requests that followed it to the target: {}\n",
        sim.server.requests_to(url.path()).len() - before
    );
    Ok(())
}

async fn telecom_x() -> Result<(), BoxError> {
    println!("Telecom X (sessions of 15 minutes, scaled to 2 s here)");
    let sim = TelecomXSim::start(Duration::from_secs(2)).await;
    let login = sim.server.url("/login");
    let logins = Arc::new(AtomicUsize::new(0));
    let counted = logins.clone();
    let source = from_fn(move || {
        let url = login.clone();
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            let response = client::<Empty<Bytes>>()
                .request(Request::post(url).body(Empty::new())?)
                .await?;
            let body = response.into_body().collect().await?.to_bytes();
            let value: serde_json::Value = serde_json::from_slice(&body)?;
            Ok::<_, BoxError>(Token::new(value["token"].as_str().ok_or("no token")?)?)
        }
    });
    let service = vendors::telecom_x(source).service(client::<Empty<Bytes>>());
    let get =
        |id: &str| Request::get(sim.server.url(&format!("/mvno/accounts/{id}"))).body(Empty::new());
    report("get account 42", &call(&service, get("42")?).await);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    report(
        "after the session expired (401 expired)",
        &call(&service, get("42")?).await,
    );
    println!("      logins: {}", logins.load(Ordering::SeqCst));
    report("an unknown account", &call(&service, get("7")?).await);
    println!();
    Ok(())
}

async fn faults() -> Result<(), BoxError> {
    println!("Transport faults (a plain test server; per-attempt timeout 1 s here)");
    let server = TestServer::start().await;
    server.route("/hang", Reply::ok().delay(Duration::from_secs(3)));
    server.route("/stall", Reply::ok().body("0123456789").stall_body_after(4));
    server.script("/reset", [Reply::reset(), Reply::ok().body("fine")]);
    server.route(
        "/moved",
        Reply::redirect(302, &server.url("/steal-token").to_string()),
    );
    let service = Pipeline::new()
        .timeout(
            towline::TimeoutLayer::new(Duration::from_secs(1))
                .body_timeout(Duration::from_millis(500)),
        )
        .deadline(towline::DeadlineLayer::new(Duration::from_secs(5)))
        .service(client::<Empty<Bytes>>());
    for path in ["/hang", "/stall", "/reset", "/moved"] {
        let request = Request::get(server.url(path))
            .header("authorization", "Bearer tour-secret")
            .body(Empty::new())?;
        let (outcome, ms) = timed(call(&service, request)).await;
        report(path, &outcome);
        println!(
            "      took {ms} ms; server log: {} request(s)",
            server.requests_to(path).len()
        );
    }
    println!(
        "  redirects followed: {} (requests to /steal-token in the server's log)\n",
        server.requests_to("/steal-token").len()
    );
    server.shutdown().await;
    Ok(())
}

async fn circuit() -> Result<(), BoxError> {
    println!("A circuit breaker (3 failures in a row open it for 1 s; then one probe)");
    let server = TestServer::start().await;
    server.route("/sick", Reply::status(500));
    let breaker = CircuitBreakerLayer::with_settings(
        Settings::new()
            .consecutive_failures(3)
            .break_duration(Duration::from_secs(1))
            .probes(1),
    )?;
    let circuits = breaker.circuits();
    let service = Pipeline::new()
        .circuit_breaker(breaker)
        .service(client::<Empty<Bytes>>());
    let get = || Request::get(server.url("/sick")).body(Empty::new());
    let key = server.authority().to_string();

    report(
        "a server failing every request",
        &call(&service, get()?).await,
    );
    println!(
        "      circuit: {}; server log: {} requests (the 4th attempt was refused unsent)",
        circuit_label(circuits.state(&key)),
        server.request_count()
    );
    let (outcome, ms) = timed(call(&service, get()?)).await;
    report("while the circuit is open", &outcome);
    println!(
        "      took {ms} ms; server log: {} requests (nothing sent)",
        server.request_count()
    );
    server.route("/sick", Reply::ok().body("recovered"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    report(
        "after the break, the server recovered",
        &call(&service, get()?).await,
    );
    println!(
        "      circuit: {}; server log: {} requests (one probe closed it)\n",
        circuit_label(circuits.state(&key)),
        server.request_count()
    );
    server.shutdown().await;
    Ok(())
}

fn circuit_label(state: Option<CircuitState>) -> String {
    match state {
        Some(CircuitState::Open { until }) => format!(
            "open for {} ms more",
            until.saturating_duration_since(Instant::now()).as_millis()
        ),
        Some(CircuitState::HalfOpen { probes_in_flight }) => {
            format!("half-open, {probes_in_flight} probe(s) in flight")
        }
        Some(CircuitState::ForcedOpen) => "forced open".to_owned(),
        Some(CircuitState::Closed { .. }) | None => "closed".to_owned(),
        Some(other) => format!("{other:?}"),
    }
}
