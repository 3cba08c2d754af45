//! Where gates and quotas live: the [`GateStore`] trait and the answers it gives.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use towline_core::BoxError;

use crate::Quota;

/// The shared state of a rate-limit layer: when each key's gate opens, and the recent calls
/// of each paced key.
///
/// [`InMemoryStore`](crate::InMemoryStore) keeps it in this process. A shared store (Redis,
/// say) lets many replicas that share an API key honour one gate and one quota. Every method
/// that may do I/O returns a [`StoreFuture`], which an in-memory store answers
/// [at once](StoreFuture::ready), without allocating, and a remote one with a
/// [boxed future](StoreFuture::new). A store that fails a lookup fails the call with its
/// error (wrap the store to fail open instead).
///
/// What any store must guarantee (the layer relies on it):
///
/// - **Time is the store's.** Waits cross the trait as durations from the moment the store
///   answers, never as instants: a remote store measures them with its own (server-side)
///   clock, so replicas whose clocks disagree still agree on when a gate opens. Nothing is
///   compared across replica clocks.
/// - **Closing only extends.** [`close`](Self::close) never brings a gate's opening earlier;
///   only [`reopen`](Self::reopen), an operator's explicit act, does.
/// - **Reservations can be released.** A quota slot that [`reserve`](Self::reserve) handed out
///   and whose call was never sent (its caller gave up) is given back by
///   [`release`](Self::release), so that cancelled callers do not use up the quota.
/// - **Work outlives its caller.** A caller may drop a returned future at any time (its
///   deadline, a `select!`); a `close` must take effect all the same (a remote store sends it
///   from a task of its own), and `release`, called from a destructor, must not block.
/// - **Entries expire.** A gate is forgotten once it opens and a quota log once its window has
///   passed (a remote store sets a TTL), so one-off keys do not accumulate.
///
/// ```
/// use std::time::Duration;
/// use towline_ratelimit::{GateStore, InMemoryStore};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let store = InMemoryStore::default();
/// store.close("api.example", Duration::from_secs(5)).await.unwrap();
/// assert_eq!(store.closed_for("api.example").await.unwrap(), Some(Duration::from_secs(5)));
/// assert_eq!(store.closed_for("other.example").await.unwrap(), None);
/// # }
/// ```
pub trait GateStore: Send + Sync + 'static {
    /// Whether no gate at all is closed, cheaply and without I/O: lets an unpaced layer skip
    /// the clock and the lookup. `false` (always look) unless a store can tell.
    fn is_idle(&self) -> bool {
        false
    }

    /// How long the gate for `key` stays closed from now, or `None` if it is open.
    fn closed_for(&self, key: &str) -> StoreFuture<Option<Duration>>;

    /// Closes the gate for `key` for `wait` from now, unless it is already closed until later.
    fn close(&self, key: &str, wait: Duration) -> StoreFuture<()>;

    /// Reserves the next slot for a call on `key` under `quota`, no sooner than `not_before`
    /// from now: [`Slot::Reserved`] with how long the call waits, or [`Slot::Full`], reserving
    /// nothing, if that would be more than `latest` from now.
    fn reserve(
        &self,
        key: &str,
        quota: Quota,
        not_before: Duration,
        latest: Duration,
    ) -> StoreFuture<Slot>;

    /// Gives back a reservation whose call was not sent. Called from a destructor: must not
    /// block (a remote store queues it).
    fn release(&self, key: &str, reservation: Reservation);

    /// The gates closed now, with how long each stays closed (for operators; may be slow).
    fn closed_gates(&self) -> StoreFuture<Vec<(String, Duration)>>;

    /// Opens the gate for `key` now; `true` if it was closed.
    fn reopen(&self, key: &str) -> StoreFuture<bool>;
}

/// A store shared by handle: keep an `Arc` to look at the store the layer uses.
impl<T: GateStore + ?Sized> GateStore for Arc<T> {
    fn is_idle(&self) -> bool {
        (**self).is_idle()
    }

    fn closed_for(&self, key: &str) -> StoreFuture<Option<Duration>> {
        (**self).closed_for(key)
    }

    fn close(&self, key: &str, wait: Duration) -> StoreFuture<()> {
        (**self).close(key, wait)
    }

