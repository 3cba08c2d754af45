//! Tests of the hint types, formats and reader.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName};
use tokio::time::Instant;

use crate::{DEFAULT_HINT_CAP, HintFormat, HintReader, HintSource, RetryHint};
use http::HeaderValue;
use proptest::prelude::*;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

const NOW: u64 = 1_763_769_600; // 2025-11-22T00:00:00Z

fn headers(pairs: &[(&'static str, &'static [u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_bytes(value).unwrap());
    }
    map
}

fn read(pairs: &[(&'static str, &'static [u8])]) -> Option<RetryHint> {
    HintReader::new().read_at(&headers(pairs), at(NOW))
}

fn wait(pairs: &[(&'static str, &'static [u8])]) -> Option<Duration> {
    read(pairs).map(|h| h.wait())
}

#[test]
fn retry_after_delta_seconds() {
    assert_eq!(wait(&[("retry-after", b"5")]), Some(Duration::from_secs(5)));
    assert_eq!(wait(&[("retry-after", b"0")]), Some(Duration::ZERO));
    assert_eq!(
        wait(&[("retry-after", b"  120 ")]),
        Some(Duration::from_secs(120))
    );
    assert_eq!(
        wait(&[("retry-after", b"007")]),
        Some(Duration::from_secs(7))
    );
}

#[test]
fn retry_after_http_date_in_all_three_forms() {
    let date: &[(&str, &[u8])] = &[("date", b"Sat, 22 Nov 2025 00:00:00 GMT")];
    for form in [
        &b"Sat, 22 Nov 2025 00:00:30 GMT"[..],
        b"Saturday, 22-Nov-25 00:00:30 GMT",
        b"Sat Nov 22 00:00:30 2025",
    ] {
        let mut map = headers(date);
        map.insert("retry-after", HeaderValue::from_bytes(form).unwrap());
        let hint = HintReader::new().read_at(&map, at(NOW)).unwrap();
        assert_eq!(hint.wait(), Duration::from_secs(30), "{form:?}");
    }
}

#[test]
fn retry_after_date_is_measured_against_the_date_header_not_the_local_clock() {
    let map = headers(&[
        ("date", b"Sat, 22 Nov 2025 10:00:00 GMT"),
        ("retry-after", b"Sat, 22 Nov 2025 10:01:00 GMT"),
    ]);
    // The local clock is 10 hours behind the server's: still 60 s.
    let hint = HintReader::new().read_at(&map, at(NOW)).unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(60));
}

