//! RetryBudget keeps its bound: for every allowed retry at instant t,
//! retries in (t - window, t] <= ratio x calls in (t - window, t] + min_per_sec x window.
//! Under a paused clock at the window boundary, from many threads at once, for random traffic,
//! and for the floor a quiet client lives on.

use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::{Instant, advance};
use towline_retry::{InvalidBudget, RetryBudget};

const SEC: Duration = Duration::from_secs(1);

/// Withdraws until the budget refuses (at most `cap` times); how many it allowed.
fn drain(budget: &RetryBudget, cap: u64) -> u64 {
    let mut allowed = 0;
    while allowed < cap && budget.withdraw() {
        allowed += 1;
    }
    allowed
}

#[tokio::test(start_paused = true)]
async fn calls_older_than_the_window_fund_no_retries() {
    // The scenario: 100 calls at t = 0, then one a second.
    let budget = RetryBudget::new(10 * SEC, 0, 0.2).unwrap();
    for _ in 0..100 {
        budget.deposit();
    }
    for _ in 1..=10 {
        advance(SEC).await;
        budget.deposit();
    }
    advance(SEC / 2).await;
    // At t = 10.5 s the window (0.5 s, 10.5 s] holds the ten calls at 1..=10 s: 10 x 0.2 = 2.
    assert_eq!(
        drain(&budget, 1000),
        2,
        "calls from t = 0 have left the window"
    );
}

#[tokio::test(start_paused = true)]
async fn calls_fund_retries_until_the_window_has_passed_over_them() {
    let budget = RetryBudget::new(10 * SEC, 0, 0.5).unwrap();
    for _ in 0..10 {
        budget.deposit();
    }
    advance(8 * SEC).await;
    assert_eq!(drain(&budget, 1000), 5, "10 calls at 50 % fund 5 retries");
    advance(SEC).await;
    for _ in 0..4 {
        budget.deposit();
    }
    assert_eq!(drain(&budget, 1000), 2, "4 new calls fund 2 more");
    advance(5 * SEC).await;
    // t = 14 s: the first calls are gone; the five retries of t = 8 s still count, and the
    // four calls of t = 9 s fund two retries, already taken at t = 9 s.
    assert_eq!(drain(&budget, 1000), 0);
}

#[tokio::test(start_paused = true)]
async fn clones_share_one_budget() {
    let budget = RetryBudget::new(10 * SEC, 0, 1.0).unwrap();
    let clone = budget.clone();
    for _ in 0..3 {
        clone.deposit();
    }
    assert_eq!(drain(&budget, 10), 3);
    assert!(!clone.withdraw());
}

/// Many threads (real parallelism) spend a balance they share: none may be spent twice.
#[test]
fn concurrent_withdrawals_never_overdraw_the_budget() {
    for _ in 0..20 {
        let budget = RetryBudget::new(60 * SEC, 0, 0.25).unwrap();
        for _ in 0..4000 {
            budget.deposit();
        }
        let allowed = AtomicU64::new(0);
        let threads = 8;
        let start = Barrier::new(threads);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    start.wait();
                    allowed.fetch_add(drain(&budget, u64::MAX), Ordering::Relaxed);
                });
            }
        });
        assert_eq!(
            allowed.into_inner(),
            1000,
            "4000 calls at 25 % fund 1000 retries"
        );
    }
}

/// Many threads call and retry at once: retries stay within the calls made so far.
#[test]
fn concurrent_calls_and_retries_stay_within_the_bound() {
    let start_time = Instant::now();
    let budget = RetryBudget::new(60 * SEC, 0, 0.25).unwrap();
    let calls = AtomicU64::new(0);
    let retries = AtomicU64::new(0);
    let threads = 8;
    let start = Barrier::new(threads);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                start.wait();
                for _ in 0..50_000 {
                    // Counted before the deposit, so `calls` is never behind the budget's.
                    calls.fetch_add(1, Ordering::SeqCst);
                    budget.deposit();
                    for _ in 0..2 {
                        if budget.withdraw() {
                            let retries = retries.fetch_add(1, Ordering::SeqCst) + 1;
                            let calls = calls.load(Ordering::SeqCst);
                            assert!(retries * 4 <= calls, "{retries} retries for {calls} calls");
                        }
                    }
                }
            });
        }
    });
    // Everything ran inside one window, so the bound is over all of it.
    assert!(start_time.elapsed() < 50 * SEC);
    let (calls, retries) = (calls.into_inner(), retries.into_inner());
    assert!(retries * 4 <= calls, "{retries} retries for {calls} calls");
    assert!(
        retries * 4 > calls * 9 / 10,
        "the budget is spent, not hoarded"
    );
}

/// When an operation began and when it ended, since the test began.
type Timed = (Duration, Duration);

