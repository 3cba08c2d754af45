//! What decoding a hostile error body allocates, against the body's size: many tiny objects,
//! empty ones, bare keys (quoted into a copy first), deep arrays. The parse keeps every value
//! of the body in memory for the formats to read, so some multiple is the price; this pins it,
//! so that a change in how the parse holds objects cannot multiply it unnoticed. What the
//! decoded error keeps once the parse is gone is pinned too: less than the body itself.
//!
//! One test in this binary: the allocator's counts are process-wide.

use std::alloc::System;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The decoder's default cap on an error body.
const BODY: usize = 64 * 1024;

/// At most this many bytes allocated while decoding, per byte of body. Measured: 16 for empty
/// objects, 60 for one-member objects (each has room for eight), 84 for the same with bare keys
/// (a quoted copy, and a first parse that fails), 96 for an envelope of many tiny errors (each
/// item becomes an `ApiError` of a few hundred bytes). When every object, empty ones too, had
/// room for eight, empty objects cost 165.
const MAX_BYTES_PER_BODY_BYTE: usize = 128;

/// At most this many bytes kept by the decoded error, per byte of body (the body itself, which
/// the caller passed in, not counted). Each list of details keeps its first
/// `towline_envelope::MAX_DETAILS`: without that, an envelope of many tiny errors kept an
/// `ApiError` of a few hundred bytes per ten bytes of body.
const MAX_KEPT_PER_BODY_BYTE: usize = 1;

/// `[item,item,...]` up to about [`BODY`] bytes.
fn list_of(item: &str) -> Bytes {
    let mut body = String::from("[");
    while body.len() + item.len() + 2 < BODY {
        body.push_str(item);
        body.push(',');
    }
    body.push_str(item);
    body.push(']');
    Bytes::from(body)
}

#[test]
fn decoding_a_hostile_body_allocates_a_bounded_multiple_of_it() {
    let bodies = [
        ("empty objects", list_of("{}")),
        ("one-member objects", list_of(r#"{"a":0}"#)),
        ("one-member objects, bare keys", list_of("{a:0}")),
        ("empty arrays", list_of("[]")),
        ("numbers", list_of("0")),
        (
            "an envelope with many tiny errors",
            Bytes::from(format!(
                r#"{{"errors":{}}}"#,
                String::from_utf8_lossy(&list_of(r#"{"code":1}"#))
            )),
        ),
    ];
    let headers = HeaderMap::new();
    for (name, body) in bodies {
        let len = body.len();
        let region = Region::new(ALLOCATOR);
        let err = towline_envelope::decode(StatusCode::BAD_REQUEST, &headers, body);
        let change = region.change();
        drop(err);
        let allocated = change.bytes_allocated;
        // stats_alloc counts a reallocation's growth in `bytes_allocated` already.
        let kept = allocated.saturating_sub(change.bytes_deallocated);
        let per_byte = allocated / len;
        eprintln!("{name}: {allocated} bytes for {len} ({per_byte} per byte), {kept} kept");
        assert!(
            per_byte <= MAX_BYTES_PER_BODY_BYTE,
            "{name}: {allocated} bytes allocated for a body of {len}"
        );
        assert!(
            kept <= MAX_KEPT_PER_BODY_BYTE * len,
            "{name}: the error keeps {kept} bytes for a body of {len}"
        );
    }
}
