//! The cost of towline-core's parsers, which layers run on responses that ask for a wait and
//! on every error: reading retry hints, and classifying an error.
//!
//! Each group has a baseline beside it (a plain header lookup; a plain downcast) so the
//! figures read as ratios from one run.

// criterion_group! generates undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::io;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use towline_core::{BoxError, Error, HintReader, RetryBudgetExhausted, classify};

fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    // A realistic response carries more than the hint.
    map.insert("content-type", HeaderValue::from_static("application/json"));
    map.insert("content-length", HeaderValue::from_static("118"));
    map.insert("server", HeaderValue::from_static("nginx"));
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_static(value));
    }
    map
}

fn hints(c: &mut Criterion) {
    let now = UNIX_EPOCH + Duration::from_secs(1_763_769_600);
    let hints = HintReader::new();
    let mut group = c.benchmark_group("retry_hints");

    let delta = headers(&[("retry-after", "5")]);
    group.bench_function("baseline: header lookup", |b| {
        b.iter(|| black_box(&delta).get(http::header::RETRY_AFTER).is_some())
    });
    group.bench_function("read: Retry-After delta", |b| {
        b.iter(|| hints.read_at(black_box(&delta), now))
    });
    let date = headers(&[
        ("date", "Sat, 22 Nov 2025 00:00:00 GMT"),
        ("retry-after", "Sat, 22 Nov 2025 00:00:30 GMT"),
    ]);
    group.bench_function("read: Retry-After HTTP-date + Date", |b| {
        b.iter(|| hints.read_at(black_box(&date), now))
    });
    let wait = headers(&[("x-wait-seconds", "12")]);
    group.bench_function("read: X-Wait-Seconds", |b| {
        b.iter(|| hints.read_at(black_box(&wait), now))
    });
    let none = headers(&[]);
    group.bench_function("read: no hint present", |b| {
        b.iter(|| hints.read_at(black_box(&none), now))
    });
    group.bench_function("read: with SystemTime::now()", |b| {
        b.iter(|| hints.read(black_box(&delta)))
    });
    group.finish();
}

fn errors(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify");
    let reset: BoxError = Box::new(io::Error::from(io::ErrorKind::ConnectionReset));
    group.bench_function("baseline: one downcast", |b| {
        b.iter(|| black_box(&reset).downcast_ref::<io::Error>().is_some())
    });
    group.bench_function("io reset", |b| b.iter(|| classify(black_box(&reset))));
    let wrapped: BoxError = Box::new(RetryBudgetExhausted::new(Box::new(io::Error::from(
        io::ErrorKind::ConnectionReset,
    ))));
    group.bench_function("budget exhausted wrapping io", |b| {
        b.iter(|| classify(black_box(&wrapped)))
    });
    let unknown: BoxError = "mystery".into();
    group.bench_function("unknown (walks every check)", |b| {
        b.iter(|| classify(black_box(&unknown)))
    });
    group.bench_function("Error::from(BoxError) incl. box", |b| {
        b.iter(|| {
            Error::from(BoxError::from(io::Error::from(
                io::ErrorKind::ConnectionReset,
            )))
            .kind()
        })
    });
    group.finish();
}

criterion_group!(benches, hints, errors);
criterion_main!(benches);
