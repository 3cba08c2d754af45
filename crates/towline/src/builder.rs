//! [`ServiceBuilderExt`]: towline's layers as `ServiceBuilder` methods.

use std::time::Duration;

use tower::ServiceBuilder;
use tower::layer::util::Stack;
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
    /// Error bodies decoded, every format auto-detected ([`ErrorBodyLayer`]).
    fn decode_error_bodies(self) -> ServiceBuilder<Stack<ErrorBodyLayer, L>>;
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

    fn decode_error_bodies(self) -> ServiceBuilder<Stack<ErrorBodyLayer, L>> {
        self.layer(ErrorBodyLayer::new())
    }
}
