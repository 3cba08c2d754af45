//! [`TowerPolicy`]: towline's retry rules as a `tower::retry::Policy`, for stacks that
//! already use tower's own `Retry`.

use std::mem;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use tokio::time::Sleep;
use towline_core::{
    Attempts, BoxError, CallContext, Deadline, Replayable, Resend, replay_request,
    take_credentials_refreshed,
};

use crate::classify::{Classify, Outcome, StandardClassifier};
use crate::decide::{
    Call, Step, StopReason, decide, next_attempt, record, record_on, stop, take_error_hedges,
    take_response_hedges, wrap,
};
use crate::layer::RetryLayer;
use crate::policy::resend_after_sent;
use crate::shared::Shared;

/// towline's classification, backoff, budget, idempotency rules, hints and deadline, as a
/// [`tower::retry::Policy`]: a drop-in for the policy you would otherwise write for tower's
/// `Retry`, when a stack already has one.
///
/// It shares its layer's budget and random numbers. The differences from [`RetryLayer`]:
/// tower's `Retry` does not tell a policy when a call starts, so the budget deposit is made
/// when tower first copies the request; and a policy cannot change the request tower sends
/// first, so [`RetryPolicy::add_idempotency_keys`](crate::RetryPolicy::add_idempotency_keys)
/// has no effect here (add the key before the request reaches tower's `Retry`).
///
/// ```
/// use bytes::Bytes;
/// use http::{Request, Response, StatusCode};
/// use http_body_util::Full;
/// use tower::{BoxError, Layer, ServiceExt, service_fn};
/// use towline_retry::{RetryLayer, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let policy = RetryLayer::with_policy(RetryPolicy::new().seed(1)).tower_policy();
/// let flaky = service_fn(|_req: Request<Full<Bytes>>| async {
///     Ok::<_, BoxError>(Response::builder().status(StatusCode::BAD_GATEWAY).body(()).unwrap())
/// });
/// let response = tower::retry::RetryLayer::new(policy)
///     .layer(flaky)
///     .oneshot(Request::new(Full::new(Bytes::new())))
///     .await
///     .unwrap();
/// assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
/// # }
/// ```
pub struct TowerPolicy<C = StandardClassifier> {
    shared: Arc<Shared<C>>,
    attempts: Attempts,
    previous_delay: Option<Duration>,
    /// Set in the copy tower keeps for one call, once it has been asked about a result.
    in_call: bool,
}

impl<C> Clone for TowerPolicy<C> {
    fn clone(&self) -> Self {
        TowerPolicy {
            shared: self.shared.clone(),
            attempts: self.attempts.clone(),
            previous_delay: self.previous_delay,
            in_call: self.in_call,
        }
    }
}

impl<C> std::fmt::Debug for TowerPolicy<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TowerPolicy")
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl<C> RetryLayer<C> {
    /// This layer's rules as a [`tower::retry::Policy`] for tower's `Retry`, sharing the
    /// layer's budget. See [`TowerPolicy`].
    pub fn tower_policy(&self) -> TowerPolicy<C> {
        TowerPolicy {
            shared: self.shared().clone(),
            attempts: Attempts::new(),
            previous_delay: None,
            in_call: false,
        }
    }
}

impl<C, B, ResBody> tower::retry::Policy<Request<B>, Response<ResBody>, BoxError> for TowerPolicy<C>
where
    C: Classify,
    B: Replayable,
{
    type Future = Sleep;

    fn retry(
        &mut self,
        request: &mut Request<B>,
        result: &mut Result<Response<ResBody>, BoxError>,
    ) -> Option<Sleep> {
        self.in_call = true;
        // `request` is tower's copy of the attempt that just ended: its context holds what
        // was promised to the layers below about it.
        let promised = CallContext::from_extensions(request.extensions())
            .map_or(Resend::No, CallContext::resend);
        match result {
            Ok(response) => take_response_hedges(response, &mut self.attempts),
            Err(error) => {
                let hedged = mem::replace(error, BoxError::from(""));
                *error = take_error_hedges(hedged, &mut self.attempts);
            }
        }
        if promised == Resend::OnRefresh && result.is_err() {
            let error = mem::replace(result, Err(BoxError::from(""))).err();
            if let Some(error) = error {
                match take_credentials_refreshed(error) {
                    Ok(otherwise) => {
                        // Rule zero (see `decide`): send again at once, not as a retry.
                        mark_attempt(request, next_attempt(&self.attempts), Resend::Resent);
                        self.attempts
                            .record_replay(record(Outcome::Error(&*otherwise)));
                        return Some(tokio::time::sleep(Duration::ZERO));
                    }
                    Err(error) => *result = Err(error),
                }
            }
        }
        let outcome = match &*result {
            Ok(response) => Outcome::Response {
                status: response.status(),
                headers: response.headers(),
            },
            Err(error) => Outcome::Error(&**error),
        };
        let verdict = self.shared.policy.classifier.classify(outcome);
        let recorded = record(outcome);
        let call = Call {
            resend_after_sent: resend_after_sent(request),
            deadline: Deadline::in_force(request.extensions()),
        };
        // tower makes the next attempt's copy itself (`clone_request`).
        let step = decide(
            &self.shared,
            verdict,
            call,
            &mut self.attempts,
            self.previous_delay,
            Some,
        );
        match step {
            Step::Retry {
                delay,
                backoff,
                next: attempt,
            } => {
                self.attempts.record_retry(recorded, delay);
                self.previous_delay = Some(backoff);
                // The retry goes out under this policy's promise to resend it after a refresh.
                mark_attempt(request, attempt, Resend::OnRefresh);
                Some(tokio::time::sleep(delay))
            }
            Step::Finish | Step::Stop(StopReason::Budget) if result.is_ok() => {
                if let Ok(response) = result {
                    record_on(response, &mut self.attempts);
                }
                None
            }
            Step::Finish => {
                let error = mem::replace(result, Err(BoxError::from(""))).err();
                if let Some(error) = error {
                    *result = Err(wrap(error, &mut self.attempts));
                }
                None
            }
            Step::Stop(reason) => {
                let last = mem::replace(result, Err(BoxError::from("")));
                *result = Err(wrap(stop(reason, last), &mut self.attempts));
                None
            }
        }
    }

    fn clone_request(&mut self, request: &Request<B>) -> Option<Request<B>> {
        if !self.in_call {
            // The copy tower makes as a call starts: count the call for the budget.
            if let Some(budget) = &self.shared.policy.budget {
                budget.deposit();
            }
        }
        replay_request(request)
    }
}

/// Writes into the context of the copy tower sends next which attempt it is and what this
/// policy promises about it.
fn mark_attempt<B>(request: &mut Request<B>, attempt: u32, resend: Resend) {
    let context = CallContext::of_mut(request.extensions_mut());
    context.set_attempt(attempt);
    context.set_resend(resend);
}
