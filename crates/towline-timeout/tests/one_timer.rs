//! `DeadlineLayer` over `TimeoutLayer` registers one timer, not two, while the attempt's timer
//! would fire first, and never counts on a timer that cannot wake the call: one dropped before
//! the poll ends, or one registered with another task's waker.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use tokio::time::Instant;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use towline_core::{Error, ErrorKind};
use towline_timeout::{DeadlineLayer, Timeout, TimeoutLayer};

const SECOND: Duration = Duration::from_secs(1);

type Answer = Result<Response<Empty<Bytes>>, BoxError>;

/// A service that never answers.
fn hanging()
-> impl Service<Request<()>, Response = Response<Empty<Bytes>>, Error = BoxError> + Clone {
    service_fn(|_req: Request<()>| std::future::pending::<Answer>())
}

/// Runs `call` with a safety net far past every limit in these tests: a call the deadline
/// failed to end reports the net's 100 s instead of hanging the test.
async fn ended<F, T>(call: F) -> (Result<T, BoxError>, Duration)
where
    F: Future<Output = Result<T, BoxError>>,
{
    let started = Instant::now();
    let result = match tokio::time::timeout(100 * SECOND, call).await {
        Ok(result) => result,
        Err(_) => Err("the deadline never fired".into()),
    };
    (result, started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_that_fires_first_ends_the_call() {
    let service =
        DeadlineLayer::new(30 * SECOND).layer(TimeoutLayer::new(10 * SECOND).layer(hanging()));
    let (result, took) = ended(service.oneshot(Request::new(()))).await;
    assert_eq!(Error::from(result.unwrap_err()).kind(), ErrorKind::Timeout);
    assert_eq!(took, 10 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn a_deadline_before_the_attempt_timeout_still_fires() {
    let service =
        DeadlineLayer::new(5 * SECOND).layer(TimeoutLayer::new(10 * SECOND).layer(hanging()));
    let (result, took) = ended(service.oneshot(Request::new(()))).await;
    assert_eq!(
        Error::from(result.unwrap_err()).kind(),
        ErrorKind::DeadlineExceeded
    );
    assert_eq!(took, 5 * SECOND);
}

/// A future that, on its first poll, polls an attempt with a 10 s timeout (arming its timer),
/// then drops it and hangs without a timer of its own: only the deadline can end it.
struct AbandonsItsAttempt<F> {
    attempt: Option<Pin<Box<F>>>,
}

impl<F: Future> Future for AbandonsItsAttempt<F> {
    type Output = Answer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        if let Some(mut attempt) = self.attempt.take() {
            assert!(attempt.as_mut().poll(cx).is_pending());
            drop(attempt);
        }
        Poll::Pending
    }
}

#[tokio::test(start_paused = true)]
async fn a_timer_dropped_during_the_poll_does_not_stand_in_for_the_deadline() {
    let service = DeadlineLayer::new(30 * SECOND).layer(service_fn(|_req: Request<()>| {
        let attempt = Timeout::new(hanging(), 10 * SECOND).oneshot(Request::new(()));
        AbandonsItsAttempt {
            attempt: Some(Box::pin(attempt)),
        }
    }));
    let (result, took) = ended(service.oneshot(Request::new(()))).await;
    assert_eq!(
        Error::from(result.unwrap_err()).kind(),
        ErrorKind::DeadlineExceeded
    );
    assert_eq!(took, 30 * SECOND);
}

/// A future that polls its attempt (10 s timeout) with a waker that wakes nobody, then hangs.
struct PollsWithAnotherWaker<F> {
    attempt: Pin<Box<F>>,
}

impl<F: Future> Future for PollsWithAnotherWaker<F> {
    type Output = Answer;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Answer> {
        let mut elsewhere = Context::from_waker(Waker::noop());
        let _ = self.attempt.as_mut().poll(&mut elsewhere);
        Poll::Pending
    }
}

#[tokio::test(start_paused = true)]
async fn a_timer_that_wakes_another_task_does_not_stand_in_for_the_deadline() {
    let service = DeadlineLayer::new(30 * SECOND).layer(service_fn(|_req: Request<()>| {
        PollsWithAnotherWaker {
            attempt: Box::pin(Timeout::new(hanging(), 10 * SECOND).oneshot(Request::new(()))),
        }
    }));
    let (result, took) = ended(service.oneshot(Request::new(()))).await;
    assert_eq!(
        Error::from(result.unwrap_err()).kind(),
        ErrorKind::DeadlineExceeded
    );
    assert_eq!(took, 30 * SECOND);
}

#[tokio::test(start_paused = true)]
async fn nested_deadlines_each_end_the_call_at_their_own_instant() {
    // The inner deadline's timer covers the outer one, and the attempt's covers both.
    let service = DeadlineLayer::new(30 * SECOND).layer(
        DeadlineLayer::new(20 * SECOND).layer(TimeoutLayer::new(10 * SECOND).layer(hanging())),
    );
    let (result, took) = ended(service.oneshot(Request::new(()))).await;
    assert_eq!(Error::from(result.unwrap_err()).kind(), ErrorKind::Timeout);
    assert_eq!(took, 10 * SECOND);

    let service =
        DeadlineLayer::new(15 * SECOND).layer(DeadlineLayer::new(20 * SECOND).layer(hanging()));
    let (result, took) = ended(service.oneshot(Request::new(()))).await;
    assert_eq!(
        Error::from(result.unwrap_err()).kind(),
        ErrorKind::DeadlineExceeded
    );
    assert_eq!(took, 15 * SECOND);
}
