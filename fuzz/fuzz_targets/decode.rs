//! Any status, content type and body: `decode` and every explicit format never panic, and a
//! 2xx without an in-band format is never an error.
#![no_main]

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use towline_envelope::{Decoder, Format, decode};

const CONTENT_TYPES: [&str; 5] = [
    "application/json",
    "application/problem+json",
    "application/vnd.api+json",
    "text/plain",
    "text/javascript",
];

fuzz_target!(|input: &[u8]| {
    let [status_hi, status_lo, content_type, body @ ..] = input else {
        return;
    };
    let status = 100 + (u16::from_be_bytes([*status_hi, *status_lo]) % 500);
    let Ok(status) = StatusCode::from_u16(status) else {
        return;
    };
    let mut headers = HeaderMap::new();
    let content_type = CONTENT_TYPES[*content_type as usize % CONTENT_TYPES.len()];
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let body = bytes::Bytes::copy_from_slice(body);

    let auto = decode(status, &headers, body.clone());
    if status.is_client_error() || status.is_server_error() {
        assert!(auto.is_some(), "an error status always gives an ApiError");
    }
    // The view of the members reads the same body: it must not panic either, for the
    // envelope or any detail.
    if let Some(err) = &auto {
        let mut errors = vec![err];
        while let Some(e) = errors.pop() {
            let _ = e.members.object();
            let _ = e.members.get("message");
            errors.extend(&e.details);
        }
    }
    for format in Format::ALL {
        let explicit = Decoder::only(format).decode(status, &headers, body.clone());
        if status.is_success() && !format.has_in_band_errors() {
            assert!(explicit.is_none(), "{format:?} saw an error in a success");
        }
    }
});
