//! What happens after an attempt: the retry layer's ordered rules, applied to a classifier's
//! verdict.

use std::mem;
use std::sync::PoisonError;
use std::time::Duration;

use http::{Request, Response};
use tokio::time::Instant;
use towline_core::{
    ApiError, AttemptOutcome, Attempts, BoxError, Deadline, ErrorKind, RateLimitReason,
    RateLimited, Replayable, Resend, Retried, RetryBudgetExhausted, RetryHint,
    take_credentials_refreshed,
};

use crate::classify::{Outcome, Verdict};
use crate::shared::Shared;
use crate::template::Template;

/// Rule zero, before any classifier: an attempt that a layer below ended with
/// [`CredentialsRefreshed`](towline_core::CredentialsRefreshed), under this layer's promise to
/// resend it ([`Resend::OnRefresh`]), goes out again at once with the new credentials: no
/// delay, no budget, not a retry. `Ok` is that resend; `Err` the error to judge as usual (the
/// one the refreshing layer would have ended the call with, when no resend is possible).
pub(crate) fn resend_after_refresh<B: Replayable>(
    error: BoxError,
    promised: Resend,
    template: Option<&Template<B>>,
    attempts: &mut Attempts,
) -> Result<Request<B>, BoxError> {
    if promised != Resend::OnRefresh {
        return Err(error);
    }
    let otherwise = take_credentials_refreshed(error)?;
    let next =
        template.and_then(|template| template.attempt(next_attempt(attempts), Resend::Resent));
    match next {
        Some(next) => {
            attempts.record_replay(record(Outcome::Error(&*otherwise)));
            Ok(next)
        }
        None => Err(otherwise),
    }
}

/// The number of the attempt after those recorded.
pub(crate) fn next_attempt(attempts: &Attempts) -> u32 {
    u32::try_from(attempts.count() + 1).unwrap_or(u32::MAX)
}

/// How an attempt is written into [`Attempts`].
pub(crate) fn record(outcome: Outcome<'_>) -> AttemptOutcome {
    match outcome {
        Outcome::Response { status, .. } => AttemptOutcome::Status(status),
        Outcome::Error(error) => match towline_core::find::<ApiError>(error) {
            Some(api) => AttemptOutcome::Status(api.status),
            None => AttemptOutcome::Error(ErrorKind::of(error)),
        },
    }
}

/// Why retrying stopped with a typed error of its own.
pub(crate) enum StopReason {
    Budget,
    RateLimited {
        hint: RetryHint,
        reason: RateLimitReason,
    },
}

/// What to do after an attempt. `R` is the next attempt's request (or `()` where the caller
/// makes it, as tower's `Retry` does).
pub(crate) enum Step<R> {
    /// Return the attempt's outcome.
    Finish,
    /// Return a typed error saying why retrying stopped.
    Stop(StopReason),
    /// Sleep `delay`, then send `next`. `backoff` is the backoff's own value (before a hint
    /// raised it), which decorrelated jitter grows from.
    Retry {
        delay: Duration,
        backoff: Duration,
        next: R,
    },
}

/// What the retry decision needs to know of the call itself.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Call {
    /// Whether sending the request twice is harmless
    /// ([`resend_after_sent`](crate::policy::resend_after_sent)).
    pub(crate) resend_after_sent: bool,
    /// The deadline in force for the call.
    pub(crate) deadline: Option<Deadline>,
}

