//! What the `layers` bench and the `instructions` example share, so that both measure the
//! same calls: the request, the upstream, and the retry policy users write for tower's `Retry`.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::Full;

/// The per-attempt (head) timeout of every timeout case.
pub(crate) const HEAD: Duration = Duration::from_secs(10);
/// The whole-call budget of every deadline case.
pub(crate) const BUDGET: Duration = Duration::from_secs(30);

/// A GET with two headers and an empty body.
pub(crate) fn request() -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::GET)
        .uri("https://api.example/v1/items")
        .header("accept", "application/json")
        .header("user-agent", "towline-bench")
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

/// An upstream that answers at once.
pub(crate) async fn answer(
    _request: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::new())))
}

/// The policy users write for tower's `Retry`: 5xx and errors, 3 retries, the request copied
/// per call.
#[derive(Clone)]
pub(crate) struct TowerFiveXx {
    retries_left: u32,
}

impl<B, E> tower::retry::Policy<Request<Full<Bytes>>, Response<B>, E> for TowerFiveXx {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _request: &mut Request<Full<Bytes>>,
        result: &mut Result<Response<B>, E>,
    ) -> Option<Self::Future> {
        let failed = match result {
            Ok(response) => response.status().is_server_error(),
            Err(_) => true,
        };
        if failed && self.retries_left > 0 {
            self.retries_left -= 1;
            Some(std::future::ready(()))
        } else {
            None
        }
    }

    fn clone_request(&mut self, request: &Request<Full<Bytes>>) -> Option<Request<Full<Bytes>>> {
        let mut copy = Request::new(request.body().clone());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.headers_mut() = request.headers().clone();
        Some(copy)
    }
}

/// tower's `Retry` with [`TowerFiveXx`].
pub(crate) fn tower_retry() -> tower::retry::RetryLayer<TowerFiveXx> {
    tower::retry::RetryLayer::new(TowerFiveXx { retries_left: 3 })
}
