//! [`ErrorBody`]: the service of [`ErrorBodyLayer`](crate::ErrorBodyLayer).

use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower::Service;
use towline_core::{BoxError, CallContext};

use crate::body::ResponseBody;
use crate::future::ResponseFuture;
use crate::settings::Settings;

/// The service of [`ErrorBodyLayer`](crate::ErrorBodyLayer). See the layer for an example.
#[derive(Clone, Debug)]
pub struct ErrorBody<S> {
    inner: S,
    config: Settings,
}

impl<S> ErrorBody<S> {
    pub(crate) fn new(inner: S, config: Settings) -> Self {
        ErrorBody { inner, config }
    }

    towline_core::inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ErrorBody<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
    ResBody: Body,
    ResBody::Data: From<Bytes>,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // A timeout layer above times the head and the body read here with one timer; the
        // body read ends at that limit itself, so that the phase is right (see `Cutoff`).
        let limit =
            CallContext::from_extensions(request.extensions()).and_then(CallContext::attempt_limit);
        ResponseFuture::new(self.inner.call(request), self.config.clone(), limit)
    }
}