/// Applies the policy's limits to a classifier's verdict, in this order: the verdict,
/// idempotency, the retry count, whether the body can be sent again (`next` makes the next
/// attempt, given its number, or says it cannot), the delay and the server's hint, the
/// deadline, the total delay, and last the budget, so that a retry the other rules forbid takes
/// no token. Cheap on the success path: a `Done` verdict returns at once.
pub(crate) fn decide<C, R>(
    shared: &Shared<C>,
    verdict: Verdict,
    call: Call,
    attempts: &mut Attempts,
    previous_delay: Option<Duration>,
    next: impl FnOnce(u32) -> Option<R>,
) -> Step<R> {
    let Call {
        resend_after_sent,
        deadline,
    } = call;
    let policy = &shared.policy;
    let Verdict::Retry {
        not_processed,
        hint,
    } = verdict
    else {
        return Step::Finish;
    };
    // A request that may have been processed is sent again only if that is harmless.
    if !(resend_after_sent || not_processed) {
        return Step::Finish;
    }
    // A replay asked for from below (after a token refresh) is not a retry.
    let retries = attempts.retries();
    if retries >= policy.max_retries as usize {
        return Step::Finish;
    }
    // A body that cannot be sent again (a stream past its replay cap) is not retried.
    let Some(next) = next(next_attempt(attempts)) else {
        return Step::Finish;
    };
    let backoff = {
        let mut rng = shared.rng.lock().unwrap_or_else(PoisonError::into_inner);
        policy
            .backoff
            .delay(retries as u32, previous_delay, &mut rng)
    };
    let delay = match &hint {
        Some(hint) => {
            if hint.requested() > policy.max_hint_wait {
                return Step::Stop(StopReason::RateLimited {
                    hint: hint.clone(),
                    reason: RateLimitReason::WaitTooLong,
                });
            }
            // The server's wait is the floor of the delay.
            backoff.max(hint.wait())
        }
        None => backoff,
    };
    let mut delay = delay;
    if let Some(deadline) = deadline {
        // An attempt needs time after the sleep: a sleep must end strictly before the deadline.
        let remaining = deadline.remaining();
        if delay >= remaining {
            match hint {
                // The server's own wait ends past the deadline: say so, with its instant.
                Some(hint) if hint.wait() >= remaining => {
                    return Step::Stop(StopReason::RateLimited {
                        hint,
                        reason: RateLimitReason::PastDeadline,
                    });
                }
                // Only the jittered backoff overran: the server's wait is enough.
                Some(hint) => delay = hint.wait(),
                None => return Step::Finish,
            }
        }
    }
    let total = attempts.total_delay().saturating_add(delay);
    if policy.max_total_delay.is_some_and(|limit| total > limit) {
        return Step::Finish;
    }
    // Last, so that a retry the other limits forbid takes no token.
    if policy
        .budget
        .as_ref()
        .is_some_and(|budget| !budget.withdraw())
    {
        attempts.mark_budget_exhausted();
        tracing::event!(
            name: "towline.retry.budget_refused",
            target: "towline::retry",
            tracing::Level::INFO,
            towline.attempts = attempts.count() as i64,
            "retry refused by the retry budget"
        );
        return Step::Stop(StopReason::Budget);
    }
    Step::Retry {
        delay,
        backoff,
        next,
    }
}

/// The typed error for a stop, from the last attempt's result.
pub(crate) fn stop<T>(reason: StopReason, result: Result<Response<T>, BoxError>) -> BoxError {
    let last: BoxError = match result {
        Ok(response) => response.status().to_string().into(),
        Err(error) => error,
    };
    match reason {
        StopReason::Budget => Box::new(RetryBudgetExhausted::new(last)),
        StopReason::RateLimited { hint, reason } => {
            let until = hint.ends_at(Instant::now());
            Box::new(
                RateLimited::new(until, reason)
                    .with_hint(hint)
                    .with_source(last),
            )
        }
    }
}

/// Returns the last outcome, with the attempts on it when there were retries.
pub(crate) fn finish<T>(
    result: Result<Response<T>, BoxError>,
    attempts: &mut Attempts,
) -> Result<Response<T>, BoxError> {
    match result {
        Ok(mut response) => {
            record_on(&mut response, attempts);
            Ok(response)
        }
        Err(error) => Err(wrap(error, attempts)),
    }
}

