//! The settings a layer's services and futures share.

use std::sync::Arc;
use std::time::Duration;

use towline_core::HintReader;

use crate::Quota;
use crate::store::GateStore;

/// A request's key from its head (see `RateLimitLayer::key_by`).
pub(crate) type KeyFn = dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync;

/// The configuration a layer's services share.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) store: Arc<dyn GateStore>,
    pub(crate) hints: HintReader,
    pub(crate) max_wait: Duration,
    pub(crate) max_close: Duration,
    pub(crate) spread: Duration,
    pub(crate) quota: Option<Quota>,
    pub(crate) key: Option<Arc<KeyFn>>,
}

impl Config {
    /// Whether a call may go at once without asking anything: no gate closed anywhere and
    /// no quota to keep.
    pub(crate) fn lets_all_pass(&self) -> bool {
        self.quota.is_none() && self.store.is_idle()
    }
}
