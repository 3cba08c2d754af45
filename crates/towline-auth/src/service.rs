//! [`TokenRefresh`], the service of [`TokenRefreshLayer`](crate::TokenRefreshLayer).

use std::fmt;
use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::Service;
use towline_core::{BoxError, CallContext, Replayable, Resend};

use crate::cache::Cache;
use crate::future::ResponseFuture;

/// The service of [`TokenRefreshLayer`](crate::TokenRefreshLayer). See the layer for an
/// example.
pub struct TokenRefresh<S> {
    pub(crate) inner: S,
    pub(crate) cache: Arc<Cache>,
}

impl<S: Clone> Clone for TokenRefresh<S> {
    fn clone(&self) -> Self {
        TokenRefresh {
            inner: self.inner.clone(),
            cache: self.cache.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for TokenRefresh<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRefresh")
            .field("inner", &self.inner)
            .field("cache", &self.cache)
            .finish()
    }
}

impl<S> TokenRefresh<S> {
    towline_core::inner_service_accessors!();
}

impl<S, B, ResBody> Service<Request<B>> for TokenRefresh<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    B: Replayable,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // What a layer above promised about resending this attempt after a refresh.
        let context = CallContext::from_extensions(request.extensions());
        let resend = context.map_or(Resend::No, CallContext::resend);
        let deadline = context.and_then(CallContext::deadline);
        let cache = self.cache.clone();
        match cache.fresh() {
            Some((header, generation)) if resend != Resend::No => {
                // A layer above keeps the copy (or this is its resend): send as we are.
                ResponseFuture::send_with(
                    &mut self.inner,
                    request,
                    header,
                    generation,
                    resend,
                    cache,
                )
            }
            fresh => {
                // Keep the service `poll_ready` readied for this call; a resend of our own or
                // a send after the fetch uses it, and the layer keeps a clone.
                let clone = self.inner.clone();
                let service = mem::replace(&mut self.inner, clone);
                match fresh {
                    Some((header, generation)) => ResponseFuture::send_keeping_copy(
                        service, request, header, generation, cache,
                    ),
                    // No token yet, or none valid: wait for the cache's fetch first.
                    None => ResponseFuture::fetch_first(service, request, resend, deadline, cache),
                }
            }
        }
    }
}
