//! The error-body decoder: decoding a typical body per format, detection on a success body
//! against one plain `serde_json` parse of it, and the `ErrorBodyLayer` success path against a
//! bare service, each group from one run so the figures read as ratios.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::runtime::Runtime;
use tower::{BoxError, Layer, ServiceExt, service_fn};
use towline_core::{ApiCode, ApiError, ApiFormat};
use towline_envelope::{Decoder, ErrorBodyLayer, ErrorFormat, Format, decode};

mod bodies;
use bodies::{bodies, ixon_1kb, telecom_x_1kb};

/// A user's format, `{"fault": {"id", "text"}}`, as in the `ErrorFormat` docs.
struct Acme;

impl ErrorFormat for Acme {
    fn name(&self) -> &'static str {
        "acme"
    }

    fn decode(&self, status: StatusCode, body: &serde_json::Value) -> Option<ApiError> {
        let fault = body.get("fault")?;
        let mut err = ApiError::new(status, ApiFormat::Custom(self.name()));
        err.code = fault.get("id")?.as_i64().map(ApiCode::Number);
        err.message = fault.get("text")?.as_str().map(str::to_owned);
        Some(err)
    }
}

fn decoding(c: &mut Criterion) {
    let headers = HeaderMap::new();
    let mut group = c.benchmark_group("decode");
    for (name, status, body) in bodies() {
        group.bench_function(format!("baseline: serde_json parse, {name}"), |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&body)).is_ok())
        });
        group.bench_function(format!("decode (auto), {name}"), |b| {
            b.iter(|| decode(status, &headers, black_box(body.clone())))
        });
    }
    let ixon = Decoder::only(Format::Ixon);
    let body = ixon_1kb();
    group.bench_function("decode (only IXON), ixon 401 (1 KB)", |b| {
        b.iter(|| ixon.decode(StatusCode::UNAUTHORIZED, &headers, black_box(body.clone())))
    });
    // A custom format reads a `serde_json::Value`: the cost of adding one that does not match.
    let custom = Decoder::new().with_format(Acme);
    let body = telecom_x_1kb();
    group.bench_function(
        "decode (auto + a custom format), telecom x 422 (1 KB)",
        |b| {
            b.iter(|| {
                custom.decode(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &headers,
                    black_box(body.clone()),
                )
            })
        },
    );
    group.finish();

    // Detection on a success body that is not an error.
    let success = Bytes::from_static(br#"{"type":"Device","data":[{"publicId":"ab12","name":"Press 4","online":true},{"publicId":"cd34","name":"Press 5","online":false}],"moreAfter":null,"status":"success"}"#);
    let mut group = c.benchmark_group("detect_success_body");
    group.bench_function("baseline: serde_json parse", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&success)).is_ok())
    });
    group.bench_function("decode (auto) on a 200", |b| {
        b.iter(|| decode(StatusCode::OK, &headers, black_box(success.clone())))
    });
    group.finish();
}

fn layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let bare = service_fn(|_req: Request<()>| async {
        Ok::<_, BoxError>(
            Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(br#"{"status":"ok"}"#)))
                .expect("a response"),
        )
    });
    let mut group = c.benchmark_group("error_body_layer_success");
    run(&mut group, &rt, "bare service", bare);
    run(
        &mut group,
        &rt,
        "ErrorBodyLayer (auto)",
        ErrorBodyLayer::new().layer(bare),
    );
    run(
        &mut group,
        &rt,
        "ErrorBodyLayer (Open2b, inspects JSON successes)",
        ErrorBodyLayer::with_decoder(Decoder::only(Format::Open2b)).layer(bare),
    );
    group.finish();
}

fn run<S, B>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    name: &str,
    service: S,
) where
    S: tower::Service<Request<()>, Response = Response<B>, Error = BoxError> + Clone,
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    group.bench_function(name, |b| {
        b.to_async(rt).iter(|| {
            let service = service.clone();
            async move {
                let response = service.oneshot(Request::new(())).await.expect("success");
                response.into_body().collect().await.expect("a body");
            }
        })
    });
}

criterion_group!(benches, decoding, layer);
criterion_main!(benches);