/// Puts the attempts on the final response — only when there is something to say: inserting
/// an extension allocates, and the success path must stay lean. No `Attempts` means one attempt.
pub(crate) fn record_on<T>(response: &mut Response<T>, attempts: &mut Attempts) {
    if attempts.count() > 1 || attempts.budget_exhausted() {
        response.extensions_mut().insert(mem::take(attempts));
    }
}

/// Whether `record` is a hedge layer's, counting only the hedged copies it sent.
fn is_hedge_record(record: &Attempts) -> bool {
    record.hedges() > 0
        && record.retries() == 0
        && record.replays() == 0
        && !record.budget_exhausted()
}

fn add_hedges(attempts: &mut Attempts, below: &Attempts) {
    for _ in 0..below.hedges() {
        attempts.record_hedge();
    }
}

/// Takes into `attempts` the hedged copies a hedge layer below recorded on an attempt's
/// response (and removes that record), so that the next attempt is numbered after them and
/// the final record counts them once.
pub(crate) fn take_response_hedges<T>(response: &mut Response<T>, attempts: &mut Attempts) {
    let extensions = response.extensions_mut();
    if let Some(below) = extensions.get::<Attempts>().filter(|a| is_hedge_record(a)) {
        add_hedges(attempts, below);
        extensions.remove::<Attempts>();
    }
}

/// The same for a failed attempt, whose error a hedge layer wraps in a [`Retried`] counting
/// its hedges: the hedges go into `attempts`, and the attempt's own error comes back, for the
/// classifier and the record.
pub(crate) fn take_error_hedges(error: BoxError, attempts: &mut Attempts) -> BoxError {
    match error.downcast::<Retried>() {
        Ok(hedged) if is_hedge_record(hedged.attempts()) => {
            add_hedges(attempts, hedged.attempts());
            hedged.into_last()
        }
        Ok(retried) => retried,
        Err(error) => error,
    }
}

