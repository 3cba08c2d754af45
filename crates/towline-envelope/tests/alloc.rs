//! The layer's promise for successes, "no buffering, no allocation", counted: a success that
//! is not inspected costs no allocation per call, whether the settings are carried inline (a
//! built-in decoder) or shared (a decoder with its own hint reader or formats).
//!
//! One test in this binary: the allocator's counts are process-wide.

use std::alloc::System;
use std::cell::RefCell;
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::{Layer, Service};
use towline_core::HintReader;
use towline_envelope::{Decoder, ErrorBodyLayer, Format};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CALLS: usize = 100;

/// Answers with responses built beforehand, so that the inner service allocates nothing.
#[derive(Clone)]
struct Prepared(Rc<RefCell<Vec<Response<Full<Bytes>>>>>);

impl Service<Request<()>> for Prepared {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        ready(Ok(self.0.borrow_mut().pop().expect("a prepared response")))
    }
}

/// The allocations `CALLS` calls through `layer` make, each answered `status` with
/// `content_type`, the service cloned per call as `oneshot` callers do.
fn allocations(layer: &ErrorBodyLayer, status: u16, content_type: &str) -> usize {
    let responses = (0..=CALLS)
        .map(|_| {
            Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(Full::new(Bytes::from_static(br#"{"status":"ok"}"#)))
                .unwrap()
        })
        .collect();
    let service = layer.layer(Prepared(Rc::new(RefCell::new(responses))));
    let mut cx = Context::from_waker(Waker::noop());
    let mut call = || {
        let mut service = service.clone();
        let future = pin!(service.call(Request::new(())));
        match future.poll(&mut cx) {
            Poll::Ready(result) => drop(result),
            Poll::Pending => panic!("a ready inner service gave a pending call"),
        }
    };
    // Once first, for what is built once per process.
    call();
    let region = Region::new(ALLOCATOR);
    for _ in 0..CALLS {
        call();
    }
    region.change().allocations
}

#[test]
fn a_success_that_is_not_inspected_allocates_nothing_per_call() {
    // Inline settings.
    assert_eq!(
        allocations(&ErrorBodyLayer::new(), 200, "application/json"),
        0
    );
    let open2b = ErrorBodyLayer::with_decoder(Decoder::only(Format::Open2b));
    assert_eq!(allocations(&open2b, 200, "text/plain"), 0);
    assert_eq!(allocations(&open2b, 304, "application/json"), 0);
    // Shared settings.
    let shared = ErrorBodyLayer::with_decoder(Decoder::new().hints(HintReader::new()));
    assert_eq!(allocations(&shared, 200, "application/json"), 0);
    // The count sees what the buffering paths allocate.
    assert!(allocations(&ErrorBodyLayer::new(), 404, "application/json") >= CALLS);
    assert!(allocations(&open2b, 200, "application/json") >= CALLS);
}
