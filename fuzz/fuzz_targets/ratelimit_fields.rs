//! Any bytes in the structured `RateLimit` and `RateLimit-Policy` fields: the parsers are
//! total, a hint never exceeds its cap, and the rate-limit mark never panics.
#![no_main]

use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use towline_core::{HintReader, RateLimitEntry, RateLimitPolicy, marks_rate_limit};

fuzz_target!(|input: &[u8]| {
    // Split into the two fields at the first 0xFF.
    let (ratelimit, policy) = match input.iter().position(|b| *b == 0xFF) {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[][..]),
    };
    let _ = RateLimitEntry::parse(ratelimit);
    let _ = RateLimitPolicy::parse(policy);
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(ratelimit) {
        headers.insert("ratelimit", value);
    }
    if let Ok(value) = HeaderValue::from_bytes(policy) {
        headers.insert("ratelimit-policy", value);
    }
    let cap = Duration::from_secs(600);
    if let Some(hint) = HintReader::new().cap(cap).read(&headers) {
        assert!(hint.wait() <= cap);
    }
    let _ = marks_rate_limit(StatusCode::FORBIDDEN, &headers);
});
