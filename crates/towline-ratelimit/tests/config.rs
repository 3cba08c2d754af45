//! No setting, however large, panics (issue 17, item 3).

mod common;

use std::future::Future;
use std::time::Duration;

use common::{SECOND, first_asks_to_wait, ok, request};
use http::StatusCode;
use tower::{Layer, ServiceExt};
use towline_core::{Error, RateLimitReason, RateLimited};
use towline_ratelimit::{Quota, QuotaError, RateLimitLayer};

#[tokio::test(start_paused = true)]
async fn max_wait_of_duration_max_does_not_panic() {
    let service = RateLimitLayer::new()
        .max_wait(Duration::MAX)
        .quota(Quota::new(1, SECOND))
        .layer(ok());
    service.clone().oneshot(request("/a")).await.unwrap();
    // This one waits for its slot: the end of `max_wait` saturates instead of overflowing.
    service.oneshot(request("/a")).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_quota_with_a_huge_per_does_not_panic() {
    let service = RateLimitLayer::new()
        .quota(Quota::new(1, Duration::MAX))
        .layer(ok());
    service.clone().oneshot(request("/a")).await.unwrap();
    let err = Error::from(service.oneshot(request("/a")).await.unwrap_err());
    let reason = err.find::<RateLimited>().unwrap().reason();
    assert_eq!(reason, RateLimitReason::QuotaExhausted);
}

#[tokio::test(start_paused = true)]
async fn every_duration_setting_at_max_does_not_panic() {
    let service = RateLimitLayer::new()
        .max_wait(Duration::MAX)
        .max_close(Duration::MAX)
        .spread(Duration::MAX)
        .quota(Quota::new(u32::MAX, Duration::MAX))
        .layer(first_asks_to_wait(
            StatusCode::TOO_MANY_REQUESTS,
            "99999999999",
        ));
    service.clone().oneshot(request("/a")).await.unwrap();
    // The gate is closed for the hint's capped hour and the spread is centuries: the call
    // waits (no refusal: max_wait is unbounded), which is what these settings ask for.
    let mut call = Box::pin(service.oneshot(request("/b")));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(call.as_mut().poll(&mut cx).is_pending());
    tokio::time::advance(Duration::from_secs(7200)).await;
    let polled = call.as_mut().poll(&mut cx);
    assert!(polled.is_pending(), "{polled:?}");
}

#[test]
fn a_quota_that_makes_no_sense_is_a_typed_error() {
    assert_eq!(Quota::try_new(0, SECOND), Err(QuotaError::ZeroCalls));
    assert_eq!(
        Quota::try_new(1, Duration::ZERO),
        Err(QuotaError::ZeroPeriod)
    );
    // `new` clamps, as documented.
    let clamped = Quota::new(0, Duration::ZERO);
    assert_eq!(
        (clamped.calls(), clamped.per()),
        (1, Duration::from_nanos(1))
    );
}
