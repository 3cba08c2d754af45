//! Scripted token sources and upstreams for the token cache tests.

// Each test binary uses its own part of it.
#![allow(dead_code)]

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tokio::sync::watch;
use tokio::time::Instant;
use tower::{BoxError, Layer, ServiceExt, service_fn, util::BoxCloneSyncService};
use towline_auth::{Token, TokenRefreshLayer, TokenSource, from_fn};

pub(crate) type Body = Full<Bytes>;
pub(crate) type Upstream = BoxCloneSyncService<Request<Body>, Response<()>, BoxError>;
pub(crate) type Client = BoxCloneSyncService<Request<Body>, Response<()>, BoxError>;

/// When each fetch of a [`source`] began; fetch `n` (from 1) is entry `n - 1`.
#[derive(Clone, Default)]
pub(crate) struct Fetches(Arc<Mutex<Vec<Instant>>>);

impl Fetches {
    pub(crate) fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The instants of the fetches, as offsets from `start`.
    pub(crate) fn since(&self, start: Instant) -> Vec<Duration> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|at| *at - start)
            .collect()
    }

    /// Waits (yielding) until `n` fetches began.
    pub(crate) async fn reach(&self, n: usize) {
        while self.count() < n {
            tokio::task::yield_now().await;
        }
    }
}

/// A source whose fetch `n` (from 1) is `script(n)`, recording when each began.
pub(crate) fn source<F, Fut>(script: F) -> (impl TokenSource, Fetches)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Token, BoxError>> + Send + 'static,
{
    let fetches = Fetches::default();
    let log = fetches.clone();
    let source = from_fn(move || {
        let n = {
            let mut log = log.0.lock().unwrap();
            log.push(Instant::now());
            log.len()
        };
        script(n)
    });
    (source, fetches)
}

/// A source whose fetches from `from` on wait at `gate` before giving `token-n`, expiring
/// after `lifetime` if one is given.
pub(crate) fn gated_source(
    gate: &Gate,
    from: usize,
    lifetime: Option<Duration>,
) -> (impl TokenSource, Fetches) {
    let gate = gate.clone();
    source(move |n| {
        let passed = gate.passed();
        async move {
            if n >= from {
                passed.await;
            }
            token(n, lifetime)
        }
    })
}

/// Polls `future` once, and leaves it parked.
pub(crate) async fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    let mut future = Some(future);
    poll_fn(|cx| Poll::Ready(future.take().map(|f| f.poll(cx))))
        .await
        .unwrap()
}

/// `token-n`, expiring after `lifetime` if one is given.
pub(crate) fn token(n: usize, lifetime: Option<Duration>) -> Result<Token, BoxError> {
    let token = Token::new(format!("token-{n}"))?;
    Ok(match lifetime {
        Some(lifetime) => token.expires_in(lifetime),
        None => token,
    })
}

/// A gate that scripted futures wait at until the test opens it.
#[derive(Clone)]
pub(crate) struct Gate(Arc<watch::Sender<bool>>);

impl Gate {
    pub(crate) fn closed() -> Self {
        Gate(Arc::new(watch::channel(false).0))
    }

    pub(crate) fn open(&self) {
        self.0.send_replace(true);
    }

    pub(crate) fn passed(&self) -> impl Future<Output = ()> + Send + use<> {
        let mut open = self.0.subscribe();
        async move {
            let _ = open.wait_for(|open| *open).await;
        }
    }
}

/// An upstream that accepts every token and echoes the one it got in `x-seen`.
pub(crate) fn echo() -> Upstream {
    BoxCloneSyncService::new(service_fn(|request: Request<Body>| async move {
        let mut response = Response::new(());
        if let Some(auth) = request.headers().get("authorization") {
            response.headers_mut().insert("x-seen", auth.clone());
        }
        Ok::<_, BoxError>(response)
    }))
}

/// `upstream` behind `layer`.
pub(crate) fn client(layer: &TokenRefreshLayer, upstream: Upstream) -> Client {
    BoxCloneSyncService::new(layer.layer(upstream))
}

pub(crate) fn request() -> Request<Body> {
    Request::new(Full::new(Bytes::new()))
}

/// One call; the token the upstream saw (`x-seen`), or the error.
pub(crate) async fn call(client: &Client) -> Result<String, BoxError> {
    let response = client.clone().oneshot(request()).await?;
    Ok(seen(&response))
}

/// The token an [`echo`] response says it got.
pub(crate) fn seen(response: &Response<()>) -> String {
    response
        .headers()
        .get("x-seen")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}
