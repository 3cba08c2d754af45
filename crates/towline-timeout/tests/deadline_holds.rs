//! The deadline holds whatever the layers below do with their own timers: an attempt timer
//! dropped mid-poll, polled again with another waker, or handed to another task never stands
//! in for the deadline's. (An optimisation that let the attempt's timer stand in for the
//! deadline's broke each of these; these tests keep any such shortcut honest.)

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Empty;
use tokio::time::Instant;
use tower::util::Oneshot;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use towline_core::{Error, ErrorKind};
use towline_timeout::{DeadlineLayer, Timeout, TimeoutBody, TimeoutLayer};

const SECOND: Duration = Duration::from_secs(1);

type Answer = Result<Response<Empty<Bytes>>, BoxError>;

/// A service that never answers (a named type, so that its futures are known to be `Send`).
#[derive(Clone)]
struct Hanging;

impl Service<Request<()>> for Hanging {
    type Response = Response<Empty<Bytes>>;
    type Error = BoxError;
    type Future = std::future::Pending<Answer>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        std::future::pending()
    }
}

/// An attempt with a 10 s timeout at a service that never answers.
type Attempt = Oneshot<Timeout<Hanging>, Request<()>>;

fn attempt() -> Pin<Box<Attempt>> {
    Box::pin(Timeout::new(Hanging, 10 * SECOND).oneshot(Request::new(())))
}

/// A 30 s deadline over a service whose future `wrap` makes from an attempt.
fn deadline_over<F>(
    wrap: fn(Pin<Box<Attempt>>) -> F,
) -> impl Service<Request<()>, Response = Response<TimeoutBody<Empty<Bytes>>>, Error = BoxError>
where
    F: Future<Output = Answer>,
{
    DeadlineLayer::new(30 * SECOND).layer(service_fn(move |_req: Request<()>| wrap(attempt())))
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

/// Checks how a call ended: with an error of `kind`, `after` its start.
fn assert_ended<T>(
    (result, took): (Result<T, BoxError>, Duration),
    kind: ErrorKind,
    after: Duration,
) {
    match result {
        Ok(_) => panic!("the call succeeded"),
        Err(err) => assert_eq!(Error::from(err).kind(), kind),
    }
    assert_eq!(took, after);
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_that_fires_first_ends_the_call() {
    let service =
        DeadlineLayer::new(30 * SECOND).layer(TimeoutLayer::new(10 * SECOND).layer(Hanging));
    assert_ended(
        ended(service.oneshot(Request::new(()))).await,
        ErrorKind::Timeout,
        10 * SECOND,
    );
}

#[tokio::test(start_paused = true)]
async fn a_deadline_before_the_attempt_timeout_still_fires() {
    let service =
        DeadlineLayer::new(5 * SECOND).layer(TimeoutLayer::new(10 * SECOND).layer(Hanging));
    assert_ended(
        ended(service.oneshot(Request::new(()))).await,
        ErrorKind::DeadlineExceeded,
        5 * SECOND,
    );
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
    let service = deadline_over(|attempt| AbandonsItsAttempt {
        attempt: Some(attempt),
    });
    assert_ended(
        ended(service.oneshot(Request::new(()))).await,
        ErrorKind::DeadlineExceeded,
        30 * SECOND,
    );
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
    let service = deadline_over(|attempt| PollsWithAnotherWaker { attempt });
    assert_ended(
        ended(service.oneshot(Request::new(()))).await,
        ErrorKind::DeadlineExceeded,
        30 * SECOND,
    );
}

#[tokio::test(start_paused = true)]
async fn nested_deadlines_each_end_the_call_at_their_own_instant() {
    // The inner deadline's timer covers the outer one, and the attempt's covers both.
    let service = DeadlineLayer::new(30 * SECOND).layer(
        DeadlineLayer::new(20 * SECOND).layer(TimeoutLayer::new(10 * SECOND).layer(Hanging)),
    );
    assert_ended(
        ended(service.oneshot(Request::new(()))).await,
        ErrorKind::Timeout,
        10 * SECOND,
    );

    let service =
        DeadlineLayer::new(15 * SECOND).layer(DeadlineLayer::new(20 * SECOND).layer(Hanging));
    assert_ended(
        ended(service.oneshot(Request::new(()))).await,
        ErrorKind::DeadlineExceeded,
        15 * SECOND,
    );
}

/// Polls its attempt with the task's waker, then peeks at it with a waker that wakes nobody
/// (the attempt's timer now holds that one).
struct PollsThenPeeks<F> {
    attempt: Pin<Box<F>>,
}

impl<F: Future> Future for PollsThenPeeks<F> {
    type Output = Answer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        let _ = self.attempt.as_mut().poll(cx);
        let _ = self
            .attempt
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()));
        Poll::Pending
    }
}

#[tokio::test(start_paused = true)]
async fn a_timer_polled_again_with_another_waker_does_not_stand_in_for_the_deadline() {
    let service = deadline_over(|attempt| PollsThenPeeks { attempt });
    assert_ended(
        ended(service.oneshot(Request::new(()))).await,
        ErrorKind::DeadlineExceeded,
        30 * SECOND,
    );
}

/// Polls its attempt once with the task's waker, then hands it to another task, which polls
/// it from then on and never answers.
struct HandsOff<F> {
    attempt: Option<Pin<Box<F>>>,
}

impl<F> Future for HandsOff<F>
where
    F: Future + Send + 'static,
    F::Output: Send,
{
    type Output = Answer;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer> {
        if let Some(mut attempt) = self.attempt.take() {
            let _ = attempt.as_mut().poll(cx);
            tokio::spawn(async move {
                let _ = attempt.await;
                std::future::pending::<()>().await
            });
        }
        Poll::Pending
    }
}

#[tokio::test(start_paused = true)]
async fn a_timer_handed_to_another_task_does_not_stand_in_for_the_deadline() {
    let service = deadline_over(|attempt| HandsOff {
        attempt: Some(attempt),
    });
    assert_ended(
        ended(service.oneshot(Request::new(()))).await,
        ErrorKind::DeadlineExceeded,
        30 * SECOND,
    );
}

#[tokio::test(start_paused = true)]
async fn a_deadline_future_moved_to_another_task_keeps_both_limits() {
    let service = DeadlineLayer::new(30 * SECOND).layer(Timeout::new(Hanging, 10 * SECOND));
    let mut call = Box::pin(service.oneshot(Request::new(())));
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx).is_pending())).await;
    assert!(first);
    assert_ended(
        tokio::spawn(ended(call)).await.unwrap(),
        ErrorKind::Timeout,
        10 * SECOND,
    );
}
