//! [`CircuitBreaker`], the service of [`CircuitBreakerLayer`](crate::CircuitBreakerLayer).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower::Service;
use towline_core::BoxError;

use crate::circuit::Admission;
use crate::future::{ResponseFuture, Ticket};
use crate::layer::Config;

/// The service of [`CircuitBreakerLayer`](crate::CircuitBreakerLayer). See the layer for an
/// example.
pub struct CircuitBreaker<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
}

impl<S: Clone> Clone for CircuitBreaker<S> {
    fn clone(&self) -> Self {
        CircuitBreaker {
            inner: self.inner.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for CircuitBreaker<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> CircuitBreaker<S> {
    towline_core::inner_service_accessors!();
}

impl<S, B, ResBody> Service<Request<B>> for CircuitBreaker<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the inner service's: an open circuit refuses in the call, for its key
        // only.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let registry = &self.config.registry;
        let (circuit, request) = match self.config.key.as_deref() {
            None => (registry.for_authority(request.uri()), request),
            Some(key_fn) => registry.for_key(key_fn, request),
        };
        let Some(circuit) = circuit else {
            return ResponseFuture::passing(self.inner.call(request));
        };
        match circuit.admit() {
            Admission::Closed { generation } => {
                let ticket = Ticket::new(circuit, generation, false);
                ResponseFuture::calling(self.inner.call(request), ticket)
            }
            Admission::Probe { generation } => {
                let ticket = Ticket::new(circuit, generation, true);
                ResponseFuture::calling(self.inner.call(request), ticket)
            }
            Admission::Refused(error) => ResponseFuture::refused(error),
        }
    }
}
