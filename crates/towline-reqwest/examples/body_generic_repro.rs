//! Reproduction for PARKED.md: the `Pipeline` over a mock client that is generic over the
//! request body `B` (no bounds at all) exhausts memory in type checking, like `ReqwestService`.

use std::future::{Ready, ready};
use std::task::{Context, Poll};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{BoxError, Service, ServiceExt};
use towline::Pipeline;
use towline_reqwest::ResponseBody;

#[derive(Clone)]
struct Mock;
impl<B> Service<Request<B>> for Mock
{
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = Ready<Result<Self::Response, BoxError>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> { Poll::Ready(Ok(())) }
    fn call(&mut self, _: Request<B>) -> Self::Future { ready(Err("x".into())) }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let service = Pipeline::new().service(Mock);
    let _ = service.oneshot(Request::get("http://a/").body(Full::new(Bytes::new()))?).await;
    Ok(())
}