    fn reserve(
        &self,
        key: &str,
        quota: Quota,
        not_before: Duration,
        latest: Duration,
    ) -> StoreFuture<Slot> {
        (**self).reserve(key, quota, not_before, latest)
    }

    fn release(&self, key: &str, reservation: Reservation) {
        (**self).release(key, reservation)
    }

    fn closed_gates(&self) -> StoreFuture<Vec<(String, Duration)>> {
        (**self).closed_gates()
    }

    fn reopen(&self, key: &str) -> StoreFuture<bool> {
        (**self).reopen(key)
    }
}

/// The answer of a [`GateStore`]: ready at once (an in-memory store, no allocation) or a
/// boxed future (a remote store).
///
/// ```
/// use towline_ratelimit::StoreFuture;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(StoreFuture::ready(7).await.unwrap(), 7);
/// assert_eq!(StoreFuture::new(async { Ok(8) }).await.unwrap(), 8);
/// assert!(StoreFuture::<u8>::failed("store down").await.is_err());
/// # }
/// ```
pub struct StoreFuture<T> {
    state: Answer<T>,
}

type Pending<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

enum Answer<T> {
    Ready(Result<T, BoxError>),
    Pending(Pending<T>),
    Taken,
}

impl<T> StoreFuture<T> {
    /// An answer known now.
    pub fn ready(value: T) -> Self {
        StoreFuture {
            state: Answer::Ready(Ok(value)),
        }
    }

    /// A lookup that failed now.
    pub fn failed(error: impl Into<BoxError>) -> Self {
        StoreFuture {
            state: Answer::Ready(Err(error.into())),
        }
    }

    /// An answer that comes later (I/O).
    pub fn new(future: impl Future<Output = Result<T, BoxError>> + Send + 'static) -> Self {
        StoreFuture {
            state: Answer::Pending(Box::pin(future)),
        }
    }

    /// The answer if it is known without waiting, or the future back.
    pub(crate) fn now(self) -> Result<Result<T, BoxError>, Self> {
        match self.state {
            Answer::Ready(answer) => Ok(answer),
            state => Err(StoreFuture { state }),
        }
    }
}

// Never pinned structurally: the value is moved out, the future is boxed.
impl<T> Unpin for StoreFuture<T> {}

impl<T> Future for StoreFuture<T> {
    type Output = Result<T, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            Answer::Pending(future) => {
                let answer = std::task::ready!(future.as_mut().poll(cx));
                self.state = Answer::Taken;
                Poll::Ready(answer)
            }
            Answer::Ready(_) => match std::mem::replace(&mut self.state, Answer::Taken) {
                Answer::Ready(answer) => Poll::Ready(answer),
                _ => unreachable!("matched Ready just above"),
            },
            Answer::Taken => panic!("store future polled after completion"),
        }
    }
}

impl<T> fmt::Debug for StoreFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            Answer::Ready(_) => "ready",
            Answer::Pending(_) => "pending",
            Answer::Taken => "taken",
        };
        f.debug_struct("StoreFuture")
            .field("state", &state)
            .finish()
    }
}

/// What [`GateStore::reserve`] answered.
///
/// ```
/// use std::time::Duration;
/// use towline_ratelimit::{Reservation, Slot};
///
/// let slot = Slot::Reserved(Reservation::new(Duration::ZERO, 1));
/// assert!(matches!(slot, Slot::Reserved(r) if r.wait().is_zero()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// A slot is held for the call.
    Reserved(Reservation),
    /// No slot within the limit; the earliest would be this long from now.
    Full {
        /// How long from now the earliest slot is.
        earliest: Duration,
    },
}

/// A quota slot held for one call: how long it waits, and the store's name for the slot, to
/// [release](GateStore::release) it if the call is not sent.
///
/// ```
/// use std::time::Duration;
/// use towline_ratelimit::Reservation;
///
/// let reservation = Reservation::new(Duration::from_secs(2), 42);
/// assert_eq!(reservation.wait(), Duration::from_secs(2));
/// assert_eq!(reservation.id(), 42);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reservation {
    wait: Duration,
    id: u64,
}

impl Reservation {
    /// A slot `wait` from now, which the store calls `id`.
    pub fn new(wait: Duration, id: u64) -> Self {
        Reservation { wait, id }
    }

    /// How long from the store's answer the call may go.
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// The store's name for the slot.
    pub fn id(&self) -> u64 {
        self.id
    }
}
