//! [`Retry`], the service of [`RetryLayer`](crate::RetryLayer).

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Method, Request, Response};
use tower::Service;
use towline_core::{BoxError, CallContext, Replayable, Resend};

use crate::classify::{Classify, StandardClassifier};
use crate::decide::Call;
use crate::future::ResponseFuture;
use crate::policy::{IDEMPOTENCY_KEY, resend_after_sent};
use crate::shared::Shared;
use crate::template::Template;

/// The service of [`RetryLayer`](crate::RetryLayer). See the crate docs for an example.
pub struct Retry<S, C = StandardClassifier> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared<C>>,
}

impl<S: Clone, C> Clone for Retry<S, C> {
    fn clone(&self) -> Self {
        Retry {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for Retry<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("policy", &self.shared)
            .finish()
    }
}

impl<S, C> Retry<S, C> {
    towline_core::inner_service_accessors!();
}

/// 128 random bits as 32 hex digits. `RandomState` is keyed by the operating system's random
/// numbers once per thread and moves on with each `new()`, so no two keys repeat, across
/// processes too, whatever seed the jitter uses.
fn idempotency_key() -> Option<HeaderValue> {
    let state = RandomState::new();
    let key = format!("{:016x}{:016x}", state.hash_one(1u8), state.hash_one(2u8));
    HeaderValue::from_str(&key).ok()
}

impl<S, C, B, ResBody> Service<Request<B>> for Retry<S, C>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    B: Replayable,
    C: Classify,
{
    type Response = Response<ResBody>;
    type Error = BoxError;
    type Future = ResponseFuture<S, B, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let policy = &self.shared.policy;
        // Keep the service that `poll_ready` made ready; retries use this clone of it.
        let clone = self.inner.clone();
        let service = mem::replace(&mut self.inner, clone);

        if let Some(budget) = &policy.budget {
            budget.deposit();
        }
        let method = request.method();
        if policy.add_idempotency_keys
            && (method == Method::POST || method == Method::PATCH)
            && !request.headers().contains_key(IDEMPOTENCY_KEY)
            && let Some(key) = idempotency_key()
        {
            request.headers_mut().insert(IDEMPOTENCY_KEY, key);
        }
        // One read of the context, one write back: this runs on every call.
        let existing = CallContext::from_extensions(request.extensions()).copied();
        let call = Call {
            resend_after_sent: resend_after_sent(&request),
            deadline: existing.and_then(|context| context.deadline()),
        };
        let mut context = existing.unwrap_or_default();
        let template = if policy.max_retries > 0 {
            Template::of(&request, context, existing.is_some())
        } else {
            None
        };
        // Holding a copy, promise the layers below to send the attempt again after a
        // credentials refresh; without one, say so, over any promise from further up.
        let resend = match template {
            Some(_) => Resend::OnRefresh,
            None => Resend::No,
        };
        context.set_attempt(1);
        context.set_resend(resend);
        let extensions = request.extensions_mut();
        match extensions.get_mut::<CallContext>() {
            Some(existing) => *existing = context,
            // Nothing to say without a copy: leave a request with no extensions alone.
            None if resend == Resend::OnRefresh => {
                extensions.insert(context);
            }
            None => {}
        }
        ResponseFuture::new(
            service,
            request,
            resend,
            self.shared.clone(),
            template,
            call,
        )
    }
}
