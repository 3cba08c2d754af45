//! Each vendor preset driven through a realistic scenario against its simulator, checking
//! the outcome the vendor's own documentation promises.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Service, ServiceExt};
use towline::core::{
    ApiCode, ApiErrorKind, ApiFormat, AuthReason, RateLimitReason, RateLimited, Target,
};
use towline::vendors;
use towline::{ClientCredentials, Error, ErrorKind, Token, TokenRefreshLayer, auth::from_fn};
use towline_testkit::vendors::{
    ATTRAQT_CLIENT, AttraqtSim, IxonSim, OPEN2B_KEY, Open2bSim, TelecomXSim,
};

fn http<B: http_body::Body + Send + 'static>() -> Client<HttpConnector, B>
where
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    Client::builder(TokioExecutor::new()).build_http()
}

/// One call; the body read into bytes, or the typed error.
async fn call<S, B, ReqB>(service: &S, request: Request<ReqB>) -> Result<(StatusCode, Bytes), Error>
where
    S: Service<Request<ReqB>, Response = http::Response<B>, Error = BoxError> + Clone,
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    let response = service
        .clone()
        .oneshot(request)
        .await
        .map_err(Error::from)?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Error::from(e.into()))?
        .to_bytes();
    Ok((status, body))
}

// ------------------------------------------------------------------------------------ IXON

#[tokio::test(start_paused = true)]
async fn ixon_headers_token_refresh_2fa_and_the_burst_lock() {
    let sim = IxonSim::start(5, Duration::from_secs(600)).await;
    let issuer = sim.clone();
    let source = from_fn(move || {
        let token = issuer.issue_token();
        async move { Token::new(token) }
    });
    let service = vendors::ixon("app-1", "company-1", TokenRefreshLayer::new(source))
        .unwrap()
        .service(http::<Empty<Bytes>>());
    let get = || {
        Request::get(sim.server.url("/api/devices"))
            .body(Empty::new())
            .unwrap()
    };

    // The headers IXON requires, and a bearer token.
    let (status, body) = call(&service, get()).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("Press 4"));
    let sent = &sim.server.requests_to("/api/devices")[0];
    assert_eq!(sent.header("api-version"), Some("2"));
    assert_eq!(sent.header("api-application"), Some("app-1"));
    assert_eq!(sent.header("api-company"), Some("company-1"));
    assert!(
        sent.header("authorization")
            .unwrap()
            .starts_with("Bearer ixon-")
    );

    // An expired token: 401 "Invalid value" on Authorization -> one refresh, one replay.
    sim.expire_tokens();
    tokio::time::advance(Duration::from_secs(2)).await;
    let (status, _) = call(&service, get()).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.tokens_issued(), 2);

    // 2FA required: a typed auth error, no refresh.
    sim.require_2fa(true);
    tokio::time::advance(Duration::from_secs(2)).await;
    let err = call(&service, get()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.auth_reason(), Some(AuthReason::TwoFactorRequired));
    assert_eq!(sim.tokens_issued(), 2);
    sim.require_2fa(false);

    // The burst limit: the 6th request in a second trips a 10-minute lock. Retrying into it
    // only extends it: the call fails at once with the instant the lock ends, not retried.
    tokio::time::advance(Duration::from_secs(2)).await;
    let before = sim.server.requests_to("/api/devices").len();
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        outcomes.push(call(&service, get()).await);
    }
    let tripped = tokio::time::Instant::now();
    let last = outcomes.pop().unwrap().unwrap_err();
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(last.kind(), ErrorKind::RateLimited);
    assert_eq!(last.api().unwrap().kind, ApiErrorKind::RateLimited);
    assert_eq!(last.api().unwrap().format, ApiFormat::Ixon);
    let limited = last.find::<RateLimited>().unwrap();
    assert_eq!(limited.reason(), RateLimitReason::WaitTooLong);
    assert!(limited.until() >= tripped + Duration::from_secs(599));
    assert_eq!(
        sim.server.requests_to("/api/devices").len(),
        before + 6,
        "no retry"
    );
    // Every later call to IXON fails fast at the closed gate, without reaching the server.
    let held = call(&service, get()).await.unwrap_err();
    assert_eq!(held.kind(), ErrorKind::RateLimited);
    assert_eq!(sim.server.requests_to("/api/devices").len(), before + 6);
}

// --------------------------------------------------------------------------------- Attraqt

#[tokio::test(start_paused = true)]
async fn attraqt_client_credentials_preparation_5xx_and_retry_after() {
    let sim = AttraqtSim::start(Duration::from_secs(3600), 2, 3).await;
    let tokens = ClientCredentials::new(
        http::<Full<Bytes>>(),
        sim.server.url("/oauth/token"),
        ATTRAQT_CLIENT.0,
        ATTRAQT_CLIENT.1,
    );
    let service = vendors::attraqt(tokens).service(http::<Empty<Bytes>>());
    let get = || {
        Request::get(sim.server.url("/items"))
            .body(Empty::new())
            .unwrap()
    };

    // "API in preparation" twice: retried with backoff, then the items.
    let (status, body) = call(&service, get()).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("sku-1"));
    assert_eq!(sim.server.requests_to("/items").len(), 3);
    assert_eq!(sim.tokens_issued(), 1, "the token is reused");

    // Past the per-second limit: 429 + Retry-After: 1 holds the call, then it succeeds.
    tokio::time::advance(Duration::from_secs(2)).await;
    let start = tokio::time::Instant::now();
    for _ in 0..4 {
        let (status, _) = call(&service, get()).await.unwrap();
        assert_eq!(status, StatusCode::OK);
    }
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "the Retry-After was honoured"
    );

    // An hour later the token has expired: refreshed before use, no 401 seen.
    tokio::time::advance(Duration::from_secs(3600)).await;
    let before = sim.server.requests_to("/items").len();
    let (status, _) = call(&service, get()).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sim.tokens_issued(), 2);
    assert_eq!(sim.server.requests_to("/items").len(), before + 1);
}

