//! [`Hedge`], the service of [`HedgeLayer`](super::HedgeLayer).

use std::fmt;
use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use tokio::time::Instant;
use tower::Service;
use towline_core::{BoxError, CallContext, Deadline, Replayable};

use super::future::{Plan, ResponseFuture};
use super::layer::{Delay, Shared};
use crate::policy::resend_after_sent;
use crate::template::Template;

/// The service of [`HedgeLayer`](super::HedgeLayer). See its docs for an example.
pub struct Hedge<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S: Clone> Clone for Hedge<S> {
    fn clone(&self) -> Self {
        Hedge {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Hedge<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedge")
            .field("inner", &self.inner)
            .field("policy", &self.shared)
            .finish()
    }
}

impl<S> Hedge<S> {
    towline_core::inner_service_accessors!();
}

impl<S, B, ResBody> Service<Request<B>> for Hedge<S>
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
        let shared = &self.shared;
        if shared.deposits {
            shared.budget.deposit();
        }
        let eligible = may_hedge(&request);
        // The percentile mode learns from every request it could hedge.
        let sampled = (eligible && matches!(shared.delay, Delay::Percentile(_))).then(Instant::now);
        let Some(plan) = eligible.then(|| plan(shared, &request)).flatten() else {
            // Nothing to hedge: no copy, no clone, no timer.
            let future = self.inner.call(request);
            return ResponseFuture::new(future, None, sampled, shared.clone());
        };
        // The service `poll_ready` made ready sends the first attempt; it is kept for the
        // hedge, which waits for it to be ready again.
        let clone = self.inner.clone();
        let mut service = mem::replace(&mut self.inner, clone);
        let future = service.call(request);
        ResponseFuture::new(future, Some((plan, service)), sampled, shared.clone())
    }
}

/// Whether sending `request` twice is harmless: the retry layer's rule (an idempotent
/// method, or an `Idempotency-Key`).
fn may_hedge<B: Replayable>(request: &Request<B>) -> bool {
    resend_after_sent(request)
}

/// What a hedge of `request` needs, or `None` if it is not hedged: no delay known yet, a
/// deadline too close, or a body that cannot be sent again.
fn plan<B: Replayable>(shared: &Shared, request: &Request<B>) -> Option<Plan<B>> {
    let delay = match &shared.delay {
        Delay::Fixed(delay) => *delay,
        Delay::Percentile(latencies) => latencies.delay()?,
    };
    if delay == Duration::MAX {
        return None;
    }
    let existing = CallContext::from_extensions(request.extensions()).copied();
    if let Some(deadline) = existing.and_then(|context| context.deadline())
        && deadline.remaining() <= delay
    {
        return None;
    }
    let context = existing.unwrap_or_default();
    let template = Template::of(request, context, existing.is_some())?;
    Some(Plan {
        template,
        attempt: context.attempt().saturating_add(1),
        resend: context.resend(),
        delay,
        at: Deadline::after(delay).instant(),
    })
}
