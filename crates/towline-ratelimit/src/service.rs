//! [`RateLimit`], the service of [`RateLimitLayer`](crate::RateLimitLayer), and a request's key.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use http::{Request, Response};
use tower::Service;
use towline_core::{BoxError, Deadline};

use crate::admit::Admit;
use crate::config::Config;
use crate::future::{Held, Phase, ResponseFuture};
use crate::key::Key;

/// The service of [`RateLimitLayer`](crate::RateLimitLayer). See the layer for an example.
pub struct RateLimit<S> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
}

impl<S: Clone> Clone for RateLimit<S> {
    fn clone(&self) -> Self {
        RateLimit {
            inner: self.inner.clone(),
            config: self.config.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is the inner service's: a request held at a gate waits in its own future,
        // with its own clone of the service, so other keys are never held up here.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let key = match &self.config.key {
            None => request.uri().authority().map(|a| Key::new(a.as_str())),
            Some(key_fn) => {
                let (parts, body) = request.into_parts();
                let key = key_fn(&parts).map(Key::Owned);
                request = Request::from_parts(parts, body);
                key
            }
        };
        // The fast path, sent from here: through `gate` the future would be copied once more.
        match key {
            Some(key) if self.config.lets_all_pass() => {
                ResponseFuture::calling(self.inner.call(request), key, self.config.clone())
            }
            key => self.gate(request, key),
        }
    }
}

impl<S> RateLimit<S> {
    towline_core::inner_service_accessors!();

    /// Sends `request` now if its gate is open and its quota allows, or holds it (`call` has
    /// taken the fast path already).
    fn gate<B, ResBody>(
        &mut self,
        request: Request<B>,
        key: Option<Key>,
    ) -> ResponseFuture<S, B, ResBody>
    where
        S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    {
        let config = self.config.clone();
        let Some(key) = key else {
            return ResponseFuture::passing(self.inner.call(request), config);
        };
        let deadline = Deadline::in_force(request.extensions());
        let mut admit = Admit::new(&config, &key, deadline, None);
        // An in-memory store answers at once (the waker is never used); a remote store's
        // lookup goes on in the future.
        let mut cx = Context::from_waker(Waker::noop());
        match admit.poll(&mut cx, &config, &key) {
            Poll::Ready(Ok(admitted)) if admitted.wait.is_zero() => {
                if let Some(slot) = admitted.slot {
                    slot.keep();
                }
                ResponseFuture::calling(self.inner.call(request), key, config)
            }
            Poll::Ready(Ok(admitted)) => {
                // Keep the readied service for the next call; this one waits with a clone and
                // asks for readiness again after the wait.
                let phase = Phase::after(admitted);
                let held = Held::new(self.inner.clone(), request, key, deadline, phase);
                ResponseFuture::held(held, config)
            }
            Poll::Ready(Err(error)) => ResponseFuture::refused(error, config),
            Poll::Pending => {
                let phase = Phase::admitting(admit);
                let held = Held::new(self.inner.clone(), request, key, deadline, phase);
                ResponseFuture::held(held, config)
            }
        }
    }
}
