//! [`ResponseFuture`]: one request sent by reqwest, answered as an `http::Response`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower::Service;
use towline_core::BoxError;

use crate::body::ResponseBody;
use crate::error::into_box_error;

type Pending = <reqwest::Client as Service<reqwest::Request>>::Future;

pin_project! {
    /// The response future of a [`ReqwestService`](crate::ReqwestService).
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http::Request;
    /// use http_body_util::Empty;
    /// use tower::{Service, ServiceExt};
    /// use towline_reqwest::{ReqwestService, ResponseFuture};
    /// use towline_testkit::{Reply, TestServer};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), towline_core::BoxError> {
    /// let server = TestServer::start().await;
    /// server.route("/ping", Reply::ok());
    /// let mut service = ReqwestService::new()?;
    /// let request = Request::get(server.url("/ping")).body(Empty::<Bytes>::new())?;
    /// let ready = ServiceExt::<Request<Empty<Bytes>>>::ready(&mut service).await?;
    /// let future: ResponseFuture = ready.call(request);
    /// assert_eq!(future.await?.status(), 200);
    /// # Ok(()) }
    /// ```
    pub struct ResponseFuture {
        #[pin]
        state: State,
    }
}

pin_project! {
    #[project = StateProj]
    enum State {
        /// reqwest is sending the request.
        Sending { #[pin] pending: Pending },
        /// The request could not be made into a reqwest request (a URI reqwest rejects):
        /// nothing was sent.
        Rejected { error: Option<reqwest::Error> },
    }
}

impl ResponseFuture {
    pub(crate) fn sending(pending: Pending) -> Self {
        ResponseFuture {
            state: State::Sending { pending },
        }
    }

    pub(crate) fn rejected(error: reqwest::Error) -> Self {
        ResponseFuture {
            state: State::Rejected { error: Some(error) },
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Sending { .. } => "Sending",
            State::Rejected { .. } => "Rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl Future for ResponseFuture {
    type Output = Result<http::Response<ResponseBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Sending { pending } => {
                let response = ready!(pending.poll(cx)).map_err(into_box_error)?;
                let response = http::Response::<reqwest::Body>::from(response);
                Poll::Ready(Ok(response.map(ResponseBody::new)))
            }
            StateProj::Rejected { error } => match error.take() {
                Some(error) => Poll::Ready(Err(into_box_error(error))),
                None => panic!("ResponseFuture polled after it completed"),
            },
        }
    }
}
