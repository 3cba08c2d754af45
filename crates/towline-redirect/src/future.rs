//! [`ResponseFuture`]: turns a redirect the policy does not allow into `Err(Redirected)`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use http::header::LOCATION;
use pin_project_lite::pin_project;
use towline_core::{BoxError, Redirected};

use crate::policy::{AllowRedirect, is_redirect};

pin_project! {
    /// The response future of [`NoRedirect`](crate::NoRedirect).
    pub struct ResponseFuture<F, A> {
        #[pin]
        inner: F,
        allow: A,
    }
}

impl<F, A> std::fmt::Debug for ResponseFuture<F, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, A> ResponseFuture<F, A> {
    pub(crate) fn new(inner: F, allow: A) -> Self {
        ResponseFuture { inner, allow }
    }
}

impl<F, A, B, E> Future for ResponseFuture<F, A>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
    A: AllowRedirect,
{
    type Output = Result<Response<B>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // Looked at in place: the result goes back as it came unless it is refused.
        let result = ready!(this.inner.poll(cx)).map_err(Into::into);
        let Ok(response) = &result else {
            return Poll::Ready(result);
        };
        if !is_redirect(response.status()) {
            return Poll::Ready(result);
        }
        let redirect =
            Redirected::new(response.status(), response.headers().get(LOCATION).cloned());
        if this.allow.allow(&redirect) {
            return Poll::Ready(result);
        }
        // The Location may carry tokens in its query: log the status only.
        tracing::debug!(status = %redirect.status(), "redirect not followed");
        // The response (and its unread body) is dropped here.
        Poll::Ready(Err(Box::new(redirect)))
    }
}
