//! The testkit proved against a real client: hyper-util's legacy client over
//! loopback. Each fault is checked for what the client really observes, and
//! for how towline-core classifies it.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::time::{Instant, timeout};
use towline_core::{BoxError, ErrorKind};
use towline_testkit::{MAX_RECORDED_BODY, Reply, SHUTDOWN_GRACE, TestServer};

// ---------------------------------------------------------------- helpers

fn client() -> Client<HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn full_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn get(client: &Client<HttpConnector, Empty<Bytes>>, uri: http::Uri) -> Response<Incoming> {
    client.get(uri).await.expect("request failed")
}

async fn text(response: Response<Incoming>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body failed")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("body is not UTF-8")
}

/// The `io::ErrorKind`s found along an error's `source()` chain.
fn io_kinds(error: &(dyn StdError + 'static)) -> Vec<io::ErrorKind> {
    let mut kinds = Vec::new();
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            kinds.push(io.kind());
        }
        current = e.source();
    }
    kinds
}

/// How towline-core classifies an error, as a layer would see it (boxed).
fn towline_kind(error: impl Into<BoxError>) -> ErrorKind {
    towline_core::classify(&error.into())
}

const SENT: ErrorKind = ErrorKind::Network {
    may_have_reached_server: true,
};
const NOT_SENT: ErrorKind = ErrorKind::Network {
    may_have_reached_server: false,
};

// ---------------------------------------------------------------- routes