// ---------------------------------------------------------------------------------- Open2b

#[tokio::test(start_paused = true)]
async fn open2b_in_band_errors_quota_wait_redirects_and_keys() {
    let sim = Open2bSim::start(3, Duration::from_secs(10)).await;
    let service = vendors::open2b(Token::new(OPEN2B_KEY).unwrap()).service(http::<Full<Bytes>>());
    let url = sim.server.url("/api/v7.8/commerce.products.add");
    let post = |body: &'static str| {
        Request::post(url.clone())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    };

    // An error inside an HTTP 200 is an error.
    let err = call(&service, post(r#"{"price":10}"#)).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(api.status, StatusCode::OK);
    assert_eq!(api.format, ApiFormat::Open2b);
    assert_eq!(api.code, Some(ApiCode::from("Missing")));
    assert_eq!(api.target, Some(Target::Field("name".into())));

    // Two more calls use up the quota of 3 per 10 s; the 4th gets 503 + X-Wait-Seconds,
    // waits, and is sent again (a 503 with a wait proves the POST was not processed).
    call(&service, post(r#"{"name":"rope"}"#)).await.unwrap();
    call(&service, post(r#"{"name":"knot"}"#)).await.unwrap();
    let start = tokio::time::Instant::now();
    let (status, _) = call(&service, post(r#"{"name":"hook"}"#)).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "waited for the window: {:?}",
        start.elapsed()
    );
    assert_eq!(sim.processed(), 3, "no call processed twice");

    // Never follow a redirect.
    let err = call(
        &service,
        Request::post(sim.server.url("/old"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Redirected);
    assert_eq!(sim.server.requests_to("/old").len(), 1);

    // The key travels in X-Key, marked sensitive; a wrong key is a typed auth error.
    assert_eq!(
        sim.server.requests_to(url.path())[0].header("x-key"),
        Some(OPEN2B_KEY)
    );
    let wrong = vendors::open2b(Token::new("stolen").unwrap()).service(http::<Full<Bytes>>());
    let err = call(&wrong, post(r#"{"name":"x"}"#)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.auth_reason(), Some(AuthReason::CredentialsInvalid));
}

// ------------------------------------------------------------------------------- Telecom X

#[tokio::test(start_paused = true)]
async fn telecom_x_sessions_expire_and_are_renewed_and_errors_are_typed() {
    let sim = TelecomXSim::start(Duration::from_secs(900)).await;
    let login_url = sim.server.url("/login");
    let logins = Arc::new(AtomicUsize::new(0));
    let counted = logins.clone();
    // The session's lifetime is not told to the client here: the 401 `expired` must drive
    // the refresh.
    let source = from_fn(move || {
        let url = login_url.clone();
        counted.fetch_add(1, Ordering::SeqCst);
        async move {
            let response = http::<Empty<Bytes>>()
                .request(Request::post(url).body(Empty::new())?)
                .await?;
            let body = response.into_body().collect().await?.to_bytes();
            let value: serde_json::Value = serde_json::from_slice(&body)?;
            let token = value["token"].as_str().ok_or("no token")?;
            Ok::<_, BoxError>(Token::new(token)?)
        }
    });
    let service = vendors::telecom_x(source).service(http::<Empty<Bytes>>());
    let get = |id: &str| {
        Request::get(sim.server.url(&format!("/mvno/accounts/{id}")))
            .body(Empty::new())
            .unwrap()
    };

    let (status, _) = call(&service, get("42")).await.unwrap();
    assert_eq!(status, StatusCode::OK);

    // 15 minutes later the session is gone: 401 `expired` -> a new session, the call goes on.
    tokio::time::advance(Duration::from_secs(901)).await;
    let (status, _) = call(&service, get("42")).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(logins.load(Ordering::SeqCst), 2);
    assert_eq!(sim.sessions_opened(), 2);

    // An unknown account: a typed 404 with the vendor's code and field.
    let err = call(&service, get("7")).await.unwrap_err();
    let api = err.api().unwrap();
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.format, ApiFormat::TelecomX);
    assert_eq!(api.code, Some(ApiCode::from("mvnoAccount")));
    assert_eq!(api.kind, ApiErrorKind::NotFound);
    assert!(err.find::<RateLimited>().is_none());
}

/// IXON calls a run of failures chronic: its preset opens the circuit after five in a row,
/// long before the standard minimum throughput.
#[tokio::test(start_paused = true)]
async fn the_ixon_preset_opens_the_circuit_after_five_failures_in_a_row() {
    let server = towline_testkit::TestServer::start().await;
    server.route("/api/devices", towline_testkit::Reply::status(502));
    let auth = TokenRefreshLayer::new(towline::StaticToken::new(Token::new("t").unwrap()));
    let service = vendors::ixon("app", "company", auth)
        .unwrap()
        .service(http::<Empty<Bytes>>());
    let get = || {
        Request::get(server.url("/api/devices"))
            .body(Empty::new())
            .unwrap()
    };
    // Four attempts (502s), then a fifth 502 opens it: the sixth is refused unsent.
    assert_eq!(
        call(&service, get()).await.unwrap_err().kind(),
        ErrorKind::Api
    );
    let err = call(&service, get()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen, "{}", err.chain());
    assert_eq!(server.request_count(), 5);
}
