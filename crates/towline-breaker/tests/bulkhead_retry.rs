//! Under towline's retry layer, a full bulkhead ends the call: the retry layer does not retry
//! into it (its classifier's verdict on `ErrorKind::BulkheadFull` is final).

mod common;

use std::time::Duration;

use common::{Upstream, bounded, poll_once, request};
use tokio::time::Instant;
use tower::{ServiceBuilder, ServiceExt};
use towline_breaker::BulkheadLayer;
use towline_core::{Error, ErrorKind};
use towline_retry::{RetryLayer, RetryPolicy};

#[tokio::test(start_paused = true)]
async fn the_retry_layer_does_not_retry_into_a_full_bulkhead() {
    bounded(async {
        let upstream = Upstream::held(200);
        let bulkhead = BulkheadLayer::new(1);
        let service = ServiceBuilder::new()
            .layer(RetryLayer::with_policy(
                RetryPolicy::new().max_retries(5).no_budget().seed(1),
            ))
            .layer(bulkhead.clone())
            .service(upstream.service());

        let mut busy = Box::pin(service.clone().oneshot(request("api.example")));
        assert!(poll_once(busy.as_mut()).is_pending());

        let start = Instant::now();
        let err = Error::from(
            service
                .clone()
                .oneshot(request("api.example"))
                .await
                .unwrap_err(),
        );
        assert_eq!(err.kind(), ErrorKind::BulkheadFull);
        assert_eq!(start.elapsed(), Duration::ZERO, "no backoff sleep");
        assert!(err.attempts().is_none(), "not retried");
        assert_eq!(upstream.calls(), 1);
    })
    .await
}
