//! `NoRedirectLayer`: every redirect becomes a typed error; none is ever followed.
//!
//! A redirect from an API is, for a machine client, a surprise at best (Open2b: "never follow
//! 3xx") and a credential leak at worst: a followed redirect re-sends `Authorization` or an API
//! key to whatever `Location` says. This layer turns 300, 301, 302, 303, 307 and 308 into an
//! `Err` carrying [`Redirected`] (the status and the raw `Location`, even if it is not a valid
//! URI). 304 Not Modified is a cache answer, not a redirect, and passes through, as does every
//! other status.
//!
//! The redirect's body is dropped unread: no byte of it is buffered (with hyper, the connection
//! is then closed rather than drained).
//!
//! # Example
//!
//! ```
//! use http::{Request, Response, StatusCode};
//! use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
//! use towline_core::{Error, ErrorKind};
//! use towline_redirect::NoRedirectLayer;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let mut client = ServiceBuilder::new()
//!     .layer(NoRedirectLayer::new())
//!     .service_fn(|_req: Request<()>| async {
//!         Ok::<_, BoxError>(
//!             Response::builder()
//!                 .status(StatusCode::FOUND)
//!                 .header("location", "https://elsewhere.example/login")
//!                 .body(())
//!                 .unwrap(),
//!         )
//!     });
//!
//! let err = client.ready().await.unwrap().call(Request::new(())).await.unwrap_err();
//! let err = Error::from(err);
//! assert_eq!(err.kind(), ErrorKind::Redirected);
//! let redirect = err.redirected().unwrap();
//! assert_eq!(redirect.status(), StatusCode::FOUND);
//! assert_eq!(redirect.location_str(), Some("https://elsewhere.example/login"));
//! # }
//! ```
//!
//! To let some redirects through to the caller (still never followed), give a predicate:
//!
//! ```
//! use http::StatusCode;
//! use towline_core::Redirected;
//! use towline_redirect::NoRedirectLayer;
//!
//! // Hand 303 See Other back as a response; every other redirect is an error.
//! let layer = NoRedirectLayer::new().allow(|r: &Redirected| r.status() == StatusCode::SEE_OTHER);
//! # let _ = layer;
//! ```

mod future;
mod policy;
mod service;

pub use future::ResponseFuture;
pub use policy::{AllowRedirect, DenyAll, is_redirect};
pub use service::{NoRedirect, NoRedirectLayer};
pub use towline_core::Redirected;