/// Real threads call and retry for a few windows of 1 s, across many slot and bucket edges.
/// Each operation is timed before (`b`) and after (`l`) it, so its time inside the budget lies
/// between them; the check below then follows from the bound, whatever the scheduling.
#[test]
fn concurrent_traffic_across_slot_edges_keeps_the_bound() {
    const WINDOW: Duration = SEC;
    // 1/64 and 20 a second: exact in binary, and few enough retries to check them all.
    let (ratio_64ths, floor) = (1u64, 20u64);
    let budget = RetryBudget::new(WINDOW, floor as u32, 1.0 / 64.0).unwrap();
    let origin = Instant::now();
    let at = || origin.elapsed();
    let threads = 4;
    let start = Barrier::new(threads);
    let logs: Vec<(Vec<Timed>, Vec<Timed>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let (mut calls, mut retries) = (Vec::new(), Vec::new());
                    start.wait();
                    while at() < 5 * WINDOW / 2 && calls.len() < 100_000 {
                        let b = at();
                        budget.deposit();
                        calls.push((b, at()));
                        for _ in 0..2 {
                            let b = at();
                            if budget.withdraw() {
                                retries.push((b, at()));
                            }
                        }
                    }
                    (calls, retries)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut calls_by_b: Vec<Duration> = logs.iter().flat_map(|l| l.0.iter().map(|c| c.0)).collect();
    let mut calls_by_l: Vec<Duration> = logs.iter().flat_map(|l| l.0.iter().map(|c| c.1)).collect();
    let mut retries: Vec<Timed> = logs.iter().flat_map(|l| l.1.clone()).collect();
    calls_by_b.sort();
    calls_by_l.sort();
    retries.sort_by_key(|r| r.1);
    assert!(retries.len() as u64 > 2 * floor, "the test made retries");
    let mut first = 0;
    for (i, &(_, l_i)) in retries.iter().enumerate() {
        // The retries surely inside one window: begun after l_i - window, ended by l_i. They
        // all lie in the window that ends at the latest of them, whose calls began by l_i and
        // ended after (earliest begin among them) - window.
        let since = l_i.saturating_sub(WINDOW);
        while retries[first].1 <= since {
            first += 1;
        }
        let inside: Vec<Duration> = retries[first..=i]
            .iter()
            .filter(|r| r.0 > since || l_i < WINDOW)
            .map(|r| r.0)
            .collect();
        let Some(&earliest) = inside.iter().min() else {
            continue;
        };
        let began = calls_by_b.partition_point(|&b| b <= l_i);
        let gone = match earliest.checked_sub(WINDOW) {
            Some(edge) => calls_by_l.partition_point(|&l| l <= edge),
            None => 0,
        };
        let calls = (began - gone) as u64;
        let n = inside.len() as u64;
        assert!(
            n * 64 <= calls * ratio_64ths + floor * 64,
            "by {l_i:?}: {n} retries in one window, at most {calls} calls"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_quiet_client_retries_min_per_sec_every_second() {
    let budget = RetryBudget::new(10 * SEC, 10, 0.2).unwrap();
    // Spread evenly: one retry every 100 ms for a minute, never refused.
    for i in 0..600 {
        assert!(budget.withdraw(), "retry {i} refused");
        advance(SEC / 10).await;
    }
    // In bursts: ten at each whole second, never refused.
    advance(10 * SEC).await;
    for second in 0..60 {
        assert_eq!(drain(&budget, 10), 10, "second {second}");
        advance(SEC).await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_floor_allows_min_per_sec_times_window_at_once_and_no_more() {
    let budget = RetryBudget::new(10 * SEC, 10, 0.2).unwrap();
    assert_eq!(drain(&budget, 1000), 100, "10 per second over 10 s");
    advance(10 * SEC - Duration::from_millis(1)).await;
    assert!(
        !budget.withdraw(),
        "the 100 retries are still in the window"
    );
    advance(Duration::from_millis(1)).await;
    assert_eq!(
        drain(&budget, 1000),
        100,
        "once they have left it, 100 again"
    );
}

#[tokio::test(start_paused = true)]
async fn extreme_settings_are_refused_or_saturate() {
    assert_eq!(
        RetryBudget::new(Duration::MAX, 1, 0.2).unwrap_err(),
        InvalidBudget::Window
    );
    assert_eq!(
        RetryBudget::new(Duration::ZERO, 1, 0.2).unwrap_err(),
        InvalidBudget::Window
    );
    for ratio in [f32::NAN, f32::INFINITY, -0.1, 1000.5] {
        assert_eq!(
            RetryBudget::new(SEC, 1, ratio).unwrap_err(),
            InvalidBudget::Ratio
        );
    }
    assert_eq!(
        RetryBudget::new(SEC, u32::MAX, 0.2).unwrap_err(),
        InvalidBudget::Floor
    );
    // The largest settings: big numbers, no overflow.
    let budget = RetryBudget::new(60 * SEC, i32::MAX as u32 - 1, 1000.0).unwrap();
    for _ in 0..1000 {
        budget.deposit();
    }
    assert_eq!(drain(&budget, 1_000_000), 1_000_000);
    advance(Duration::from_secs(100 * 365 * 24 * 3600)).await;
    budget.deposit();
    assert!(budget.withdraw());
    assert!(format!("{budget:?}").starts_with("RetryBudget"));
}

/// One step of random traffic.
#[derive(Clone, Debug)]
enum Op {
    Calls(u32),
    Retries(u32),
    Advance(Duration),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..20u32).prop_map(Op::Calls),
        (1..8u32).prop_map(Op::Retries),
        (0..2500u64).prop_map(|ms| Op::Advance(Duration::from_millis(ms))),
        // Near and at slot edges of the windows drawn below.
        (0..5u64).prop_map(|n| Op::Advance(Duration::from_millis(100 * n))),
    ]
}

/// What happened, in order: (time since the start, a call or a retry, whether it was allowed).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Event {
    Call,
    Retry(bool),
}

fn run(window: Duration, floor: u32, ratio: f32, ops: &[Op]) -> Vec<(Duration, Event)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async {
        let start = Instant::now();
        let budget = RetryBudget::new(window, floor, ratio).unwrap();
        let mut log = Vec::new();
        for op in ops {
            match *op {
                Op::Calls(n) => {
                    for _ in 0..n {
                        budget.deposit();
                        log.push((start.elapsed(), Event::Call));
                    }
                }
                Op::Retries(n) => {
                    for _ in 0..n {
                        log.push((start.elapsed(), Event::Retry(budget.withdraw())));
                    }
                }
                Op::Advance(d) => advance(d).await,
            }
        }
        log
    })
}

/// Calls and allowed retries among the first `upto` events, made after `after` (None: all).
fn counts(log: &[(Duration, Event)], upto: usize, after: Option<Duration>) -> (u64, u64) {
    let in_window = |t: &Duration| after.is_none_or(|a| *t > a);
    let mut calls = 0;
    let mut retries = 0;
    for (t, event) in &log[..upto] {
        match event {
            Event::Call if in_window(t) => calls += 1,
            Event::Retry(true) if in_window(t) => retries += 1,
            _ => {}
        }
    }
    (calls, retries)
}

fn settings() -> impl Strategy<Value = (Duration, u32, f32)> {
    (
        1000..20_000u64,
        0..4u32,
        // Ratios a binary float holds exactly, so the bound below is exact too.
        prop::sample::select(vec![0.0f32, 0.125, 0.25, 0.5, 1.0, 1.5, 3.0]),
    )
        .prop_map(|(ms, floor, ratio)| (Duration::from_millis(ms), floor, ratio))
}

/// The promise: ratio x calls + min_per_sec x window.
fn bound(window: Duration, floor: u32, ratio: f32, calls: u64) -> f64 {
    f64::from(ratio) * calls as f64 + f64::from(floor) * window.as_secs_f64()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_traffic_keeps_the_bound_over_every_window(
        (window, floor, ratio) in settings(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        let log = run(window, floor, ratio, &ops);
        for (i, (t, event)) in log.iter().enumerate() {
            if *event == Event::Retry(true) {
                // The window that ends at this retry, this retry included, and nothing after.
                let (calls, retries) = counts(&log, i + 1, t.checked_sub(window));
                let bound = bound(window, floor, ratio, calls);
                prop_assert!(
                    retries as f64 <= bound,
                    "at {t:?}: {retries} retries, {calls} calls, bound {bound}"
                );
            }
        }
    }

    #[test]
    fn a_refused_retry_means_the_window_is_spent(
        (window, floor, ratio) in settings(),
        ops in prop::collection::vec(op(), 1..120),
    ) {
        // The documented slack: calls fund retries for at least 9/10 of the window, and a
        // retry is remembered at most window/200 longer than the window.
        let log = run(window, floor, ratio, &ops);
        for (i, (t, event)) in log.iter().enumerate() {
            if *event == Event::Retry(false) {
                let (calls, _) = counts(&log, i, t.checked_sub(window - window / 10));
                let (_, retries) = counts(&log, i, t.checked_sub(window + window / 200));
                let bound = bound(window, floor, ratio, calls);
                prop_assert!(
                    retries as f64 + 1.0 > bound,
                    "at {t:?}: refused with {retries} retries for {calls} calls, bound {bound}"
                );
            }
        }
    }
}
