//! The copy of a request the retry layer keeps, to send each later attempt.

use http::Request;
use towline_core::{CallContext, Replayable, Resend};

/// The request as first sent, and the call's context, to make each later attempt from.
pub(crate) struct Template<B> {
    request: Request<B>,
    context: CallContext,
}

impl<B: Replayable> Template<B> {
    /// A copy of `request` for later attempts, or `None` if its body cannot be sent again.
    /// `carried` says whether `request` carries a context already.
    ///
    /// The copy keeps the request's extensions but for the context, which each attempt gets
    /// afresh: when the context is the only extension (the usual case), no map is copied.
    pub(crate) fn of(request: &Request<B>, context: CallContext, carried: bool) -> Option<Self> {
        let mut template = Template {
            request: Request::new(request.body().replay()?),
            context,
        };
        let copy = &mut template.request;
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        let extensions = request.extensions();
        if extensions.len() > usize::from(carried) {
            *copy.extensions_mut() = extensions.clone();
        }
        Some(template)
    }

    /// The request for attempt number `attempt`, with its context saying so and what the
    /// retry layer promises about resending it; `None` if the body cannot be sent again.
    pub(crate) fn attempt(&self, attempt: u32, resend: Resend) -> Option<Request<B>> {
        let mut next = towline_core::replay_request(&self.request)?;
        let mut context = self.context;
        context.set_attempt(attempt);
        context.set_resend(resend);
        next.extensions_mut().insert(context);
        Some(next)
    }
}
