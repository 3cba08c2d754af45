//! The retry budget on the paths a call takes: `deposit` (every call) and `deposit` then
//! `withdraw` (a call that retries), towline's `RetryBudget` beside tower's `TpsBudget` in the
//! same group, both with the defaults (10 s window, 10 retries a second, 20 % of calls).
//!
//! Each case runs on one thread, outside any runtime (both read tokio's clock, which is then
//! the system's). After the floor is spent, four withdrawals in five are refused, as in a
//! steady outage.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::time::Instant;
use tower::retry::budget::{Budget, TpsBudget};
use towline_retry::RetryBudget;

fn budget(c: &mut Criterion) {
    let mut group = c.benchmark_group("retry_budget");

    // What both read on every call, for scale.
    group.bench_function("baseline: tokio Instant::now", |b| b.iter(Instant::now));
    let ours = RetryBudget::default();
    group.bench_function("deposit: towline", |b| {
        b.iter(|| black_box(&ours).deposit())
    });
    let tower = TpsBudget::default();
    group.bench_function("deposit: tower TpsBudget", |b| {
        b.iter(|| black_box(&tower).deposit())
    });

    let ours = RetryBudget::default();
    group.bench_function("deposit+withdraw: towline", |b| {
        b.iter(|| {
            let budget = black_box(&ours);
            budget.deposit();
            budget.withdraw()
        })
    });
    let tower = TpsBudget::default();
    group.bench_function("deposit+withdraw: tower TpsBudget", |b| {
        b.iter(|| {
            let budget = black_box(&tower);
            budget.deposit();
            budget.withdraw()
        })
    });
    group.finish();
}

criterion_group!(benches, budget);
criterion_main!(benches);
