//! The token cache shared by a layer's clones, with single-flight refresh.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tokio::sync::watch;
use tokio::time::Instant;
use towline_core::{AuthError, AuthReason, BoxError};

use crate::token::{InvalidToken, TokenSource};

/// The token in use, ready to attach.
pub(crate) struct Current {
    /// `"<scheme> <secret>"` (or the bare secret), marked sensitive.
    pub(crate) header: HeaderValue,
    expires_at: Option<Instant>,
    /// Which refresh produced it: a 401 for an older generation just replays.
    pub(crate) generation: u64,
}

/// What a refresh hands its waiters: the token, or why there is none.
type Outcome = Result<Arc<Current>, Arc<str>>;

/// What a refresh does next, decided under the lock.
enum Next {
    Use(Arc<Current>),
    Wait(watch::Receiver<Option<Outcome>>),
    Fetch(watch::Sender<Option<Outcome>>),
}

struct State {
    current: Option<Arc<Current>>,
    generation: u64,
    /// The refresh in flight, if any: waiters subscribe instead of fetching again.
    inflight: Option<watch::Receiver<Option<Outcome>>>,
}

pub(crate) struct Cache {
    source: Box<dyn TokenSource>,
    pub(crate) header_name: HeaderName,
    scheme: Option<String>,
    margin: Duration,
    state: Mutex<State>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // No token here, ever.
        f.debug_struct("TokenCache")
            .field("header", &self.header_name)
            .field("scheme", &self.scheme)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl Cache {
    pub(crate) fn new(
        source: Box<dyn TokenSource>,
        header_name: HeaderName,
        scheme: Option<String>,
        margin: Duration,
    ) -> Self {
        Cache {
            source,
            header_name,
            scheme,
            margin,
            state: Mutex::new(State {
                current: None,
                generation: 0,
                inflight: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The header value and generation of the cached token if it is not about to expire: the
    /// fast path, no waiting. Copies just those under the lock: cloning the `Arc<Current>`
    /// would cost two more atomic operations per call.
    pub(crate) fn fresh(&self) -> Option<(HeaderValue, u64)> {
        let state = self.lock();
        let current = state.current.as_ref()?;
        match current.expires_at {
            // Refresh ahead of the expiry, so that calls rarely meet a 401. The clock is read
            // only for a token that expires.
            Some(at) if Instant::now() + self.margin >= at => None,
            _ => Some((current.header.clone(), current.generation)),
        }
    }

    /// A token newer than generation `stale` (or any fresh one if `stale` is `None`): the one
    /// another refresh just made, the result of the refresh in flight, or a new fetch.
    pub(crate) async fn refresh(
        self: Arc<Self>,
        stale: Option<u64>,
    ) -> Result<Arc<Current>, BoxError> {
        loop {
            // Decide under the lock, act after it: the guard must not live across an await.
            let next = {
                let mut state = self.lock();
                let ready = state.current.as_ref().filter(|current| {
                    let newer = stale.is_some_and(|stale| current.generation > stale);
                    let usable = stale.is_none()
                        && current
                            .expires_at
                            .is_none_or(|at| Instant::now() + self.margin < at);
                    newer || usable
                });
                match (ready, &state.inflight) {
                    (Some(current), _) => Next::Use(current.clone()),
                    (None, Some(receiver)) => Next::Wait(receiver.clone()),
                    (None, None) => {
                        let (sender, receiver) = watch::channel(None);
                        state.inflight = Some(receiver);
                        Next::Fetch(sender)
                    }
                }
            };
            let mut receiver = match next {
                Next::Use(current) => return Ok(current),
                Next::Fetch(sender) => return self.fetch(sender).await,
                Next::Wait(receiver) => receiver,
            };
            // Wait for the refresh in flight; if its fetcher was dropped mid-way, try again.
            let outcome = match receiver.wait_for(Option::is_some).await {
                Ok(outcome) => outcome.clone(),
                Err(_) => continue,
            };
            return match outcome {
                Some(Ok(current)) => Ok(current),
                Some(Err(message)) => Err(source_failed(message.to_string().into())),
                None => continue,
            };
        }
    }

    /// Fetches a token as the one refresh in flight, and tells the waiters.
    async fn fetch(
        self: Arc<Self>,
        sender: watch::Sender<Option<Outcome>>,
    ) -> Result<Arc<Current>, BoxError> {
        // If this future is dropped mid-fetch, the guard clears the in-flight mark so that the
        // next call fetches again (the waiters see the channel close and retry).
        let guard = InflightGuard { cache: &self };
        let fetched = self.source.fetch().await;
        let outcome: Result<Arc<Current>, BoxError> = match fetched {
            Ok(token) => self.header_for(token.secret()).map(|header| {
                let mut state = self.lock();
                state.generation += 1;
                let current = Arc::new(Current {
                    header,
                    expires_at: token.expiry(),
                    generation: state.generation,
                });
                state.current = Some(current.clone());
                current
            }),
            Err(error) => Err(error),
        };
        drop(guard);
        match outcome {
            Ok(current) => {
                sender.send_replace(Some(Ok(current.clone())));
                Ok(current)
            }
            Err(error) => {
                // Waiters get the message; the fetcher keeps the original error as the source.
                sender.send_replace(Some(Err(error.to_string().into())));
                Err(source_failed(error))
            }
        }
    }

    fn header_for(&self, secret: &str) -> Result<HeaderValue, BoxError> {
        let text = match &self.scheme {
            Some(scheme) => format!("{scheme} {secret}"),
            None => secret.to_owned(),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| InvalidToken::NotVisibleAscii)?;
        value.set_sensitive(true);
        Ok(value)
    }
}

struct InflightGuard<'a> {
    cache: &'a Cache,
}

impl Drop for InflightGuard<'_> {
    fn drop(&mut self) {
        self.cache.lock().inflight = None;
    }
}

fn source_failed(error: BoxError) -> BoxError {
    Box::new(AuthError::new(AuthReason::SourceFailed).with_source(error))
}
