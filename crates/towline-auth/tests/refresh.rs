//! TokenRefreshLayer against the loopback server: one refresh for many stale requests, no
//! refresh for what a refresh cannot fix, proactive refresh, OAuth client credentials, and no
//! token in any output.

mod capture;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Layer, ServiceExt, service_fn};

use capture::Capture;
use towline_auth::{ClientCredentials, Token, TokenRefresh, TokenRefreshLayer, from_fn};
use towline_core::{ApiError, ApiErrorKind, ApiFormat, AuthReason, Error, ErrorKind};
use towline_testkit::{Reply, TestServer};

type Http = Client<HttpConnector, Full<Bytes>>;

fn client() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A token source handing out "token-1", "token-2", ... and counting its calls.
fn counting_source(
    calls: Arc<AtomicUsize>,
    lifetime: Option<Duration>,
) -> impl towline_auth::TokenSource {
    from_fn(move || {
        let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            // A slow token endpoint, so concurrent requests really overlap the refresh.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let token = Token::new(format!("token-{n}"))?;
            Ok::<_, BoxError>(match lifetime {
                Some(lifetime) => token.expires_in(lifetime),
                None => token,
            })
        }
    })
}

/// A server accepting only the current token (`Bearer token-N`, N = `valid`).
fn protected(server: &TestServer, valid: Arc<AtomicUsize>) {
    server.route_fn("/api", move |request| {
        let expected = format!("Bearer token-{}", valid.load(Ordering::SeqCst));
        if request.header("authorization") == Some(expected.as_str()) {
            Reply::ok().body("data")
        } else {
            Reply::status(401)
        }
    });
}

