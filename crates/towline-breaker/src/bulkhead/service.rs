//! [`Bulkhead`], the service of [`BulkheadLayer`](crate::BulkheadLayer).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tokio::time::Instant;
use tower::Service;
use towline_core::{BoxError, Deadline};

use super::future::BulkheadFuture;
use super::layer::Config;
use crate::time::after;

/// The service of [`BulkheadLayer`](crate::BulkheadLayer). See the layer for an example.
pub struct Bulkhead<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
}

impl<S: Clone> Clone for Bulkhead<S> {
    fn clone(&self) -> Self {
        Bulkhead {
            inner: self.inner.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Bulkhead<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> Bulkhead<S> {
    towline_core::inner_service_accessors!();
}

impl<S, B, ResBody> Service<Request<B>> for Bulkhead<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = BulkheadFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the inner service's: a place is taken in the response future, per
        // key, so a full key never holds back the calls of another.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let registry = &self.config.registry;
        let (compartment, request) = match self.config.key.as_deref() {
            None => (registry.for_authority(request.uri()), request),
            Some(key_fn) => registry.for_key(key_fn, request),
        };
        let Some(compartment) = compartment else {
            return BulkheadFuture::passing(self.inner.call(request));
        };
        if let Some(place) = compartment.try_place() {
            return BulkheadFuture::calling(self.inner.call(request), place);
        }
        let Some(queued) = compartment.try_queue() else {
            return BulkheadFuture::refused(compartment.refusal(std::time::Duration::ZERO));
        };
        let started = Instant::now();
        let limit = compartment
            .limits
            .max_wait
            .map(|max_wait| after(started, max_wait));
        let deadline = Deadline::in_force(request.extensions()).map(Deadline::instant);
        let until = match (limit, deadline) {
            (Some(limit), Some(deadline)) => Some(limit.min(deadline)),
            (limit, deadline) => limit.or(deadline),
        };
        // The ready service goes with the request; the layer keeps a clone, to be made ready
        // again (as tower-http's redirect and tower's retry do).
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        BulkheadFuture::waiting(queued, until, started, service, request)
    }
}
