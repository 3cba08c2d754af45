//! Two time limits for tower HTTP services: one per attempt, one for the whole call.
//!
//! - [`TimeoutLayer`] limits one attempt: the response head must arrive within the limit, and,
//!   if you ask, the body must never stall longer than a second limit between two frames
//!   (like tower-http's body timeout). Fails with [`Elapsed`], which says which limit passed
//!   and for which [`TimeoutPhase`].
//! - [`DeadlineLayer`] gives the whole call one budget. It sets the [`Deadline`] in the
//!   request's [`CallContext`](towline_core::CallContext) for the layers below it
//!   ([`Deadline::in_force`]; an earlier one the caller set wins), so they (retry, rate-limit)
//!   never start a sleep or an attempt that cannot finish in time, and it fails the call with [`DeadlineExceeded`] when the deadline
//!   passes, whatever those layers are doing. By default the response body must also be
//!   complete by then.
//!
//! Both read time from `tokio::time`, so they can be tested under `tokio::time::pause()`.
//! Both return their own typed errors rather than tower's (`tower::timeout::error::Elapsed`
//! carries no duration), so that `towline_core::Error` tells a per-attempt timeout
//! ([`ErrorKind::Timeout`](towline_core::ErrorKind::Timeout)) from the end of the call's budget
//! ([`ErrorKind::DeadlineExceeded`](towline_core::ErrorKind::DeadlineExceeded)).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use http::{Request, Response};
//! use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
//! use towline_core::{Error, ErrorKind};
//! use towline_timeout::{DeadlineLayer, TimeoutLayer};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let mut client = ServiceBuilder::new()
//!     .layer(DeadlineLayer::new(Duration::from_secs(30)))
//!     .layer(TimeoutLayer::new(Duration::from_secs(5)).body_timeout(Duration::from_secs(5)))
//!     .service_fn(|_req: Request<()>| async {
//!         // An upstream that takes 10 s to answer.
//!         tokio::time::sleep(Duration::from_secs(10)).await;
//!         Ok::<_, BoxError>(Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
//!     });
//!
//! let err = client.ready().await.unwrap().call(Request::new(())).await.unwrap_err();
//! assert_eq!(Error::from(err).kind(), ErrorKind::Timeout);
//! # }
//! ```

mod body;
mod deadline;
mod timeout;

pub use body::TimeoutBody;
pub use deadline::{DeadlineFuture, DeadlineLayer, WithDeadline};
pub use timeout::{Timeout, TimeoutFuture, TimeoutLayer};
pub use towline_core::{Deadline, DeadlineExceeded, Elapsed, TimeoutPhase};