#[tokio::test]
async fn script_plays_in_order_then_repeats_the_last_reply() {
    let server = TestServer::start().await;
    server.script(
        "/s",
        [
            Reply::status(503).header("retry-after", "3"),
            Reply::status(429).json(r#"{"error":"slow down"}"#),
            Reply::ok().body("done"),
        ],
    );
    let client = client();

    let first = get(&client, server.url("/s")).await;
    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(first.headers()["retry-after"], "3");
    assert_eq!(text(first).await, "");

    let second = get(&client, server.url("/s?ignored=query")).await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.headers()["content-type"], "application/json");
    assert_eq!(second.headers()["content-length"], "21");
    assert_eq!(text(second).await, r#"{"error":"slow down"}"#);

    for _ in 0..3 {
        let again = get(&client, server.url("s")).await;
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(text(again).await, "done");
    }
    assert_eq!(server.requests_to("/s").len(), 5);
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_path_is_404_and_routes_can_change_while_running() {
    let server = TestServer::start().await;
    let client = client();

    let missing = get(&client, server.url("/nope")).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(text(missing).await.contains("GET /nope"));

    server
        .route("/nope", Reply::status(204))
        .route("/other", Reply::redirect(308, "/nope"));
    assert_eq!(get(&client, server.url("/nope")).await.status(), 204);
    let moved = get(&client, server.url("/other")).await;
    assert_eq!(moved.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(moved.headers()["location"], "/nope");

    // Replacing a route takes effect for the next request.
    server.route("/nope", Reply::status(410));
    assert_eq!(get(&client, server.url("/nope")).await.status(), 410);
    server.shutdown().await;
}

#[tokio::test]
async fn method_routes_win_over_any_method_routes() {
    let server = TestServer::start().await;
    server.route("/m", Reply::ok().body("any"));
    server.route_method(Method::DELETE, "/m", Reply::status(202).body("delete"));
    let client = client();

    assert_eq!(text(get(&client, server.url("/m")).await).await, "any");
    let delete = Request::delete(server.url("/m"))
        .body(Empty::new())
        .unwrap();
    let deleted = client.request(delete).await.unwrap();
    assert_eq!(deleted.status(), 202);
    assert_eq!(text(deleted).await, "delete");
    server.shutdown().await;
}

#[tokio::test]
async fn repeated_headers_are_all_sent() {
    let server = TestServer::start().await;
    server.route(
        "/h",
        Reply::ok()
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .header(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            ),
    );
    let response = get(&client(), server.url("/h")).await;
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[test]
#[should_panic(expected = "invalid value for x-bad")]
fn invalid_header_value_panics_at_construction() {
    let _ = Reply::ok().header("x-bad", "line\nbreak");
}

// ---------------------------------------------------------------- the log

#[tokio::test(start_paused = true)]
async fn log_records_method_path_headers_body_time_and_connection() {
    let server = TestServer::start().await;
    server.route("/log", Reply::status(201));
    let client = full_client();

    tokio::time::advance(Duration::from_secs(7)).await;
    let sent_at = Instant::now();
    let post = Request::post(server.url("/log?x=1"))
        .header("x-trace", "t-1")
        .body(Full::new(Bytes::from_static(b"hello body")))
        .unwrap();
    assert_eq!(client.request(post).await.unwrap().status(), 201);

    tokio::time::advance(Duration::from_secs(2)).await;
    let put = Request::put(server.url("/log"))
        .body(Full::new(Bytes::from_static(b"second")))
        .unwrap();
    assert_eq!(client.request(put).await.unwrap().status(), 201);

    let log = server.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(server.request_count(), 2);
    let first = &log[0];
    assert_eq!(first.method, Method::POST);
    assert_eq!(first.path, "/log");
    assert_eq!(first.uri, "/log?x=1");
    assert_eq!(first.query(), Some("x=1"));
    assert_eq!(first.header("x-trace"), Some("t-1"));
    assert_eq!(first.headers["content-length"], "10");
    assert_eq!(first.body, "hello body");
    assert!(first.body_complete && !first.body_truncated);
    // The clock is paused and nothing timed ran: arrival is exactly "now".
    assert_eq!(first.arrived_at, sent_at);
    assert_eq!(log[1].arrived_at, sent_at + Duration::from_secs(2));
    assert_eq!(log[1].method, Method::PUT);
    assert_eq!(log[1].body_text(), "second");

    // Keep-alive: both requests came on connection 1.
    assert_eq!((first.connection, log[1].connection), (1, 1));
    assert_eq!(server.connections_accepted(), 1);

    // A second client opens a second connection.
    get(&self::client(), server.url("/log")).await;
    assert_eq!(server.requests()[2].connection, 2);
    assert_eq!(server.connections_accepted(), 2);

    assert_eq!(server.requests_to("/log").len(), 3);
    assert!(server.requests_to("/other").is_empty());
    server.clear_log();
    assert_eq!(server.request_count(), 0);
    assert_eq!(server.connections_accepted(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn the_log_keeps_the_most_recent_requests_up_to_its_limit() {
    let server = TestServer::start().await;
    server.route("/n", Reply::ok());
    server.set_log_limit(3);
    for n in 0..5 {
        get(&client(), server.url(&format!("/n?i={n}"))).await;
    }
    let kept: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.query().unwrap_or("").to_owned())
        .collect();
    assert_eq!(kept, ["i=2", "i=3", "i=4"], "the oldest are dropped first");
    // Lowering the limit trims at once.
    server.set_log_limit(1);
    assert_eq!(server.request_count(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn request_bodies_beyond_the_cap_are_truncated_in_the_log() {
    let server = TestServer::start().await;
    server.route("/upload", Reply::ok());
    let big = Bytes::from(vec![7u8; MAX_RECORDED_BODY + 10]);
    let post = Request::post(server.url("/upload"))
        .body(Full::new(big))
        .unwrap();
    assert_eq!(full_client().request(post).await.unwrap().status(), 200);

    let logged = &server.requests_to("/upload")[0];
    assert_eq!(logged.body.len(), MAX_RECORDED_BODY);
    assert!(logged.body_truncated);
    assert!(logged.body_complete);
    server.shutdown().await;
}

// ---------------------------------------------------------------- timing

#[tokio::test(start_paused = true)]
async fn delay_holds_the_head_back_on_the_paused_clock() {
    let server = TestServer::start().await;
    server.route(
        "/slow",
        Reply::ok().body("late").delay(Duration::from_secs(5)),
    );
    let client = client();

    // The paused clock auto-advances while the server sleeps, real sockets
    // notwithstanding: loopback data is already there when tokio polls.
    let start = Instant::now();
    let response = get(&client, server.url("/slow")).await;
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(text(response).await, "late");
    // Logged when the head arrived, not when the reply went out.
    assert_eq!(server.requests()[0].arrived_at, start);

    // A client deadline shorter than the delay fires first.
    let start = Instant::now();
    let elapsed = timeout(Duration::from_secs(4), client.get(server.url("/slow")))
        .await
        .expect_err("the reply should be too late");
    assert_eq!(start.elapsed(), Duration::from_secs(4));
    assert_eq!(towline_kind(elapsed), ErrorKind::Timeout);
    // The request was seen even though the client gave up on it.
    assert_eq!(server.request_count(), 2);

    // The abandoned request leaves the server healthy.
    server.route("/fast", Reply::ok().body("fine"));
    assert_eq!(text(get(&client, server.url("/fast")).await).await, "fine");
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn slow_body_arrives_complete_and_paced() {
    let server = TestServer::start().await;
    let body: Bytes = (0..1000u32).map(|i| (i % 251) as u8).collect();
    server.route(
        "/drip",
        Reply::ok()
            .body(body.clone())
            .slow_body(10, Duration::from_millis(100)),
    );

    let start = Instant::now();
    let response = get(&client(), server.url("/drip")).await;
    assert_eq!(response.headers()["content-length"], "1000");
    // The head comes with the first piece, before any pause.
    assert_eq!(start.elapsed(), Duration::ZERO);

    let mut received = Vec::new();
    let mut frames = 0;
    let mut incoming = response.into_body();
    while let Some(frame) = incoming.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        frames += 1;
        received.extend_from_slice(&data);
    }
    assert_eq!(received, body);
    assert_eq!(frames, 10);
    // Nine pauses between ten pieces.
    assert_eq!(start.elapsed(), Duration::from_millis(900));
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stalled_body_hangs_until_the_client_gives_up() {
    let server = TestServer::start().await;
    server.route("/stall", Reply::ok().body("0123456789").stall_body_after(4));

    let response = get(&client(), server.url("/stall")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "10");
    let mut incoming = response.into_body();
    let first = incoming
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(first, "0123");

    let start = Instant::now();
    let elapsed = timeout(Duration::from_secs(30), incoming.frame())
        .await
        .expect_err("the stalled body must not make progress");
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert_eq!(towline_kind(elapsed), ErrorKind::Timeout);
    assert_eq!(server.requests_to("/stall").len(), 1);

    // The stalled response does not keep shutdown from finishing: it is
    // dropped after the grace period, and the client sees the body cut short.
    let start = Instant::now();
    server.shutdown().await;
    assert_eq!(start.elapsed(), SHUTDOWN_GRACE);
    let cut = incoming
        .frame()
        .await
        .expect("an error, not the end of the body")
        .expect_err("the body was cut short");
    // Observed: hyper::Error(Body, Custom { kind: UnexpectedEof, error: IncompleteBody })
    assert!(
        io_kinds(&cut).contains(&io::ErrorKind::UnexpectedEof),
        "{cut:?}"
    );
    assert_eq!(towline_kind(cut), SENT);
}

#[tokio::test]
async fn stalled_chunked_body_when_nothing_more_can_be_announced() {
    let server = TestServer::start().await;
    server.route("/stall", Reply::ok().body("abc").stall_body_after(3));
    let response = get(&client(), server.url("/stall")).await;
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let mut incoming = response.into_body();
    assert_eq!(
        incoming
            .frame()
            .await
            .unwrap()
            .unwrap()
            .into_data()
            .unwrap(),
        "abc"
    );
    // A short real wait: nothing paused here, so this proves no end arrives.
    assert!(
        timeout(Duration::from_millis(50), incoming.frame())
            .await
            .is_err()
    );
}

// ---------------------------------------------------------------- resets

#[tokio::test]
async fn reset_before_head_fails_the_request_with_connection_reset() {
    let server = TestServer::start().await;
    server.route("/reset", Reply::reset());
    let post = Request::post(server.url("/reset"))
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();

    let error = full_client()
        .request(post)
        .await
        .expect_err("a reset cannot yield a response");
    // Observed: Error(SendRequest, hyper::Error(Io, Os { code: 104, kind: ConnectionReset }))
    assert!(!error.is_connect(), "{error:?}");
    assert!(
        io_kinds(&error).contains(&io::ErrorKind::ConnectionReset),
        "{error:?}"
    );
    assert_eq!(towline_kind(error), SENT);

    // The request reached the server, body and all, before the reset.
    let logged = &server.requests_to("/reset")[0];
    assert_eq!(logged.body, "payload");
    assert!(logged.body_complete);
    server.shutdown().await;
}

#[tokio::test]
async fn reset_after_head_fails_the_body() {
    let server = TestServer::start().await;
    server.route(
        "/rah",
        Reply::status(500).body("never sent").reset_after_head(),
    );

    let response = get(&client(), server.url("/rah")).await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["content-length"], "10");
    let error = response
        .into_body()
        .collect()
        .await
        .expect_err("the body must fail");
    // Observed: hyper::Error(Body, Os { code: 104, kind: ConnectionReset })
    assert!(
        io_kinds(&error).contains(&io::ErrorKind::ConnectionReset),
        "{error:?}"
    );
    assert_eq!(towline_kind(error), SENT);
    server.shutdown().await;
}

// Multi-threaded on purpose: the server must behave the same there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_after_some_body_bytes_delivers_them_first() {
    let server = TestServer::start().await;
    server.route(
        "/rab",
        Reply::huge_body(1 << 20).reset_after_body_bytes(1000),
    );

    let response = get(&client(), server.url("/rab")).await;
    assert_eq!(response.headers()["content-length"], "1048576");
    let mut incoming = response.into_body();
    let mut received = 0usize;
    let error = loop {
        match incoming.frame().await {
            Some(Ok(frame)) => received += frame.into_data().unwrap().len(),
            Some(Err(e)) => break e,
            None => panic!("the body ended cleanly after {received} bytes"),
        }
    };
    assert_eq!(received, 1000);
    assert!(
        io_kinds(&error).contains(&io::ErrorKind::ConnectionReset),
        "{error:?}"
    );
    assert_eq!(towline_kind(error), SENT);
    server.shutdown().await;
}

#[tokio::test]
async fn a_reset_only_ends_its_own_connection() {
    let server = TestServer::start().await;
    server.script("/flaky", [Reply::reset(), Reply::ok().body("recovered")]);
    let client = client();

    assert!(client.get(server.url("/flaky")).await.is_err());
    assert_eq!(
        text(get(&client, server.url("/flaky")).await).await,
        "recovered"
    );
    let log = server.requests_to("/flaky");
    assert_eq!(log.len(), 2);
    assert_ne!(log[0].connection, log[1].connection);
    server.shutdown().await;
}

// ---------------------------------------------------------------- big bodies

#[tokio::test]
async fn huge_body_streams_with_its_length_and_pattern() {
    const LEN: u64 = 64 << 20;
    let server = TestServer::start().await;
    server.route("/huge", Reply::huge_body(LEN).with_status(500));

    let response = get(&client(), server.url("/huge")).await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        response.headers()["content-length"],
        LEN.to_string().as_str()
    );
    let mut incoming = response.into_body();
    let mut offset = 0u64;
    while let Some(frame) = incoming.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        // Spot-check the documented pattern (byte i is i % 256) at both ends
        // of every frame; checking every byte would be slow in debug builds.
        assert_eq!(data[0], (offset % 256) as u8);
        let last = offset + data.len() as u64 - 1;
        assert_eq!(data[data.len() - 1], (last % 256) as u8);
        offset += data.len() as u64;
    }
    assert_eq!(offset, LEN);
    server.shutdown().await;
}

// Multi-threaded on purpose: the server must behave the same there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_body_reads_as_far_as_the_client_wants() {
    const WANT: usize = 10 << 20;
    let server = TestServer::start().await;
    server.route("/endless", Reply::endless_body());
    server.route("/after", Reply::ok().body("still here"));
    let client = client();

    let response = get(&client, server.url("/endless")).await;
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let mut incoming = response.into_body();
    let mut received = 0;
    while received < WANT {
        let frame = incoming.frame().await.expect("endless").unwrap();
        received += frame.into_data().unwrap().len();
    }
    drop(incoming);

    // Hanging up mid-body is fine for the server: it keeps serving.
    assert_eq!(
        text(get(&client, server.url("/after")).await).await,
        "still here"
    );
    // `shutdown` re-raises any panic from a connection task.
    server.shutdown().await;
}

// ---------------------------------------------------------------- shutdown

#[tokio::test]
async fn connection_refused_after_shutdown() {
    let server = TestServer::start().await;
    let url = server.url("/gone");
    server.shutdown().await;

    let error = client()
        .get(url)
        .await
        .expect_err("nothing listens any more");
    // Observed: Error(Connect, ConnectError("tcp connect error", .., Os { code: 111, kind: ConnectionRefused }))
    assert!(error.is_connect(), "{error:?}");
    assert!(
        io_kinds(&error).contains(&io::ErrorKind::ConnectionRefused),
        "{error:?}"
    );
    assert_eq!(towline_kind(error), NOT_SENT);
}

#[tokio::test]
async fn dropping_the_server_refuses_new_connections_at_once() {
    let server = TestServer::start().await;
    let url = server.url("/gone");
    drop(server);
    // No yield in between: the listener stops as part of `drop`.
    let error = client()
        .get(url)
        .await
        .expect_err("nothing listens any more");
    assert!(error.is_connect(), "{error:?}");
    assert_eq!(towline_kind(error), NOT_SENT);
}

#[tokio::test(start_paused = true)]
async fn shutdown_closes_idle_keep_alive_connections_without_waiting() {
    let server = TestServer::start().await;
    server.route("/", Reply::ok());
    let client = client();
    get(&client, server.url("/")).await;
    assert_eq!(server.connections_accepted(), 1);

    // The pooled connection is idle, so graceful shutdown closes it at once.
    let start = Instant::now();
    server.shutdown().await;
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn shutdown_is_bounded_with_an_endless_body_in_flight() {
    let server = TestServer::start().await;
    server.route("/endless", Reply::endless_body());
    let response = get(&client(), server.url("/endless")).await;
    let mut incoming = response.into_body();
    incoming.frame().await.unwrap().unwrap();

    let start = Instant::now();
    server.shutdown().await;
    // Graceful shutdown waits for the response (the server is blocked on a
    // full socket buffer); the grace period ends it.
    assert_eq!(start.elapsed(), SHUTDOWN_GRACE);
}

// ---------------------------------------------------------------- classification edge cases

#[tokio::test]
async fn a_client_side_request_check_is_not_a_network_error() {
    // hyper-util refuses a relative URI before connecting: a bug in the caller, never sent,
    // but not a network failure a retry could fix.
    let err = client()
        .get(http::Uri::from_static("/relative"))
        .await
        .unwrap_err();
    let kind = towline_kind(err);
    assert_eq!(kind, ErrorKind::Other);
    assert!(!kind.certainly_not_sent());
}

/// A request body that sends one chunk and then fails.
#[derive(Debug)]
struct FailingBody {
    sent: bool,
}

#[derive(Debug)]
struct BodySourceFailed;

impl std::fmt::Display for BodySourceFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the body's source failed")
    }
}

impl StdError for BodySourceFailed {}

impl http_body::Body for FailingBody {
    type Data = Bytes;
    type Error = BodySourceFailed;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BodySourceFailed>>> {
        if self.sent {
            return std::task::Poll::Ready(Some(Err(BodySourceFailed)));
        }
        self.sent = true;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from_static(
            b"first chunk",
        )))))
    }
}

