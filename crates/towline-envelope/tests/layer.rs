//! ErrorBodyLayer: error statuses become typed errors with a bounded read; successes pass
//! untouched, and inspected success bodies come back byte for byte.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Layer, ServiceExt, service_fn};
use towline_core::{ApiError, ApiErrorKind, ApiFormat, AuthReason, Error, ErrorKind};
use towline_envelope::{DEFAULT_MAX_BODY, Decoder, ErrorBodyLayer, Format};
use towline_testkit::{Reply, TestServer};

const OPEN2B_ERROR: &str = r#"{"status":"error","error":{"field":"name","type":"Malformed","description":"Name is not syntactically correct"}}"#;

/// A service answering `status`, `content_type` and `body`.
fn answering(
    status: u16,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> impl tower::Service<Request<()>, Response = Response<Full<Bytes>>, Error = BoxError> + Clone {
    let body = body.into();
    service_fn(move |_req: Request<()>| {
        let body = body.clone();
        async move {
            Ok::<_, BoxError>(
                Response::builder()
                    .status(status)
                    .header("content-type", content_type)
                    .body(Full::new(body))
                    .unwrap(),
            )
        }
    })
}

async fn api_error<S, B>(service: S) -> ApiError
where
    S: tower::Service<Request<()>, Response = Response<B>, Error = BoxError>,
    B: std::fmt::Debug,
{
    let err = service.oneshot(Request::new(())).await.unwrap_err();
    let err = Error::from(err);
    assert_eq!(err.kind(), ErrorKind::Api);
    err.api().unwrap().clone()
}

#[tokio::test]
async fn an_error_status_becomes_a_decoded_api_error() {
    let body = r#"{"type":"Error","data":[{"message":"2FA is required"}],"moreAfter":null,"status":"error"}"#;
    let err =
        api_error(ErrorBodyLayer::new().layer(answering(401, "application/json", body))).await;
    assert_eq!(err.format, ApiFormat::Ixon);
    assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::TwoFactorRequired));
    assert_eq!(&err.body[..], body.as_bytes());
    assert!(!err.body_truncated);
}

#[tokio::test]
async fn headers_give_the_retry_hint() {
    let service = service_fn(|_req: Request<()>| async {
        Ok::<_, BoxError>(
            Response::builder()
                .status(503)
                .header("x-wait-seconds", "30")
                .body(Full::new(Bytes::from_static(b"Service Unavailable")))
                .unwrap(),
        )
    });
    let err = api_error(ErrorBodyLayer::new().layer(service)).await;
    assert_eq!(err.kind, ApiErrorKind::Unavailable);
    assert_eq!(err.retry_hint.unwrap().wait().as_secs(), 30);
    assert_eq!(err.message.as_deref(), Some("Service Unavailable"));
}

#[tokio::test]
async fn a_success_passes_through_untouched() {
    let body = r#"{"type":"Device","data":[],"moreAfter":null,"status":"success"}"#;
    for layer in [
        ErrorBodyLayer::new(),
        ErrorBodyLayer::with_decoder(Decoder::only(Format::Ixon)),
        ErrorBodyLayer::new().inspect_success(false),
    ] {
        let response = layer
            .layer(answering(200, "application/json", body))
            .oneshot(Request::new(()))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], body.as_bytes());
    }
}

#[tokio::test]
async fn an_open2b_error_inside_a_200_is_an_error() {
    let open2b = || ErrorBodyLayer::with_decoder(Decoder::only(Format::Open2b));
    let err = api_error(open2b().layer(answering(200, "application/json", OPEN2B_ERROR))).await;
    assert_eq!(err.status, StatusCode::OK);
    assert_eq!(err.format, ApiFormat::Open2b);
    assert_eq!(err.kind, ApiErrorKind::Validation);

    // Open2b also answers as text/javascript.
    let err = api_error(open2b().layer(answering(200, "text/javascript", OPEN2B_ERROR))).await;
    assert_eq!(err.format, ApiFormat::Open2b);

    // Auto-detection inspects successes only when asked.
    let layer = ErrorBodyLayer::new().inspect_success(true);
    let err = api_error(layer.layer(answering(200, "application/json", OPEN2B_ERROR))).await;
    assert_eq!(err.format, ApiFormat::Open2b);
    let response = ErrorBodyLayer::new()
        .layer(answering(200, "application/json", OPEN2B_ERROR))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn in_band_inspection_can_be_turned_off_or_is_off_for_formats_without_it() {
    for layer in [
        ErrorBodyLayer::with_decoder(Decoder::only(Format::Open2b)).inspect_success(false),
        ErrorBodyLayer::with_decoder(Decoder::only(Format::Ixon)),
        ErrorBodyLayer::new(),
    ] {
        let response = layer
            .layer(answering(200, "application/json", OPEN2B_ERROR))
            .oneshot(Request::new(()))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn non_json_success_bodies_are_not_inspected() {
    let response = ErrorBodyLayer::new()
        .inspect_success(true)
        .layer(answering(200, "text/plain", OPEN2B_ERROR))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], OPEN2B_ERROR.as_bytes());
}

/// A body in several frames, with trailers, to check an inspected body is replayed whole.
#[derive(Debug)]
struct Frames {
    frames: Vec<Frame<Bytes>>,
}

impl Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.frames.is_empty() {
            Poll::Ready(None)
        } else {
            Poll::Ready(Some(Ok(self.frames.remove(0))))
        }
    }
}

