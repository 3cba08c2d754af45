//! A real HTTP/1.1 server on `127.0.0.1`, started in-process in one line,
//! with scripted replies, injected faults and a log of every request.
//!
//! towline's tests, examples and benches talk to this server and nothing else.
//! It is a plain hyper 1.x server on a real loopback socket, so clients see
//! real TCP behaviour: connection reuse, resets, stalls, refused connections.
//!
//! - [`TestServer::start`] binds `127.0.0.1:0` and serves on the current tokio
//!   runtime. [`TestServer::route`] and [`TestServer::script`] say what each
//!   path answers; a path without a route gets a 404.
//! - [`Reply`] is the answer: status, headers, body, and faults — a
//!   [`delay`](Reply::delay) before the head, a [`slow_body`](Reply::slow_body),
//!   a body that [stalls](Reply::stall_body_after), a TCP
//!   [reset](Reply::reset) before or [after](Reply::reset_after_head) the
//!   head, a [huge](Reply::huge_body) or [endless](Reply::endless_body) body.
//! - [`RecordedRequest`] is what the server saw: method, URI, headers, body,
//!   arrival time and connection number, logged when the head arrives.
//!
//! All waiting (delays, pacing, the shutdown grace period) uses the tokio
//! clock, so tests can run under `tokio::time::pause()`; arrival times are
//! [`tokio::time::Instant`]s for the same reason.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use towline_testkit::{Reply, TestServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let server = TestServer::start().await;
//! server.script(
//!     "/orders",
//!     [
//!         Reply::status(503).header("retry-after", "1"),
//!         Reply::status(201).json(r#"{"id":7}"#),
//!     ],
//! );
//!
//! let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
//! let post = || {
//!     http::Request::post(server.url("/orders?dry_run=1"))
//!         .header("content-type", "application/json")
//!         .body(Full::new(Bytes::from_static(br#"{"item":"rope"}"#)))
//!         .unwrap()
//! };
//!
//! let first = client.request(post()).await.unwrap();
//! assert_eq!(first.status(), 503);
//! assert_eq!(first.headers()["retry-after"], "1");
//!
//! let second = client.request(post()).await.unwrap();
//! assert_eq!(second.status(), 201);
//! let body = second.into_body().collect().await.unwrap().to_bytes();
//! assert_eq!(&body[..], br#"{"id":7}"#);
//!
//! let log = server.requests_to("/orders");
//! assert_eq!(log.len(), 2);
//! assert_eq!(log[0].method, http::Method::POST);
//! assert_eq!(log[0].query(), Some("dry_run=1"));
//! assert_eq!(log[1].body_text(), r#"{"item":"rope"}"#);
//! // The client kept the connection alive between the two requests.
//! assert_eq!(log[0].connection, log[1].connection);
//!
//! server.shutdown().await;
//! # }
//! ```
//!
//! # What the client sees
//!
//! Observed with hyper-util's legacy client on Linux (and pinned down by this
//! crate's tests, including how `towline_core::classify` reads each error):
//!
//! | Reply | Client result | towline-core kind |
//! |---|---|---|
//! | [`Reply::reset`] | the request fails: `Error(SendRequest, hyper::Error(Io, Os { kind: ConnectionReset }))`, `is_connect() == false` | `Network { may_have_reached_server: true }` |
//! | [`Reply::reset_after_head`], [`Reply::reset_after_body_bytes`] | the head (and the `n` bytes) arrive, then the body fails: `hyper::Error(Body, Os { kind: ConnectionReset })` | `Network { may_have_reached_server: true }` |
//! | [`Reply::stall_body_after`] | the head (and `n` bytes) arrive, then nothing: a `tokio::time::timeout` around the read elapses | `Timeout` (for the `Elapsed`) |
//! | a stalled body cut by [`TestServer::shutdown`] | `hyper::Error(Body, Custom { kind: UnexpectedEof, error: IncompleteBody })` | `Network { may_have_reached_server: true }` |
//! | [`Reply::delay`] longer than the client's timeout | the `tokio::time::timeout` elapses | `Timeout` |
//! | server shut down or dropped | `Error(Connect, ConnectError("tcp connect error", .., Os { kind: ConnectionRefused }))`, `is_connect() == true` | `Network { may_have_reached_server: false }` |
//!
//! A reset is a real TCP RST (`SO_LINGER` 0), not a clean close: clients see
//! `ConnectionReset`, not an end of file.

mod body;
mod connection;
mod log;
mod redis;
mod reply;
mod routes;
mod server;
pub mod vendors;

pub use crate::connection::SHUTDOWN_GRACE;
pub use crate::log::{MAX_RECORDED_BODY, RecordedRequest};
pub use crate::redis::RedisServer;
pub use crate::reply::Reply;
pub use crate::routes::DEFAULT_LOG_LIMIT;
pub use crate::server::TestServer;
