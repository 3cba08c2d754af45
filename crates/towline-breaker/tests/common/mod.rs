//! What the breaker's tests share: an upstream whose answer is set by the test, and requests.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use tokio::sync::Semaphore;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};
use towline_breaker::{CircuitBreaker, CircuitBreakerLayer, CircuitState, Settings};
use towline_core::{CircuitOpen, Error, ErrorKind};

/// The status `RESET` stands for a connection reset instead of a response.
pub const RESET: u16 = 0;

/// An upstream answering the status the test sets (or a reset), counting the calls it gets,
/// and holding each call until the test lets it go when `held`.
#[derive(Clone)]
pub struct Upstream {
    status: Arc<AtomicU16>,
    pub calls: Arc<AtomicUsize>,
    gate: Option<Arc<Semaphore>>,
}

impl Upstream {
    pub fn answering(status: u16) -> Self {
        Upstream {
            status: Arc::new(AtomicU16::new(status)),
            calls: Arc::new(AtomicUsize::new(0)),
            gate: None,
        }
    }

    /// Calls wait until [`release`](Self::release) lets them go.
    pub fn held(status: u16) -> Self {
        Upstream {
            gate: Some(Arc::new(Semaphore::new(0))),
            ..Self::answering(status)
        }
    }

    pub fn set(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn release(&self, calls: usize) {
        self.gate
            .as_ref()
            .expect("a held upstream")
            .add_permits(calls);
    }

    pub fn service(
        &self,
    ) -> impl Service<
        Request<()>,
        Response = Response<()>,
        Error = BoxError,
        Future = impl Future<Output = Result<Response<()>, BoxError>> + Send + use<>,
    > + Clone
    + Send
    + use<> {
        let upstream = self.clone();
        service_fn(move |_request: Request<()>| {
            let upstream = upstream.clone();
            async move {
                upstream.calls.fetch_add(1, Ordering::SeqCst);
                if let Some(gate) = &upstream.gate {
                    gate.acquire().await.expect("open").forget();
                }
                match upstream.status.load(Ordering::SeqCst) {
                    RESET => Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset).into()),
                    code => Ok(Response::builder()
                        .status(StatusCode::from_u16(code).expect("a status"))
                        .body(())
                        .expect("a response")),
                }
            }
        })
    }
}

pub fn request(host: &str) -> Request<()> {
    Request::get(format!("http://{host}/items"))
        .body(())
        .expect("a request")
}

pub fn layer(settings: Settings) -> CircuitBreakerLayer {
    CircuitBreakerLayer::with_settings(settings).expect("valid settings")
}

pub type Breaker<S> = CircuitBreaker<S>;

pub fn breaker<S>(layer: &CircuitBreakerLayer, inner: S) -> CircuitBreaker<S> {
    layer.layer(inner)
}

/// Sends one call to `host` and returns how it ended: a status, or the error's kind.
pub async fn call<S>(service: &S, host: &str) -> Result<u16, ErrorKind>
where
    S: Service<Request<()>, Response = Response<()>, Error = BoxError> + Clone,
{
    match service.clone().oneshot(request(host)).await {
        Ok(response) => Ok(response.status().as_u16()),
        Err(error) => Err(Error::from(error).kind()),
    }
}

/// The `CircuitOpen` a call to `host` fails with.
pub async fn refusal<S>(service: &S, host: &str) -> CircuitOpen
where
    S: Service<Request<()>, Response = Response<()>, Error = BoxError> + Clone,
{
    // Bounded: a call let through to a held upstream would otherwise wait forever.
    let error = tokio::time::timeout(
        Duration::from_secs(3600),
        service.clone().oneshot(request(host)),
    )
    .await
    .expect("refused at once, not sent")
    .expect_err("refused");
    Error::from(error)
        .find::<CircuitOpen>()
        .expect("a CircuitOpen")
        .clone()
}

pub fn is_open(state: Option<CircuitState>) -> bool {
    matches!(state, Some(CircuitState::Open { .. }))
}

pub fn closed(calls: u64, failures: u64) -> Option<CircuitState> {
    Some(CircuitState::Closed { calls, failures })
}

/// Polls `future` once, without a runtime's waker.
pub fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

pub const SECOND: Duration = Duration::from_secs(1);

/// Runs a test body under a paused clock, failing it if it hangs: a call that should have
/// ended but waits forever makes the clock jump an hour at once, where the test would hang.
pub async fn bounded<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(3600), body)
        .await
        .expect("the test hung: an hour of virtual time passed")
}

/// The same on a real clock, for the multi-thread tests: a minute.
pub async fn bounded_real<F: Future>(body: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), body)
        .await
        .expect("the test hung for a minute")
}
