//! [`ResponseBody`]: reqwest's response body as an `http_body::Body` with towline's errors.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use towline_core::BoxError;

use crate::error::into_box_error;

/// The body of a response from a [`ReqwestService`](crate::ReqwestService): reqwest's body,
/// with its errors boxed so that [`towline_core::classify`] sorts them (a connection reset
/// mid-body is `Network { may_have_reached_server: true }`, reqwest's read timeout `Timeout`).
///
/// ```
/// use bytes::Bytes;
/// use http::Request;
/// use http_body_util::{BodyExt, Empty};
/// use tower::ServiceExt;
/// use towline_reqwest::{ReqwestService, ResponseBody};
/// use towline_testkit::{Reply, TestServer};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), towline_core::BoxError> {
/// let server = TestServer::start().await;
/// server.route("/hello", Reply::ok().body("hello"));
///
/// let response: http::Response<ResponseBody> = ReqwestService::new()?
///     .oneshot(Request::get(server.url("/hello")).body(Empty::<Bytes>::new())?)
///     .await?;
/// let body = response.into_body().collect().await?.to_bytes();
/// assert_eq!(body, "hello");
/// # Ok(()) }
/// ```
pub struct ResponseBody {
    inner: reqwest::Body,
}

impl ResponseBody {
    pub(crate) fn new(inner: reqwest::Body) -> Self {
        ResponseBody { inner }
    }

    /// reqwest's body inside, to hand on as a `reqwest::Body` (say, as the body of another
    /// request).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::Request;
    /// use http_body_util::Empty;
    /// use tower::ServiceExt;
    /// use towline_reqwest::ReqwestService;
    /// use towline_testkit::{Reply, TestServer};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), towline_core::BoxError> {
    /// let server = TestServer::start().await;
    /// server.route("/hello", Reply::ok().body("hello"));
    /// let response = ReqwestService::new()?
    ///     .oneshot(Request::get(server.url("/hello")).body(Empty::<Bytes>::new())?)
    ///     .await?;
    /// let body: reqwest::Body = response.into_body().into_inner();
    /// # let _ = body;
    /// # Ok(()) }
    /// ```
    pub fn into_inner(self) -> reqwest::Body {
        self.inner
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // reqwest's body is a box inside: always `Unpin`.
        Pin::new(&mut self.inner)
            .poll_frame(cx)
            .map(|frame| frame.map(|frame| frame.map_err(into_box_error)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
