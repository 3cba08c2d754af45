//! [`NoRedirectLayer`] and its service, [`NoRedirect`].

use std::fmt;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::{Layer, Service};
use towline_core::{BoxError, Redirected};

use crate::future::ResponseFuture;
use crate::policy::{AllowRedirect, DenyAll};

/// A [`Layer`] that wraps services in [`NoRedirect`]. See the crate docs for an example.
#[derive(Clone, Copy, Default)]
pub struct NoRedirectLayer<A = DenyAll> {
    allow: A,
}

// Manual, so that a closure as the allow predicate (which has no Debug) still gives Debug.
impl<A> fmt::Debug for NoRedirectLayer<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoRedirectLayer").finish_non_exhaustive()
    }
}

impl NoRedirectLayer {
    /// Every redirect becomes an error.
    pub fn new() -> Self {
        NoRedirectLayer { allow: DenyAll }
    }
}

impl<A> NoRedirectLayer<A> {
    /// Hands the redirects `allow` accepts back as responses (still unfollowed).
    pub fn allow<F>(self, allow: F) -> NoRedirectLayer<F>
    where
        F: Fn(&Redirected) -> bool + Clone,
    {
        NoRedirectLayer { allow }
    }
}

impl<S, A: Clone> Layer<S> for NoRedirectLayer<A> {
    type Service = NoRedirect<S, A>;

    fn layer(&self, inner: S) -> Self::Service {
        NoRedirect {
            inner,
            allow: self.allow.clone(),
        }
    }
}

/// Turns redirect responses into [`Redirected`] errors. See the crate docs for an example.
#[derive(Clone, Copy)]
pub struct NoRedirect<S, A = DenyAll> {
    inner: S,
    allow: A,
}

impl<S: fmt::Debug, A> fmt::Debug for NoRedirect<S, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoRedirect")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> NoRedirect<S> {
    /// Wraps `inner`; every redirect becomes an error.
    pub fn new(inner: S) -> Self {
        NoRedirect {
            inner,
            allow: DenyAll,
        }
    }
}

impl<S, A> NoRedirect<S, A> {
    towline_core::inner_service_accessors!();
}

impl<S, A, ReqBody, ResBody> Service<Request<ReqBody>> for NoRedirect<S, A>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    A: AllowRedirect + Clone,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, A>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        ResponseFuture::new(self.inner.call(request), self.allow.clone())
    }
}
