//! [`ServiceBuilderExt`]: towline's layers as `ServiceBuilder` methods.

use std::time::Duration;

use tower::ServiceBuilder;
use tower::layer::util::Stack;
use tower_http::decompression::DecompressionLayer;
use towline_auth::TokenRefreshLayer;
use towline_envelope::ErrorBodyLayer;
use towline_ratelimit::RateLimitLayer;
use towline_redirect::NoRedirectLayer;
use towline_retry::RetryLayer;
use towline_timeout::{DeadlineLayer, TimeoutLayer};

mod sealed {
    pub trait Sealed {}
    impl<L> Sealed for tower::ServiceBuilder<L> {}
}

/// One method per towline layer on tower's `ServiceBuilder` (sealed: implemented for
/// `ServiceBuilder` only, so methods can be added without breaking anyone). Method names
/// avoid tower's own (`timeout`, `retry`, `rate_limit`). See the crate docs for an example.
pub trait ServiceBuilderExt<L>: sealed::Sealed + Sized {
    /// One budget for the whole call ([`DeadlineLayer`]).
    fn call_deadline(self, budget: Duration) -> ServiceBuilder<Stack<DeadlineLayer, L>>;
    /// Retries ([`RetryLayer`]).
    fn retries<C>(self, layer: RetryLayer<C>) -> ServiceBuilder<Stack<RetryLayer<C>, L>>;
    /// The rate-limit gate ([`RateLimitLayer`]).
    fn rate_limit_gate(self, layer: RateLimitLayer) -> ServiceBuilder<Stack<RateLimitLayer, L>>;
    /// Tokens attached and refreshed ([`TokenRefreshLayer`]).
    fn token_refresh(self, layer: TokenRefreshLayer)
    -> ServiceBuilder<Stack<TokenRefreshLayer, L>>;
    /// Redirects become errors ([`NoRedirectLayer`]).
    fn no_redirects(self) -> ServiceBuilder<Stack<NoRedirectLayer, L>>;
    /// A per-attempt limit on the response head ([`TimeoutLayer`]).
    fn attempt_timeout(self, head: Duration) -> ServiceBuilder<Stack<TimeoutLayer, L>>;
    /// A per-attempt limit on the response head, and on the time the body may stall between
    /// two frames (or before the first): [`TimeoutLayer::body_timeout`]. A body that stalls
    /// fails with `Elapsed` in the body phase.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bytes::Bytes;
    /// use http::Request;
    /// use http_body_util::{BodyExt, Empty};
    /// use hyper_util::client::legacy::Client;
    /// use hyper_util::rt::TokioExecutor;
    /// use tower::ServiceBuilder;
    /// use towline::prelude::*;
    /// use towline_testkit::{Reply, TestServer};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = TestServer::start().await;
    /// // The head and 3 bytes at once, then nothing.
    /// server.route("/stalls", Reply::ok().body("0123456789").stall_body_after(3));
    /// let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    /// let service = ServiceBuilder::new()
    ///     .attempt_timeout_with_idle_body(Duration::from_secs(10), Duration::from_millis(200))
    ///     .service(client);
    ///
    /// let request = Request::get(server.url("/stalls")).body(Empty::new()).unwrap();
    /// let response = service.oneshot(request).await.unwrap();
    /// let err = Error::from(response.into_body().collect().await.unwrap_err());
    /// assert_eq!(err.kind(), ErrorKind::Timeout);
    /// assert_eq!(err.to_string(), "response body stalled, not complete within 200ms");
    /// # }
    /// ```
    fn attempt_timeout_with_idle_body(
        self,
        head: Duration,
        idle: Duration,
    ) -> ServiceBuilder<Stack<TimeoutLayer, L>>;
    /// Error bodies decoded, every format auto-detected ([`ErrorBodyLayer`]).
    fn decode_error_bodies(self) -> ServiceBuilder<Stack<ErrorBodyLayer, L>>;
    /// Response bodies decompressed: gzip and deflate, and brotli and zstd with the
    /// `brotli` and `zstd` features (on by default), with tower-http's `DecompressionLayer`,
    /// which also sets `Accept-Encoding`. Put it below [`decode_error_bodies`] so that
    /// compressed error bodies are decoded.
    ///
    /// [`decode_error_bodies`]: ServiceBuilderExt::decode_error_bodies
    fn decompress_responses(self) -> ServiceBuilder<Stack<DecompressionLayer, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    fn call_deadline(self, budget: Duration) -> ServiceBuilder<Stack<DeadlineLayer, L>> {
        self.layer(DeadlineLayer::new(budget))
    }

    fn retries<C>(self, layer: RetryLayer<C>) -> ServiceBuilder<Stack<RetryLayer<C>, L>> {
        self.layer(layer)
    }

    fn rate_limit_gate(self, layer: RateLimitLayer) -> ServiceBuilder<Stack<RateLimitLayer, L>> {
        self.layer(layer)
    }

    fn token_refresh(
        self,
        layer: TokenRefreshLayer,
    ) -> ServiceBuilder<Stack<TokenRefreshLayer, L>> {
        self.layer(layer)
    }

    fn no_redirects(self) -> ServiceBuilder<Stack<NoRedirectLayer, L>> {
        self.layer(NoRedirectLayer::new())
    }

    fn attempt_timeout(self, head: Duration) -> ServiceBuilder<Stack<TimeoutLayer, L>> {
        self.layer(TimeoutLayer::new(head))
    }

    fn attempt_timeout_with_idle_body(
        self,
        head: Duration,
        idle: Duration,
    ) -> ServiceBuilder<Stack<TimeoutLayer, L>> {
        self.layer(TimeoutLayer::new(head).body_timeout(idle))
    }

    fn decode_error_bodies(self) -> ServiceBuilder<Stack<ErrorBodyLayer, L>> {
        self.layer(ErrorBodyLayer::new())
    }

    fn decompress_responses(self) -> ServiceBuilder<Stack<DecompressionLayer, L>> {
        self.layer(DecompressionLayer::new())
    }
}
