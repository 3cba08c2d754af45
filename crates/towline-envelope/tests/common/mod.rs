//! Reads the recorded responses of `tests/fixtures/http/`: `#` comment lines (the source of
//! each, a vendor's documentation page), a status line, headers, a blank line, the body.

#![allow(unreachable_pub)]

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// A recorded response.
pub struct Recorded {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Parses a fixture; panics on a malformed one (it is a test's input).
pub fn recorded(text: &str) -> Recorded {
    let mut lines = text.lines().skip_while(|l| l.starts_with('#'));
    let status_line = lines.next().expect("a status line");
    let code = status_line.split(' ').nth(1).expect("a status code");
    let status = StatusCode::from_bytes(code.as_bytes()).expect("a valid status");
    let mut headers = HeaderMap::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("name: value");
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    let body: Vec<&str> = lines.collect();
    Recorded {
        status,
        headers,
        body: Bytes::from(body.join("\n")),
    }
}

/// `fixtures/http/<name>.http`, parsed.
#[macro_export]
macro_rules! fixture {
    ($name:literal) => {
        common::recorded(include_str!(concat!("fixtures/http/", $name, ".http")))
    };
}
