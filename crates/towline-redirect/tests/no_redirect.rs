//! NoRedirectLayer: every redirect status is a typed error, nothing else is, and nothing is
//! followed or read.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use towline_core::{Error, ErrorKind, Redirected};
use towline_redirect::{NoRedirect, NoRedirectLayer, is_redirect};
use towline_testkit::{Reply, TestServer};

/// A service answering every request with `status` and an optional raw `Location`.
fn answering(
    status: u16,
    location: Option<HeaderValue>,
) -> impl Service<Request<()>, Response = Response<Empty<Bytes>>, Error = BoxError> + Clone {
    service_fn(move |_req: Request<()>| {
        let location = location.clone();
        async move {
            let mut response = Response::new(Empty::new());
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            if let Some(location) = location {
                response
                    .headers_mut()
                    .insert(http::header::LOCATION, location);
            }
            Ok::<_, BoxError>(response)
        }
    })
}

#[tokio::test]
async fn every_redirect_status_becomes_a_typed_error_with_its_location() {
    for status in [300, 301, 302, 303, 307, 308] {
        let inner = answering(status, Some(HeaderValue::from_static("/elsewhere")));
        let err = NoRedirect::new(inner)
            .oneshot(Request::new(()))
            .await
            .expect_err("a redirect must be an error");
        let err = Error::from(err);
        assert_eq!(err.kind(), ErrorKind::Redirected, "{status}");
        let redirect = err.redirected().unwrap();
        assert_eq!(redirect.status().as_u16(), status);
        assert_eq!(redirect.location_str(), Some("/elsewhere"));
    }
}

#[tokio::test]
async fn an_invalid_location_is_kept_raw() {
    let raw = HeaderValue::from_bytes(b"ht tp://\xff\xfe/%%%").unwrap();
    let err = NoRedirect::new(answering(302, Some(raw.clone())))
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    let redirect = err.downcast_ref::<Redirected>().unwrap();
    assert_eq!(redirect.location(), Some(&raw));
    assert_eq!(redirect.location_str(), None, "not visible ASCII");
    // Display never panics on it either.
    assert!(redirect.to_string().starts_with("redirect 302 Found to"));
}

#[tokio::test]
async fn a_redirect_without_location_is_still_an_error() {
    let err = NoRedirect::new(answering(307, None))
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    let redirect = err.downcast_ref::<Redirected>().unwrap();
    assert_eq!(redirect.location(), None);
    assert_eq!(
        redirect.to_string(),
        "redirect 307 Temporary Redirect (no Location) was not followed"
    );
}

#[tokio::test]
async fn not_modified_and_other_statuses_pass_through() {
    for status in [200, 201, 204, 304, 305, 306, 400, 404, 500, 503] {
        let response = NoRedirect::new(answering(status, Some(HeaderValue::from_static("/x"))))
            .oneshot(Request::new(()))
            .await
            .unwrap_or_else(|e| panic!("{status} must pass: {e}"));
        assert_eq!(response.status().as_u16(), status);
    }
    assert!(!is_redirect(StatusCode::NOT_MODIFIED));
}

#[tokio::test]
async fn a_predicate_hands_chosen_redirects_back_unfollowed() {
    let layer = NoRedirectLayer::new().allow(|r: &Redirected| r.status() == StatusCode::SEE_OTHER);
    let response = layer
        .layer(answering(303, Some(HeaderValue::from_static("/result"))))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/result");

    let err = layer
        .layer(answering(302, Some(HeaderValue::from_static("/result"))))
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    assert!(err.is::<Redirected>());
}

#[tokio::test]
async fn inner_errors_pass_through_unchanged() {
    let inner = service_fn(|_req: Request<()>| async {
        Err::<Response<Empty<Bytes>>, _>(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        ))
    });
    let err = NoRedirect::new(inner)
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    assert_eq!(
        Error::from(err).kind(),
        ErrorKind::Network {
            may_have_reached_server: false
        }
    );
}

/// A body that records whether it was polled and when it was dropped.
#[derive(Debug)]
struct Watched {
    polled: Arc<AtomicUsize>,
    dropped: Arc<AtomicBool>,
}

impl Body for Watched {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.polled.fetch_add(1, Ordering::SeqCst);
        // An endless body: reading it to the end would never finish.
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&[0; 1024])))))
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn the_redirect_body_is_dropped_without_being_read() {
    let polled = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicBool::new(false));
    let (p, d) = (polled.clone(), dropped.clone());
    let inner = service_fn(move |_req: Request<()>| {
        let body = Watched {
            polled: p.clone(),
            dropped: d.clone(),
        };
        async move {
            let mut response = Response::new(body);
            *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
            Ok::<_, BoxError>(response)
        }
    });
    let err = NoRedirect::new(inner)
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    assert!(err.is::<Redirected>());
    assert_eq!(polled.load(Ordering::SeqCst), 0, "the body was read");
    assert!(dropped.load(Ordering::SeqCst), "the body was kept");
}

#[tokio::test]
async fn over_loopback_a_302_is_not_followed_and_credentials_never_reach_the_target() {
    let server = TestServer::start().await;
    server.route(
        "/start",
        Reply::redirect(302, &server.url("/target").to_string()),
    );
    server.route("/target", Reply::ok().body("you should not be here"));

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let request = Request::get(server.url("/start"))
        .header("authorization", "Bearer top-secret")
        .body(Empty::new())
        .unwrap();
    let err = NoRedirectLayer::new()
        .layer(client)
        .oneshot(request)
        .await
        .unwrap_err();
    let err = Error::from(err);
    assert_eq!(err.kind(), ErrorKind::Redirected);
    assert_eq!(
        err.redirected().unwrap().location_str(),
        Some(server.url("/target").to_string().as_str())
    );

    let log = server.requests();
    assert_eq!(log.len(), 1, "exactly one request: {log:?}");
    assert_eq!(log[0].path, "/start");
    assert_eq!(log[0].header("authorization"), Some("Bearer top-secret"));
    assert!(server.requests_to("/target").is_empty());

    // The client stays usable afterwards: a normal call goes through the same stack.
    server.route("/start", Reply::ok().body("fine"));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = NoRedirectLayer::new()
        .layer(client)
        .oneshot(
            Request::get(server.url("/start"))
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"fine");
}

#[test]
fn layers_with_a_closure_are_still_debug() {
    let layer = NoRedirectLayer::new().allow(|_: &Redirected| true);
    assert_eq!(format!("{layer:?}"), "NoRedirectLayer { .. }");
}