/// Wraps a final error in [`Retried`] when more than one request was sent.
pub(crate) fn wrap(error: BoxError, attempts: &mut Attempts) -> BoxError {
    if attempts.count() > 1 {
        Box::new(Retried::new(mem::take(attempts), error))
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use towline_core::{Deadline, HintSource, RateLimitReason, RetryHint};

    use super::*;
    use crate::{Backoff, RetryBudget, RetryLayer, RetryPolicy};

    const SECOND: Duration = Duration::from_secs(1);

    /// One row of the table: a situation after an attempt, and the step the rules take.
    struct Row {
        rule: &'static str,
        verdict: Verdict,
        resend_after_sent: bool,
        deadline: Option<Duration>,
        retries_so_far: usize,
        body_replays: bool,
        policy: fn(RetryPolicy) -> RetryPolicy,
        expect: Expect,
    }

    #[derive(Debug, PartialEq)]
    enum Expect {
        Finish,
        RateLimited(RateLimitReason),
        Budget,
        Retry(Duration),
    }

    fn hint(wait: Duration) -> Option<RetryHint> {
        Some(RetryHint::new(wait, HintSource::RetryAfter))
    }

    fn retry() -> Verdict {
        Verdict::retry()
    }

    fn row(rule: &'static str, expect: Expect) -> Row {
        Row {
            rule,
            verdict: retry(),
            resend_after_sent: true,
            deadline: None,
            retries_so_far: 0,
            body_replays: true,
            policy: |policy| policy,
            expect,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_rules_apply_in_their_order() {
        let no_budget: fn(RetryPolicy) -> RetryPolicy = |policy| policy.no_budget();
        let table = [
            Row {
                verdict: Verdict::Done,
                ..row("1. a done verdict finishes", Expect::Finish)
            },
            Row {
                resend_after_sent: false,
                ..row(
                    "2. a non-idempotent request that may have been processed finishes",
                    Expect::Finish,
                )
            },
            Row {
                resend_after_sent: false,
                verdict: retry().not_processed(),
                ..row(
                    "2. ... unless the server certainly did not process it",
                    Expect::Retry(SECOND),
                )
            },
            Row {
                retries_so_far: 3,
                ..row("3. the retry count is spent", Expect::Finish)
            },
            Row {
                body_replays: false,
                policy: |policy| policy.budget(RetryBudget::new(10 * SECOND, 0, 0.0).unwrap()),
                ..row(
                    "4. a body that cannot be sent again finishes, before the budget is asked",
                    Expect::Finish,
                )
            },
            Row {
                verdict: retry().with_hint(hint(120 * SECOND)),
                ..row(
                    "5. a hint above max_hint_wait fails fast",
                    Expect::RateLimited(RateLimitReason::WaitTooLong),
                )
            },
            Row {
                verdict: retry().with_hint(hint(5 * SECOND)),
                ..row(
                    "5. a hint is the floor of the delay",
                    Expect::Retry(5 * SECOND),
                )
            },
            Row {
                verdict: retry().with_hint(hint(5 * SECOND)),
                deadline: Some(4 * SECOND),
                ..row(
                    "6. a hint past the deadline fails fast",
                    Expect::RateLimited(RateLimitReason::PastDeadline),
                )
            },
            Row {
                deadline: Some(SECOND),
                ..row(
                    "6. a backoff that ends at the deadline finishes",
                    Expect::Finish,
                )
            },
            Row {
                policy: |policy| policy.no_budget().max_total_delay(SECOND / 2),
                ..row("7. the total delay would pass its limit", Expect::Finish)
            },
            Row {
                policy: |policy| policy.budget(RetryBudget::new(10 * SECOND, 0, 0.0).unwrap()),
                ..row("8. an empty budget stops, last", Expect::Budget)
            },
            Row {
                policy: no_budget,
                ..row(
                    "every rule allows: retry after the backoff",
                    Expect::Retry(SECOND),
                )
            },
        ];
        for row in table {
            let policy = (row.policy)(RetryPolicy::new().backoff(Backoff::constant(SECOND)));
            let layer = RetryLayer::with_policy(policy);
            let mut attempts = Attempts::new();
            for _ in 0..row.retries_so_far {
                attempts.record_retry(AttemptOutcome::Error(ErrorKind::Timeout), Duration::ZERO);
            }
            let call = Call {
                resend_after_sent: row.resend_after_sent,
                deadline: row.deadline.map(Deadline::after),
            };
            let step = decide(
                layer.shared(),
                row.verdict,
                call,
                &mut attempts,
                None,
                |_| row.body_replays.then_some(()),
            );
            let got = match step {
                Step::Finish => Expect::Finish,
                Step::Stop(StopReason::Budget) => Expect::Budget,
                Step::Stop(StopReason::RateLimited { reason, .. }) => Expect::RateLimited(reason),
                Step::Retry { delay, .. } => Expect::Retry(delay),
            };
            assert_eq!(got, row.expect, "{}", row.rule);
        }
    }

    #[test]
    fn a_resend_is_made_only_under_the_promise() {
        use towline_core::CredentialsRefreshed;
        let request = Request::new(());
        let template = Template::of(
            &request,
            towline_core::CallContext::starting_at(Instant::now()),
            false,
        );
        for (promised, resent) in [
            (Resend::OnRefresh, true),
            (Resend::No, false),
            (Resend::Resent, false),
        ] {
            let mut attempts = Attempts::new();
            let refreshed: BoxError = Box::new(CredentialsRefreshed::new("401".into()));
            let result =
                resend_after_refresh(refreshed, promised, template.as_ref(), &mut attempts);
            assert_eq!(result.is_ok(), resent, "{promised:?}");
            assert_eq!(attempts.replays(), usize::from(resent));
            if let Ok(next) = result {
                let context =
                    towline_core::CallContext::from_extensions(next.extensions()).unwrap();
                assert_eq!((context.attempt(), context.resend()), (2, Resend::Resent));
            }
        }
    }
}