fn get(server: &TestServer) -> Request<Full<Bytes>> {
    Request::get(server.url("/api"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn fifty_requests_on_an_expired_token_cause_exactly_one_refresh() {
    let server = TestServer::start().await;
    let valid = Arc::new(AtomicUsize::new(1));
    protected(&server, valid.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let service: TokenRefresh<Http> =
        TokenRefreshLayer::new(counting_source(calls.clone(), None)).layer(client());

    // Warm up: token-1 fetched and used.
    assert_eq!(
        service
            .clone()
            .oneshot(get(&server))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // The server rotates: token-1 is now stale, token-2 will be valid.
    valid.store(2, Ordering::SeqCst);
    let requests: Vec<_> = (0..50)
        .map(|_| tokio::spawn(service.clone().oneshot(get(&server))))
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one refresh for all 50");
    let log = server.requests_to("/api");
    let with_new = log
        .iter()
        .filter(|r| r.header("authorization") == Some("Bearer token-2"))
        .count();
    assert_eq!(
        with_new, 50,
        "each request replayed once with the new token"
    );
}

#[tokio::test(start_paused = true)]
async fn two_fa_sso_and_403_are_never_refreshed() {
    let cases = [
        (
            401,
            r#"{"type":"Error","data":[{"message":"2FA is required"}],"moreAfter":null,"status":"error"}"#,
            Some(AuthReason::TwoFactorRequired),
        ),
        (
            401,
            r#"{"type":"Error","data":[{"message":"SSO is required"}],"moreAfter":null,"status":"error"}"#,
            Some(AuthReason::SsoRequired),
        ),
        (
            401,
            r#"{"type":"Error","data":[{"message":"Value is too short","propertyName":"Authorization"}],"moreAfter":null,"status":"error"}"#,
            Some(AuthReason::TokenTooShort),
        ),
        (
            403,
            r#"{"code": 7, "message": "Missing role", "details": []}"#,
            None,
        ),
    ];
    for (status, body, reason) in cases {
        let calls = Arc::new(AtomicUsize::new(0));
        let upstream = service_fn(move |_req: Request<Full<Bytes>>| async move {
            let status = StatusCode::from_u16(status).unwrap();
            let err = towline_envelope_like(status, body);
            Err::<Response<()>, BoxError>(Box::new(err))
        });
        let err = TokenRefreshLayer::new(counting_source(calls.clone(), None))
            .layer(upstream)
            .oneshot(Request::new(Full::new(Bytes::new())))
            .await
            .unwrap_err();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "only the first fetch, no refresh"
        );
        let err = Error::from(err);
        match reason {
            Some(reason) => {
                assert_eq!(err.kind(), ErrorKind::Auth);
                assert_eq!(err.auth_reason(), Some(reason));
            }
            None => {
                assert_eq!(err.kind(), ErrorKind::Api);
                assert_eq!(err.api().unwrap().kind, ApiErrorKind::Forbidden);
            }
        }
    }
}

/// What the error-body layer would produce for these bodies (decoded by hand here, so this
/// crate's tests do not depend on the envelope crate).
fn towline_envelope_like(status: StatusCode, body: &str) -> ApiError {
    let mut err = ApiError::new(status, ApiFormat::Ixon);
    let reason = if body.contains("2FA") {
        Some(AuthReason::TwoFactorRequired)
    } else if body.contains("SSO") {
        Some(AuthReason::SsoRequired)
    } else if body.contains("too short") {
        Some(AuthReason::TokenTooShort)
    } else {
        None
    };
    if let Some(reason) = reason {
        err.kind = ApiErrorKind::Auth(reason);
    }
    err
}

#[tokio::test(start_paused = true)]
async fn a_second_401_right_after_a_refresh_ends_with_a_typed_error() {
    let server = TestServer::start().await;
    server.route("/api", Reply::status(401));
    let calls = Arc::new(AtomicUsize::new(0));
    let err = TokenRefreshLayer::new(counting_source(calls.clone(), None))
        .layer(client())
        .oneshot(get(&server))
        .await
        .unwrap_err();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the first fetch and one refresh"
    );
    assert_eq!(server.requests_to("/api").len(), 2, "one replay, no loop");
    assert_eq!(Error::from(err).kind(), ErrorKind::Auth);
}

#[tokio::test(start_paused = true)]
async fn a_failing_source_fails_every_waiter_and_the_next_call_tries_again() {
    let server = TestServer::start().await;
    let valid = Arc::new(AtomicUsize::new(1));
    protected(&server, valid.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let source = from_fn(move || {
        let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if n == 1 {
                return Err::<Token, BoxError>("token endpoint down".into());
            }
            Ok(Token::new("token-1")?)
        }
    });
    let service = TokenRefreshLayer::new(source).layer(client());
    let requests: Vec<_> = (0..10)
        .map(|_| tokio::spawn(service.clone().oneshot(get(&server))))
        .collect();
    for request in requests {
        let err = Error::from(request.await.unwrap().unwrap_err());
        assert_eq!(err.kind(), ErrorKind::Auth);
        assert_eq!(err.auth_reason(), Some(AuthReason::SourceFailed));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "single flight, also when failing"
    );
    assert!(
        server.requests_to("/api").is_empty(),
        "nothing sent without a token"
    );
    let response = service.oneshot(get(&server)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the next call asked again");
}

#[tokio::test(start_paused = true)]
async fn a_token_is_refreshed_in_the_background_before_it_expires() {
    let server = TestServer::start().await;
    // As real servers do, token-1 stays valid until it expires while token-2 is issued.
    server.route_fn("/api", |request| match request.header("authorization") {
        Some("Bearer token-1" | "Bearer token-2") => Reply::ok().body("data"),
        _ => Reply::status(401),
    });
    let calls = Arc::new(AtomicUsize::new(0));
    // Telecom X sessions: 15 minutes.
    let service = TokenRefreshLayer::new(counting_source(
        calls.clone(),
        Some(Duration::from_secs(900)),
    ))
    .layer(client());
    service.clone().oneshot(get(&server)).await.unwrap();
    tokio::time::advance(Duration::from_secs(830)).await;
    service.clone().oneshot(get(&server)).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "70 s left: still fresh");
    tokio::time::advance(Duration::from_secs(20)).await;
    // 50 s left, inside the 60 s margin: served with token-1 at once, one refresh behind it.
    let response = service.clone().oneshot(get(&server)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let response = service.oneshot(get(&server)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let log = server.requests_to("/api");
    let tokens: Vec<_> = log.iter().map(|r| r.header("authorization")).collect();
    assert_eq!(
        tokens,
        [Some("Bearer token-1"); 3]
            .into_iter()
            .chain([Some("Bearer token-2")])
            .collect::<Vec<_>>(),
        "no 401 round trip"
    );
}

#[tokio::test(start_paused = true)]
async fn client_credentials_against_a_token_endpoint() {
    let server = TestServer::start().await;
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    server.route_fn("/oauth/token", move |request| {
        let form: Vec<(String, String)> = form_pairs(&request.body);
        let ok = request.method == http::Method::POST
            && request.header("content-type") == Some("application/x-www-form-urlencoded")
            && form.contains(&("grant_type".into(), "client_credentials".into()))
            && form.contains(&("client_id".into(), "items-client".into()))
            && form.contains(&("client_secret".into(), "s3cr3t&=?".into()))
            && form.contains(&("scope".into(), "items:write".into()));
        if !ok {
            return Reply::status(401).json(r#"{"error":"invalid_client"}"#);
        }
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Reply::ok().json(format!(
            r#"{{"access_token":"at-{n}","token_type":"Bearer","expires_in":3600}}"#
        ))
    });
    server.route_fn("/items", |request| match request.header("authorization") {
        Some("Bearer at-1") => Reply::ok().body("items"),
        _ => Reply::status(401),
    });
    let source = ClientCredentials::new(
        client(),
        server.url("/oauth/token"),
        "items-client",
        "s3cr3t&=?",
    )
    .scope("items:write");
    let service = TokenRefreshLayer::new(source).layer(client());
    let response = service
        .oneshot(
            Request::get(server.url("/items"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"items");
    assert_eq!(issued.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refused_client_is_a_typed_error_without_the_secret() {
    let server = TestServer::start().await;
    server.route(
        "/oauth/token",
        Reply::status(401).json(r#"{"error":"invalid_client"}"#),
    );
    server.route("/items", Reply::ok());
    let source = ClientCredentials::new(
        client(),
        server.url("/oauth/token"),
        "c",
        "very-secret-value",
    );
    assert!(!format!("{source:?}").contains("very-secret-value"));
    let err = TokenRefreshLayer::new(source)
        .layer(client())
        .oneshot(
            Request::get(server.url("/items"))
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap_err();
    let err = Error::from(err);
    assert_eq!(err.auth_reason(), Some(AuthReason::SourceFailed));
    let text = format!("{err} {err:?}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(!text.contains("very-secret-value"));
    assert!(server.requests_to("/items").is_empty());
}

fn form_pairs(body: &Bytes) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn a_token_with_a_newline_is_a_typed_error_not_a_panic() {
    let source = from_fn(|| async { Token::new("abc\r\nX-Evil: 1") });
    let upstream =
        service_fn(|_req: Request<Full<Bytes>>| async { Ok::<_, BoxError>(Response::new(())) });
    let err = TokenRefreshLayer::new(source)
        .layer(upstream)
        .oneshot(Request::new(Full::new(Bytes::new())))
        .await
        .unwrap_err();
    assert_eq!(
        Error::from(err).auth_reason(),
        Some(AuthReason::SourceFailed)
    );
}

#[tokio::test(start_paused = true)]
async fn no_token_bytes_in_tracing_debug_or_errors() {
    let capture = Capture::default();
    // Global, not `set_default`: a thread-scoped subscriber misses events whose callsite
    // another test's thread registered first (tracing caches a callsite's interest), which
    // made this test fail under load. Events of tests running alongside are captured too,
    // and must not leak a token either.
    tracing::subscriber::set_global_default(capture.clone())
        .expect("the only global subscriber in this test binary");
    let server = TestServer::start().await;
    let valid = Arc::new(AtomicUsize::new(1));
    protected(&server, valid.clone());
    let calls = Arc::new(AtomicUsize::new(0));
    let layer = TokenRefreshLayer::new(counting_source(calls.clone(), None));
    let service = layer.layer(client());
    service.clone().oneshot(get(&server)).await.unwrap();
    valid.store(2, Ordering::SeqCst);
    service.clone().oneshot(get(&server)).await.unwrap();
    valid.store(99, Ordering::SeqCst);
    let err = service.clone().oneshot(get(&server)).await.unwrap_err();
    let mut output = capture.0.lock().unwrap().clone();
    output.push_str(&format!("{layer:?} {service:?} {err} {err:?}"));
    for secret in ["token-1", "token-2", "token-3"] {
        assert!(!output.contains(secret), "{secret} leaked: {output}");
    }
    assert!(
        output.contains("refreshing"),
        "the capture saw the refresh events: {output}"
    );
}
