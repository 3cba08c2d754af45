//! Your own error envelope, in a few lines: implement `ErrorFormat` and hand it to the
//! `ErrorBodyLayer`.
//!
//! Run it with `cargo run --example custom_envelope`. It starts the loopback test server,
//! which answers in a made-up vendor's format (`{"fault": {"id", "text", "field"}}`), and shows
//! the typed `ApiError` the layer produces, next to an RFC 9457 body that the built-in
//! auto-detection still decodes.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use towline_core::{ApiCode, ApiError, ApiErrorKind, ApiFormat, Error, Target};
use towline_envelope::{Decoder, ErrorBodyLayer, ErrorFormat};
use towline_testkit::{Reply, TestServer};

/// Acme's envelope: `{"fault": {"id": 17, "text": "...", "field": "..."}}`.
struct Acme;

impl ErrorFormat for Acme {
    fn name(&self) -> &'static str {
        "acme"
    }

    fn decode(&self, status: StatusCode, body: &Value) -> Option<ApiError> {
        let fault = body.get("fault")?;
        let mut err = ApiError::new(status, ApiFormat::Custom(self.name()));
        err.code = fault.get("id").and_then(Value::as_i64).map(ApiCode::Number);
        err.message = fault.get("text").and_then(Value::as_str).map(str::to_owned);
        err.target = fault
            .get("field")
            .and_then(Value::as_str)
            .map(|f| Target::Field(f.to_owned()));
        if err.code == Some(ApiCode::Number(17)) {
            // Acme's code 17 is a validation failure whatever the HTTP status says.
            err.kind = ApiErrorKind::Validation;
        }
        Some(err)
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let server = TestServer::start().await;
    server.route(
        "/orders",
        Reply::status(500)
            .json(r#"{"fault": {"id": 17, "text": "quantity must be positive", "field": "qty"}}"#),
    );
    server.route(
        "/invoices",
        Reply::status(404)
            .header("content-type", "application/problem+json")
            .body(r#"{"type": "https://acme.example/problems/missing", "title": "No such invoice", "status": 404}"#),
    );

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let service = ServiceBuilder::new()
        .layer(ErrorBodyLayer::with_decoder(
            Decoder::new().with_format(Acme),
        ))
        .service(client);

    for path in ["/orders", "/invoices"] {
        let request = Request::get(server.url(path)).body(Empty::new())?;
        let err = match service.clone().oneshot(request).await {
            Ok(response) => {
                println!("{path}: {} (no error)", response.status());
                continue;
            }
            Err(err) => Error::from(err),
        };
        let api = err.api().expect("the layer decodes every error status");
        println!("{path}");
        println!("  format:  {}", api.format);
        println!("  status:  {}", api.status);
        println!("  kind:    {}", api.kind);
        if let Some(code) = &api.code {
            println!("  code:    {code}");
        }
        if let Some(message) = &api.message {
            println!("  message: {message}");
        }
        if let Some(target) = &api.target {
            println!("  target:  {target}");
        }
    }
    server.shutdown().await;
    Ok(())
}
