//! `ReqwestService`: every towline layer, and the standard `Pipeline`, over a
//! [`reqwest::Client`], with `http::Request<B>` in and `http::Response<ResponseBody>` out.
//!
//! reqwest's `Client` is a tower `Service` only for its own `reqwest::Request`, while towline's
//! layers speak `http::Request<B>` (they read and copy its headers, extensions and body). This
//! crate is the adapter between the two, and the guarantees it adds:
//!
//! - **No redirect is ever followed.** reqwest follows up to 10 by default; a
//!   [`ReqwestService`] is only ever made by this crate from a `ClientBuilder` it sets to
//!   [`redirect::Policy::none()`](reqwest::redirect::Policy::none) last, so a 3xx comes back
//!   as a response (and `NoRedirectLayer` above turns it into `Err(Redirected)`). There is
//!   deliberately no constructor from a built `Client`: its policy cannot be read back.
//! - **Errors classify.** [`towline_core::Error::from`] sorts reqwest's errors as it sorts
//!   hyper-util's: a failed connect (refused, DNS, connect timeout) is
//!   `Network { may_have_reached_server: false }`, so even a POST may be retried; reqwest's own
//!   timeouts are `Timeout`; a reset or a cut body is `Network { may_have_reached_server: true }`.
//! - **Bodies replay.** Any `http_body::Body` goes in, so a [`towline_core::ReplayBody`] or
//!   any other [`Replayable`](towline_core::Replayable) body is re-sent by the retry and auth
//!   layers unchanged; the response body is an `http_body::Body` (`ResponseBody`), which the
//!   error-body decoder reads.
//!
//! reqwest is used without default features (no TLS, no HTTP/2, no system proxy lookup): add
//! the features you want (`rustls`, `http2`, ...) to your own `reqwest` dependency and give the
//! configured builder to [`ReqwestService::from_builder`].
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http::Request;
//! use http_body_util::{BodyExt, Full};
//! use tower::ServiceExt;
//! use towline::Pipeline;
//! use towline_reqwest::ReqwestService;
//! use towline_testkit::{Reply, TestServer};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), towline_core::BoxError> {
//! let server = TestServer::start().await;
//! server.script("/items", [Reply::status(503), Reply::ok().json("[]")]);
//!
//! // Name the body type: see "Why `B` is in the type" on `ReqwestService`.
//! let service = Pipeline::new().service(ReqwestService::<Full<Bytes>>::new()?);
//! let request = Request::get(server.url("/items")).body(Full::new(Bytes::new()))?;
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.status(), 200); // the 503 was retried
//! assert_eq!(response.into_body().collect().await?.to_bytes(), "[]");
//! assert_eq!(server.requests_to("/items").len(), 2);
//! # Ok(()) }
//! ```

mod body;
mod error;
mod future;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use service::ReqwestService;
