//! Brotli and zstd responses are decoded by the standard pipeline (before the error-body
//! decoder, so a compressed error body is read) and by `ServiceBuilderExt::decompress_responses`
//! (issue 19, item 5). Both are default features of the facade.

use std::io::Write;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::ServiceBuilder;
use towline::prelude::*;
use towline_testkit::{Reply, TestServer};

const ERROR: &str = r#"{"code":"unavailable","message":"in preparation","details":[]}"#;

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        writer.write_all(data).unwrap();
    }
    out
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn get(server: &TestServer, path: &str) -> Request<Empty<Bytes>> {
    Request::get(server.url(path)).body(Empty::new()).unwrap()
}

#[tokio::test]
async fn brotli_and_zstd_error_bodies_are_decoded_by_the_pipeline() {
    let server = TestServer::start().await;
    for (encoding, body) in [
        ("br", brotli(ERROR.as_bytes())),
        ("zstd", zstd(ERROR.as_bytes())),
    ] {
        let path = format!("/{encoding}");
        server.route(
            &path,
            Reply::status(422)
                .header("content-type", "application/json")
                .header("content-encoding", encoding)
                .body(body),
        );
        let service = Pipeline::new().service(client());
        let Err(err) = service.oneshot(get(&server, &path)).await else {
            panic!("{encoding}: a 422 is an error");
        };
        let err = Error::from(err);
        let api = err.api().unwrap_or_else(|| panic!("{encoding}: {err}"));
        // The decoder read the decompressed bytes, not the compressed ones.
        assert_eq!(api.body, ERROR.as_bytes(), "{encoding}");
    }
    // The pipeline asked for both.
    let asked = server.requests()[0]
        .header("accept-encoding")
        .unwrap_or("")
        .to_owned();
    assert!(asked.contains("br") && asked.contains("zstd"), "{asked}");
}

#[tokio::test]
async fn the_builder_decompresses_brotli_and_zstd_responses() {
    let server = TestServer::start().await;
    let text = "hello, compressed world";
    server.route(
        "/br",
        Reply::ok()
            .header("content-encoding", "br")
            .body(brotli(text.as_bytes())),
    );
    server.route(
        "/zstd",
        Reply::ok()
            .header("content-encoding", "zstd")
            .body(zstd(text.as_bytes())),
    );
    let service = ServiceBuilder::new()
        .decompress_responses()
        .service(client());
    for path in ["/br", "/zstd"] {
        let response = service.clone().oneshot(get(&server, path)).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, text.as_bytes(), "{path}");
    }
}