#[test]
fn retry_after_date_without_date_header_uses_the_local_clock() {
    assert_eq!(
        wait(&[("retry-after", b"Sat, 22 Nov 2025 00:00:10 GMT")]),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn a_garbage_date_header_falls_back_to_the_local_clock() {
    assert_eq!(
        wait(&[
            ("date", b"yesterday"),
            ("retry-after", b"Sat, 22 Nov 2025 00:00:10 GMT")
        ]),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn past_dates_are_zero() {
    assert_eq!(
        wait(&[("retry-after", b"Thu, 01 Jan 1970 00:00:00 GMT")]),
        Some(Duration::ZERO)
    );
    assert_eq!(
        wait(&[("retry-after", b"Fri, 21 Nov 2025 23:59:59 GMT")]),
        Some(Duration::ZERO)
    );
    assert_eq!(
        wait(&[("x-ratelimit-reset", b"1000000000")]),
        Some(Duration::ZERO)
    );
}

#[test]
fn garbage_and_negative_values_give_no_hint() {
    for bad in [
        &b"-5"[..],
        b"+5",
        b"",
        b"   ",
        b"soon",
        b"5s",
        b"5 6",
        b"1e3",
        b"0x10",
        b"1.",
        b".5",
        b"1..5",
        b"NaN",
        b"inf",
        b"Sat, 32 Nov 2025 00:00:00 GMT",
        b"\xff\xfe",
    ] {
        let mut map = HeaderMap::new();
        map.insert("retry-after", HeaderValue::from_bytes(bad).unwrap());
        map.insert("x-wait-seconds", HeaderValue::from_bytes(bad).unwrap());
        map.insert("ratelimit-reset", HeaderValue::from_bytes(bad).unwrap());
        map.insert("x-ratelimit-reset", HeaderValue::from_bytes(bad).unwrap());
        assert_eq!(HintReader::new().read_at(&map, at(NOW)), None, "{bad:?}");
    }
}

#[test]
fn overflowing_values_are_capped_and_flagged() {
    for huge in [
        &b"99999999999"[..],
        b"18446744073709551616",
        b"999999999999999999999999999999999999",
    ] {
        let mut map = HeaderMap::new();
        map.insert("x-wait-seconds", HeaderValue::from_bytes(huge).unwrap());
        let hint = HintReader::new().read_at(&map, at(NOW)).unwrap();
        assert_eq!(hint.wait(), DEFAULT_HINT_CAP, "{huge:?}");
        assert!(hint.was_capped());
        assert!(hint.requested() >= Duration::from_secs(99_999_999_999));
    }
}

#[test]
fn x_wait_seconds_accepts_fractions() {
    assert_eq!(
        wait(&[("x-wait-seconds", b"1.25")]),
        Some(Duration::from_millis(1250))
    );
    assert_eq!(
        wait(&[("x-wait-seconds", b"0.0000000019")]),
        Some(Duration::from_nanos(1))
    );
}

#[test]
fn x_wait_seconds_is_not_a_date() {
    assert_eq!(
        wait(&[("x-wait-seconds", b"Sat, 22 Nov 2025 00:00:10 GMT")]),
        None
    );
}

#[test]
fn reset_headers_read_deltas_and_epochs() {
    assert_eq!(
        wait(&[("ratelimit-reset", b"42")]),
        Some(Duration::from_secs(42))
    );
    assert_eq!(
        wait(&[("x-ratelimit-reset", b"1763769660")]),
        Some(Duration::from_secs(60))
    );
    let hint = read(&[("ratelimit-reset", b"1763769605")]).unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(5));
    assert_eq!(hint.source(), &HintSource::RateLimitReset);
}

#[test]
fn reset_epochs_are_measured_against_the_date_header() {
    let map = headers(&[
        ("date", b"Sat, 22 Nov 2025 00:10:00 GMT"),
        ("x-ratelimit-reset", b"1763770210"),
    ]);
    let hint = HintReader::new().read_at(&map, at(NOW)).unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(10));
}

#[test]
fn retry_after_takes_precedence_over_the_other_headers() {
    let hint = read(&[
        ("retry-after", b"3"),
        ("x-wait-seconds", b"9"),
        ("ratelimit-reset", b"4"),
    ])
    .unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(3));
    assert_eq!(hint.source(), &HintSource::RetryAfter);

    let hint = read(&[("x-wait-seconds", b"9"), ("x-ratelimit-reset", b"40")]).unwrap();
    assert_eq!(hint.source(), &HintSource::XWaitSeconds);
}

#[test]
fn github_secondary_limit_waits_for_retry_after_not_the_primary_reset() {
    // Secondary limit: Retry-After 60 beside the primary window's reset 50 minutes away.
    let hint = read(&[
        ("retry-after", b"60"),
        ("x-ratelimit-remaining", b"4999"),
        ("x-ratelimit-reset", b"1763772600"),
    ])
    .unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(60));
}

#[test]
fn a_reset_counts_only_when_the_quota_is_used_up() {
    assert_eq!(
        wait(&[
            ("x-ratelimit-remaining", b"12"),
            ("x-ratelimit-reset", b"30")
        ]),
        None
    );
    assert_eq!(
        wait(&[
            ("x-ratelimit-remaining", b"0"),
            ("x-ratelimit-reset", b"30")
        ]),
        Some(Duration::from_secs(30))
    );
    assert_eq!(
        wait(&[("ratelimit-remaining", b" 0 "), ("ratelimit-reset", b"7")]),
        Some(Duration::from_secs(7))
    );
    assert_eq!(
        wait(&[("ratelimit-reset", b"7")]),
        Some(Duration::from_secs(7))
    );
}

#[test]
fn a_repeated_header_keeps_its_longest_value() {
    let hint = read(&[("retry-after", b"2"), ("retry-after", b"8")]).unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(8));
}

