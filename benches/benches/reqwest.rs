//! towline over reqwest, on real loopback HTTP/1.1: a GET answered 200 `[]` by the testkit
//! server (on its own thread), body read to the end, keep-alive connections.
//!
//! In one group: bare reqwest (`Client::execute` with a `reqwest::Request`), the
//! `ReqwestService` adapter alone (`http::Request` in, `http::Response` out), tower's own
//! `Timeout` over the adapter, and towline's standard `Pipeline` over the adapter. The ratio
//! of the pipeline to bare reqwest is what the adapter and the stack cost a reqwest user.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tower::{Service, ServiceExt};
use towline_reqwest::ReqwestService;

// The loopback server and request the `layers` bench uses; the rest of `common` is not.
#[allow(dead_code)]
mod common;
use common::{loopback_request as request, server_thread};

async fn round_trip<S, B>(service: S, request: Request<Full<Bytes>>) -> Bytes
where
    S: Service<Request<Full<Bytes>>, Response = http::Response<B>>,
    S::Error: std::fmt::Debug,
    B: Body,
    B::Error: std::fmt::Debug,
{
    let response = service.oneshot(request).await.expect("a response");
    response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes()
}

fn reqwest_loopback(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime with I/O");
    let url = server_thread();
    let reqwest_url = reqwest::Url::parse(&url.to_string()).expect("a URL");
    let (client, adapter) = rt.block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        (
            client,
            ReqwestService::<Full<Bytes>>::new().expect("a client"),
        )
    });
    let timeout = tower::timeout::Timeout::new(adapter.clone(), Duration::from_secs(10));
    let pipeline = towline::Pipeline::new().service(adapter.clone());

    let mut group = c.benchmark_group("reqwest_loopback");
    group.bench_function("bare reqwest (Client::execute)", |b| {
        b.to_async(&rt).iter(|| {
            let client = client.clone();
            let request = client
                .get(reqwest_url.clone())
                .header("accept", "application/json")
                .build()
                .expect("a request");
            async move {
                let response = client.execute(request).await.expect("a response");
                response.bytes().await.expect("the body")
            }
        })
    });
    group.bench_function("ReqwestService alone", |b| {
        b.to_async(&rt)
            .iter(|| round_trip(adapter.clone(), request(&url)))
    });
    group.bench_function("tower Timeout over ReqwestService", |b| {
        b.to_async(&rt)
            .iter(|| round_trip(timeout.clone(), request(&url)))
    });
    group.bench_function("towline standard pipeline over ReqwestService", |b| {
        b.to_async(&rt)
            .iter(|| round_trip(pipeline.clone(), request(&url)))
    });
    group.finish();
}

criterion_group!(benches, reqwest_loopback);
criterion_main!(benches);
