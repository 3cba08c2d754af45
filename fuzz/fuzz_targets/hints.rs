//! Any header bytes: every hint parser is total, and a hint never exceeds its cap.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use towline_core::{HintFormat, HintReader};

fuzz_target!(|input: &[u8]| {
    let [cap, now_a, now_b, now_c, now_d, rest @ ..] = input else {
        return;
    };
    let cap = Duration::from_secs(u64::from(*cap) * 60);
    let now = UNIX_EPOCH
        + Duration::from_secs(u64::from(u32::from_be_bytes([
            *now_a, *now_b, *now_c, *now_d,
        ])));
    // The rest is split into a value and a Date header at the first 0xFF.
    let (value, date) = match rest.iter().position(|b| *b == 0xFF) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    for format in [
        HintFormat::RetryAfter,
        HintFormat::DeltaSeconds,
        HintFormat::Reset,
    ] {
        let _ = format.parse(value, now);
    }
    let Ok(value) = HeaderValue::from_bytes(value) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for name in [
        "retry-after",
        "x-wait-seconds",
        "ratelimit-reset",
        "x-ratelimit-reset",
    ] {
        headers.insert(name, value.clone());
    }
    if let Ok(date) = HeaderValue::from_bytes(date) {
        headers.insert("date", date);
    }
    if let Some(hint) = HintReader::new().cap(cap).read_at(&headers, now) {
        assert!(hint.wait() <= cap);
        assert!(hint.wait() <= hint.requested());
    }
});