#[test]
fn an_implausible_date_header_is_not_trusted() {
    // A server clock stuck in 1970 would turn a 60 s reset into 56 years.
    let hint = read(&[
        ("date", b"Thu, 01 Jan 1970 00:00:00 GMT"),
        ("x-ratelimit-reset", b"1763769660"),
    ])
    .unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(60));
    assert!(!hint.was_capped());
}

#[test]
fn a_valid_header_still_counts_beside_garbage() {
    assert_eq!(
        wait(&[("retry-after", b"-5"), ("x-wait-seconds", b"2")]),
        Some(Duration::from_secs(2))
    );
}

#[test]
fn no_headers_no_hint() {
    assert_eq!(read(&[]), None);
    assert_eq!(read(&[("content-type", b"application/json")]), None);
}

#[test]
fn user_headers_are_read_in_their_format() {
    let hints = HintReader::new().header(HeaderName::from_static("x-retry-in"), HintFormat::Reset);
    let map = headers(&[("x-retry-in", b"1763769615")]);
    let hint = hints.read_at(&map, at(NOW)).unwrap();
    assert_eq!(hint.wait(), Duration::from_secs(15));
    assert_eq!(hint.source().to_string(), "x-retry-in");
}

#[test]
fn ends_at_saturates_instead_of_panicking() {
    let now = Instant::now();
    let hint = RetryHint::new(Duration::MAX, HintSource::Body);
    assert!(hint.ends_at(now) > now + Duration::from_secs(86_400 * 365));
}

#[test]
fn display_says_what_and_where() {
    let hint = RetryHint::new(Duration::from_secs(90), HintSource::RetryAfter)
        .capped(Duration::from_secs(60));
    assert_eq!(hint.to_string(), "wait 60s (retry-after), capped from 90s");
}

proptest! {
    #[test]
    fn arbitrary_header_bytes_never_panic_and_never_exceed_the_cap(
        value in proptest::collection::vec(any::<u8>(), 0..64),
        date in proptest::collection::vec(any::<u8>(), 0..40),
        cap_secs in 0u64..100_000,
        now_secs in 0u64..4_000_000_000,
    ) {
        let cap = Duration::from_secs(cap_secs);
        let now = at(now_secs);
        for format in [HintFormat::RetryAfter, HintFormat::DeltaSeconds, HintFormat::Reset] {
            let _ = format.parse(&value, now);
        }
        let (Ok(value), Ok(date)) = (HeaderValue::from_bytes(&value), HeaderValue::from_bytes(&date)) else {
            return Ok(());
        };
        let mut map = HeaderMap::new();
        map.insert("date", date);
        for name in ["retry-after", "x-wait-seconds", "ratelimit-reset", "x-ratelimit-reset"] {
            map.insert(name, value.clone());
        }
        if let Some(hint) = HintReader::new().cap(cap).read_at(&map, now) {
            prop_assert!(hint.wait() <= cap);
            prop_assert!(hint.wait() <= hint.requested());
        }
    }

    #[test]
    fn any_digits_parse_and_stay_under_the_cap(secs in any::<u64>(), frac in 0u32..1_000_000_000) {
        let text = format!("{secs}.{frac:09}");
        let parsed = HintFormat::DeltaSeconds.parse(text.as_bytes(), at(NOW)).unwrap();
        prop_assert_eq!(parsed, Duration::new(secs, frac));
        let mut map = HeaderMap::new();
        map.insert("x-wait-seconds", HeaderValue::from_str(&text).unwrap());
        let hint = HintReader::new().read_at(&map, at(NOW)).unwrap();
        prop_assert!(hint.wait() <= DEFAULT_HINT_CAP);
    }

    #[test]
    fn http_dates_round_trip(offset in 0u64..10_000_000, now_secs in 0u64..3_000_000_000) {
        let now = at(now_secs);
        let then = now + Duration::from_secs(offset);
        let text = httpdate::fmt_http_date(then);
        prop_assert_eq!(HintFormat::RetryAfter.parse(text.as_bytes(), now), Some(Duration::from_secs(offset)));
    }
}
