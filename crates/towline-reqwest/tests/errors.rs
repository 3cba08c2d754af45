//! How `towline_core::classify` sorts what goes wrong under a `ReqwestService`, over real
//! loopback sockets: the kind decides whether a layer above may send the request again.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::{Request, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use tower::ServiceExt;
use towline_core::{BodyTooLarge, BoxError, Error, ErrorKind};
use towline_reqwest::ReqwestService;
use towline_testkit::{Reply, TestServer};

const NOT_SENT: ErrorKind = ErrorKind::Network {
    may_have_reached_server: false,
};
const SENT: ErrorKind = ErrorKind::Network {
    may_have_reached_server: true,
};

fn get(server: &TestServer, path: &str) -> Request<Empty<Bytes>> {
    Request::get(server.url(path)).body(Empty::new()).unwrap()
}

#[tokio::test]
async fn a_refused_connection_was_certainly_not_sent() {
    let server = TestServer::start().await;
    let url = server.url("/orders");
    server.shutdown().await;

    let request = Request::post(url)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let err = ReqwestService::new()
        .unwrap()
        .oneshot(request)
        .await
        .unwrap_err();

    let err = Error::from(err);
    assert_eq!(err.kind(), NOT_SENT, "{err}");
    assert!(err.kind().certainly_not_sent());
    assert!(err.find::<reqwest::Error>().unwrap().is_connect());
}

#[tokio::test]
async fn reqwests_own_timeout_is_a_timeout() {
    let server = TestServer::start().await;
    server.route("/slow", Reply::ok().delay(Duration::from_secs(30)));
    let builder = reqwest::Client::builder().timeout(Duration::from_millis(100));

    let err = ReqwestService::from_builder(builder)
        .unwrap()
        .oneshot(get(&server, "/slow"))
        .await
        .unwrap_err();

    let err = Error::from(err);
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // reqwest's error is still there for whoever wants it.
    assert!(err.find::<reqwest::Error>().unwrap().is_timeout());
    assert_eq!(server.requests_to("/slow").len(), 1);
}

#[tokio::test]
async fn a_stalled_body_under_reqwests_read_timeout_is_a_timeout() {
    let server = TestServer::start().await;
    server.route(
        "/stream",
        Reply::ok().body("0123456789").stall_body_after(4),
    );
    let builder = reqwest::Client::builder().read_timeout(Duration::from_millis(100));

    let response = ReqwestService::from_builder(builder)
        .unwrap()
        .oneshot(get(&server, "/stream"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let err = response.into_body().collect().await.unwrap_err();

    assert_eq!(Error::from(err).kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn a_reset_before_the_head_may_have_reached_the_server() {
    let server = TestServer::start().await;
    server.route("/orders", Reply::reset());

    let err = ReqwestService::new()
        .unwrap()
        .oneshot(get(&server, "/orders"))
        .await
        .unwrap_err();

    let err = Error::from(err);
    assert_eq!(err.kind(), SENT, "{err}");
    assert!(!err.kind().certainly_not_sent());
}

#[tokio::test]
async fn a_reset_mid_body_may_have_reached_the_server() {
    let server = TestServer::start().await;
    server.route(
        "/export",
        Reply::ok().body("0123456789").reset_after_body_bytes(4),
    );

    let response = ReqwestService::new()
        .unwrap()
        .oneshot(get(&server, "/export"))
        .await
        .unwrap();
    let err = response.into_body().collect().await.unwrap_err();

    assert_eq!(Error::from(err).kind(), SENT);
}

#[tokio::test]
async fn a_request_body_that_fails_is_classified_by_its_own_error() {
    let server = TestServer::start().await;
    server.route("/upload", Reply::status(201));
    let frames: Vec<Result<Frame<Bytes>, BoxError>> = vec![
        Ok(Frame::data(Bytes::from_static(b"part one"))),
        Err(Box::new(BodyTooLarge::new(8))),
    ];
    let request = Request::post(server.url("/upload"))
        .body(StreamBody::new(stream::iter(frames)))
        .unwrap();

    let err = ReqwestService::new()
        .unwrap()
        .oneshot(request)
        .await
        .unwrap_err();

    assert_eq!(Error::from(err).kind(), ErrorKind::BodyTooLarge);
}

#[tokio::test]
async fn a_uri_reqwest_cannot_take_fails_before_anything_is_sent() {
    let request = Request::get("/relative/only")
        .body(Full::new(Bytes::new()))
        .unwrap();

    let err = ReqwestService::new()
        .unwrap()
        .oneshot(request)
        .await
        .unwrap_err();

    let err = Error::from(err);
    assert!(err.find::<reqwest::Error>().unwrap().is_builder(), "{err}");
}

#[tokio::test]
async fn a_redirect_comes_back_as_a_response_even_from_a_following_builder() {
    let server = TestServer::start().await;
    let elsewhere = server.url("/elsewhere").to_string();
    server.route("/old", Reply::redirect(301, &elsewhere));
    server.route("/elsewhere", Reply::ok());
    // Asked to follow: the service overrides it.
    let builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(5));

    let response = ReqwestService::from_builder(builder)
        .unwrap()
        .oneshot(get(&server, "/old"))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(response.headers()["location"], elsewhere.as_str());
    assert!(server.requests_to("/elsewhere").is_empty());
}

#[tokio::test]
async fn new_does_not_follow_redirects_either() {
    let server = TestServer::start().await;
    let elsewhere = server.url("/elsewhere").to_string();
    server.route("/old", Reply::redirect(307, &elsewhere));
    server.route("/elsewhere", Reply::ok());

    let response = ReqwestService::new()
        .unwrap()
        .oneshot(get(&server, "/old"))
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert!(server.requests_to("/elsewhere").is_empty());
}

/// Keeps `Infallible` bodies honest too: the adapter's bound is any `http_body::Body`.
#[tokio::test]
async fn a_streamed_body_is_sent_whole() {
    let server = TestServer::start().await;
    server.route("/upload", Reply::status(201));
    let frames = ["a", "b", "c"].map(|s| Ok::<_, Infallible>(Frame::data(Bytes::from(s))));
    let request = Request::post(server.url("/upload"))
        .body(StreamBody::new(stream::iter(frames)))
        .unwrap();

    let response = ReqwestService::new()
        .unwrap()
        .oneshot(request)
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(server.requests_to("/upload")[0].body_text(), "abc");
}