#[tokio::test]
async fn a_request_body_failing_mid_write_may_have_reached_the_server() {
    let server = TestServer::start().await;
    server.route("/upload", Reply::ok());
    let client: Client<HttpConnector, FailingBody> =
        Client::builder(TokioExecutor::new()).build_http();
    let request = Request::post(server.url("/upload"))
        .body(FailingBody { sent: false })
        .unwrap();
    let err = client.request(request).await.unwrap_err();
    assert!(!err.is_connect());
    assert_eq!(towline_kind(err), SENT);
}

#[tokio::test]
async fn a_handler_route_answers_from_the_request_headers_and_body() {
    let server = TestServer::start().await;
    server.route_fn("/echo", |request| {
        if request.header("authorization") == Some("Bearer good") {
            Reply::ok().body(request.body.clone())
        } else {
            Reply::status(401)
        }
    });
    let client = full_client();
    let send = |auth: &'static str| {
        Request::post(server.url("/echo"))
            .header("authorization", auth)
            .body(Full::new(Bytes::from_static(b"ping")))
            .unwrap()
    };
    let denied = client.request(send("Bearer bad")).await.unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    let allowed = client.request(send("Bearer good")).await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    let body = allowed.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ping");
    assert_eq!(server.requests_to("/echo").len(), 2);
}

#[tokio::test]
async fn a_handler_still_sees_its_request_when_the_log_has_moved_on() {
    // A log of one entry and many requests in flight: each handler must still get its own
    // request, body included, though the log entry is gone.
    let server = TestServer::start().await;
    server.set_log_limit(1);
    server.route_fn("/echo", |request| Reply::ok().body(request.body.clone()));
    let client = full_client();
    let calls = (0..20).map(|n| {
        let request = Request::post(server.url("/echo"))
            .body(Full::new(Bytes::from(format!("call {n}"))))
            .unwrap();
        let client = client.clone();
        async move {
            let response = client.request(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, format!("call {n}"));
        }
    });
    let tasks: Vec<_> = calls.map(tokio::spawn).collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(server.request_count(), 1);
}