fn json_frames(
    chunks: &[&'static [u8]],
    trailers: bool,
) -> impl tower::Service<Request<()>, Response = Response<Frames>, Error = BoxError> + Clone {
    let chunks: Vec<&'static [u8]> = chunks.to_vec();
    service_fn(move |_req: Request<()>| {
        let mut frames: Vec<Frame<Bytes>> = chunks
            .iter()
            .map(|c| Frame::data(Bytes::from_static(c)))
            .collect();
        if trailers {
            let mut map = http::HeaderMap::new();
            map.insert("x-checksum", "abc".parse().unwrap());
            frames.push(Frame::trailers(map));
        }
        async move {
            Ok::<_, BoxError>(
                Response::builder()
                    .header("content-type", "application/json")
                    .body(Frames { frames })
                    .unwrap(),
            )
        }
    })
}

#[tokio::test]
async fn an_inspected_success_body_is_handed_back_byte_for_byte_with_trailers() {
    let response = ErrorBodyLayer::new()
        .inspect_success(true)
        .layer(json_frames(
            &[b"{\"status\":", b"\"ok\",", b"\"n\":1}"],
            true,
        ))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc");
    assert_eq!(&collected.to_bytes()[..], br#"{"status":"ok","n":1}"#);
}

#[tokio::test]
async fn a_success_body_longer_than_the_cap_is_handed_back_whole_and_not_decoded() {
    // 3 frames of 40 bytes with a 50-byte cap: inspection stops after the second frame.
    let a: &'static [u8] = b"[\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",";
    let b: &'static [u8] = b"\"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\",";
    let c: &'static [u8] = b"\"cccccccccccccccccccccccccccccccccccccc\"]";
    let response = ErrorBodyLayer::new()
        .inspect_success(true)
        .max_body(50)
        .layer(json_frames(&[a, b, c], false))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(bytes, [a, b, c].concat());
}

#[tokio::test]
async fn an_error_body_past_the_cap_is_cut_and_flagged() {
    let body = format!("{{\"message\":\"{}\"}}", "x".repeat(1000));
    let err = api_error(ErrorBodyLayer::new().max_body(100).layer(answering(
        500,
        "application/json",
        body.clone(),
    )))
    .await;
    assert!(err.body_truncated);
    assert_eq!(err.body.len(), 100);
    assert_eq!(&err.body[..], &body.as_bytes()[..100]);
    assert_eq!(err.format, ApiFormat::Unrecognized);
    assert_eq!(err.kind, ApiErrorKind::Server);
}

#[tokio::test]
async fn a_lying_content_type_gives_a_plain_status_error() {
    let err = api_error(ErrorBodyLayer::new().layer(answering(
        502,
        "application/json",
        "<html><body>Bad Gateway</body></html>",
    )))
    .await;
    assert_eq!(err.format, ApiFormat::Unrecognized);
    assert_eq!(err.kind, ApiErrorKind::Server);
    assert_eq!(err.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn redirects_and_not_modified_pass_through() {
    for status in [301, 304] {
        let response = ErrorBodyLayer::new()
            .layer(answering(status, "text/plain", ""))
            .oneshot(Request::new(()))
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
    }
}

#[tokio::test]
async fn inner_errors_pass_through_typed() {
    let service = service_fn(|_req: Request<()>| async {
        Err::<Response<Empty<Bytes>>, _>(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        ))
    });
    let err = ErrorBodyLayer::new()
        .layer(service)
        .oneshot(Request::new(()))
        .await
        .unwrap_err();
    assert!(Error::from(err).kind().certainly_not_sent());
}

#[tokio::test]
async fn over_loopback_a_1_gib_error_body_is_read_only_to_the_cap() {
    let server = TestServer::start().await;
    server.route("/huge", Reply::huge_body(1 << 30).with_status(500));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let err = ErrorBodyLayer::new()
        .layer(client)
        .oneshot(
            Request::get(server.url("/huge"))
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap_err();
    let err = Error::from(err);
    let api = err.api().unwrap();
    assert_eq!(api.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(api.body_truncated);
    assert_eq!(api.body.len(), DEFAULT_MAX_BODY);
}

#[tokio::test]
async fn over_loopback_an_error_body_reset_midway_is_decoded_from_what_arrived() {
    let server = TestServer::start().await;
    server.route(
        "/reset",
        Reply::status(503)
            .header("content-type", "application/json")
            .body(r#"{"code": 14, "message": "in preparation", "details": []}"#)
            .reset_after_body_bytes(10),
    );
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let err = ErrorBodyLayer::new()
        .layer(client)
        .oneshot(
            Request::get(server.url("/reset"))
                .body(Empty::new())
                .unwrap(),
        )
        .await
        .unwrap_err();
    let api = Error::from(err).api().unwrap().clone();
    assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(api.body_truncated);
    assert_eq!(api.kind, ApiErrorKind::Unavailable);
}

#[tokio::test]
async fn over_loopback_an_open2b_in_band_error_and_a_success() {
    let server = TestServer::start().await;
    server.script(
        "/api/v7.8/commerce.products.find",
        [
            Reply::ok().json(OPEN2B_ERROR),
            Reply::ok().json(r#"{"status":"ok","response":{"products":[]}}"#),
        ],
    );
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let service = ErrorBodyLayer::with_decoder(Decoder::only(Format::Open2b)).layer(client);
    let request = || {
        Request::post(server.url("/api/v7.8/commerce.products.find"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap()
    };
    let err = service.clone().oneshot(request()).await.unwrap_err();
    assert_eq!(Error::from(err).api().unwrap().format, ApiFormat::Open2b);
    let response = service.oneshot(request()).await.unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], br#"{"status":"ok","response":{"products":[]}}"#);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_error_body_is_bounded_by_the_timeout_above() {
    // The layer reads the error body inside the response future, so a per-attempt timeout
    // (or tokio's, here) above it covers the read: a stall cannot hang the call.
    let server = TestServer::start().await;
    server.route(
        "/stall",
        Reply::status(500)
            .header("content-type", "application/json")
            .body(r#"{"code": 13, "message": "internal"}"#)
            .stall_body_after(5),
    );
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let call = ErrorBodyLayer::new().layer(client).oneshot(
        Request::get(server.url("/stall"))
            .body(Empty::new())
            .unwrap(),
    );
    let start = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(5), call).await;
    assert!(
        outcome.is_err(),
        "the stalled read is still waiting when the timeout fires"
    );
    assert_eq!(start.elapsed(), std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn a_huge_content_length_claim_reserves_nothing_absurd() {
    // No cap at all, and a server claiming an 18 EB error body: no panic, no huge reservation.
    let service = service_fn(|_req: Request<()>| async {
        Ok::<_, BoxError>(
            Response::builder()
                .status(404)
                .header("content-length", "18446744073709551615")
                .body(Full::new(Bytes::from_static(b"not found")))
                .unwrap(),
        )
    });
    let err = api_error(ErrorBodyLayer::new().max_body(usize::MAX).layer(service)).await;
    assert_eq!(err.message.as_deref(), Some("not found"));
}

#[tokio::test]
async fn one_big_success_frame_past_the_cap_is_handed_back_whole() {
    let big = Bytes::from(vec![b' '; 10 * 1024 * 1024]);
    let frame = big.clone();
    let service = service_fn(move |_req: Request<()>| {
        let frame = frame.clone();
        async move {
            Ok::<_, BoxError>(
                Response::builder()
                    .header("content-type", "application/json")
                    .body(Frames {
                        frames: vec![Frame::data(frame)],
                    })
                    .unwrap(),
            )
        }
    });
    let response = ErrorBodyLayer::new()
        .inspect_success(true)
        .layer(service)
        .oneshot(Request::new(()))
        .await
        .unwrap();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(bytes, big);
}

#[tokio::test]
async fn an_empty_success_is_not_inspected() {
    // A 204 that says it is JSON: nothing to read, passed through as it is.
    let response = ErrorBodyLayer::with_decoder(Decoder::only(Format::Open2b))
        .layer(answering(204, "application/json", ""))
        .oneshot(Request::new(()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(format!("{response:?}").contains("ResponseBody"));
}
