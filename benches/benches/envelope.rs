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

/// A typical IXON 401, padded with realistic whitespace to about 1 KB as the docs print it.
fn ixon_1kb() -> Bytes {
    let mut body = String::from(
        r#"{
    "type": "Error",
    "data": [
        {
            "message": "Invalid value",
            "propertyName": "Authorization"
        },
        {
            "message": "Required header",
            "propertyName": "Api-Company"
        },
        {
            "message": "Value is too short",
            "propertyName": "Api-Application"
        }
    ],
    "moreAfter": null,
    "status": "error"
}"#,
    );
    body.push_str(&" ".repeat(1024 - body.len()));
    Bytes::from(body)
}

/// A typical Telecom X 422 with three inner errors, padded to about 1 KB.
fn telecom_x_1kb() -> Bytes {
    let mut body = String::from(
        r#"{
  "error": {
    "code": "multiple",
    "status": 422,
    "inner": [
      { "message": "User not found", "code": "userId", "status": 404 },
      { "message": "Invalid street", "code": "address.street", "status": 422, "check": "format" },
      { "message": "Zip is missing", "code": "address.zip", "status": 404 }
    ]
  }
}"#,
    );
    body.push_str(&" ".repeat(1024 - body.len()));
    Bytes::from(body)
}

fn bodies() -> Vec<(&'static str, StatusCode, Bytes)> {
    vec![
        ("ixon 401 (1 KB)", StatusCode::UNAUTHORIZED, ixon_1kb()),
        ("telecom x 422 (1 KB)", StatusCode::UNPROCESSABLE_ENTITY, telecom_x_1kb()),
        (
            "attraqt 404",
            StatusCode::NOT_FOUND,
            Bytes::from_static(br#"{"code": 5, "message": "Item not found", "details": []}"#),
        ),
        (
            "open2b in 200",
            StatusCode::OK,
            Bytes::from_static(br#"{"status":"error","error":{"field":"name","type":"Malformed","description":"Name is not syntactically correct"}}"#),
        ),
        (
            "problem+json 403",
            StatusCode::FORBIDDEN,
            Bytes::from_static(br#"{"type":"https://example.com/probs/out-of-credit","title":"You do not have enough credit.","detail":"Your current balance is 30, but that costs 50.","instance":"/account/12345/msgs/abc","status":403}"#),
        ),
        (
            "google 429 + RetryInfo",
            StatusCode::TOO_MANY_REQUESTS,
            Bytes::from_static(br#"{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"30s"}]}}"#),
        ),
        (
            "stripe 402",
            StatusCode::PAYMENT_REQUIRED,
            Bytes::from_static(br#"{"error":{"type":"card_error","code":"card_declined","message":"Your card was declined.","param":"card"}}"#),
        ),
        (
            "github 422",
            StatusCode::UNPROCESSABLE_ENTITY,
            Bytes::from_static(br#"{"message":"Validation Failed","errors":[{"resource":"Issue","field":"title","code":"missing_field"}],"documentation_url":"https://docs.github.com/rest"}"#),
        ),
        (
            "json:api 422",
            StatusCode::UNPROCESSABLE_ENTITY,
            Bytes::from_static(br#"{"errors":[{"status":"422","code":"invalid","source":{"pointer":"/data/attributes/firstName"},"title":"Invalid Attribute","detail":"First name must contain at least two characters."}]}"#),
        ),
    ]
}

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
