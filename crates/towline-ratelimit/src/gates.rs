//! [`Gates`]: an operator's handle on a layer's gates.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use towline_core::BoxError;

use crate::store::GateStore;
use crate::time::after;

/// The gates of a [`RateLimitLayer`](crate::RateLimitLayer) (from
/// [`gates`](crate::RateLimitLayer::gates)): which are closed, until when, and a way to reopen
/// one (say, after the vendor confirmed a lock was lifted).
///
/// ```
/// use std::time::Duration;
/// use http::{Request, Response, StatusCode};
/// use tower::{BoxError, Layer, ServiceExt, service_fn};
/// use towline_ratelimit::RateLimitLayer;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let layer = RateLimitLayer::new();
/// let service = layer.layer(service_fn(|_req: Request<()>| async {
///     let mut response = Response::new(());
///     *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
///     response.headers_mut().insert("retry-after", "600".parse().unwrap());
///     Ok::<_, BoxError>(response)
/// }));
/// service.oneshot(Request::get("http://api.example/").body(()).unwrap()).await.unwrap();
///
/// let gates = layer.gates();
/// let closed = gates.closed().await.unwrap();
/// assert_eq!(closed[0].key(), "api.example");
/// assert_eq!(closed[0].remaining(), Duration::from_secs(600));
/// assert!(gates.reopen("api.example").await.unwrap());
/// assert!(gates.closed().await.unwrap().is_empty());
/// # }
/// ```
#[derive(Clone)]
pub struct Gates {
    store: Arc<dyn GateStore>,
}

impl fmt::Debug for Gates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gates").finish_non_exhaustive()
    }
}

impl Gates {
    pub(crate) fn new(store: Arc<dyn GateStore>) -> Self {
        Gates { store }
    }

    /// The gates closed now, soonest to open first.
    pub async fn closed(&self) -> Result<Vec<ClosedGate>, BoxError> {
        let gates = self.store.closed_gates().await?;
        let now = Instant::now();
        let mut gates: Vec<ClosedGate> = gates
            .into_iter()
            .map(|(key, remaining)| ClosedGate {
                key,
                until: after(now, remaining),
            })
            .collect();
        gates.sort_by_key(|gate| gate.until);
        Ok(gates)
    }

    /// Opens the gate of `key` now (an operator's act: the only way a gate opens early);
    /// `true` if it was closed.
    pub async fn reopen(&self, key: &str) -> Result<bool, BoxError> {
        self.store.reopen(key).await
    }
}

/// A closed gate, as [`Gates::closed`] lists it.
///
/// Its `Debug` leaves the key out: a key from [`key_by`](crate::RateLimitLayer::key_by) may be
/// a secret (an API key). [`key`](Self::key) gives it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let gates = towline_ratelimit::RateLimitLayer::new().gates();
/// for gate in gates.closed().await.unwrap() {
///     println!("{} opens in {:?}", gate.key(), gate.remaining());
/// }
/// # }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClosedGate {
    key: String,
    until: Instant,
}

impl ClosedGate {
    /// The gate's key (an authority, or what `key_by` returned).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// When the gate opens.
    pub fn until(&self) -> Instant {
        self.until
    }

    /// How long until the gate opens, from now.
    pub fn remaining(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }
}

impl fmt::Debug for ClosedGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClosedGate")
            .field("key", &"<redacted>")
            .field("until", &self.until)
            .finish()
    }
}
