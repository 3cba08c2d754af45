//! The settings of an [`ErrorBodyLayer`](crate::ErrorBodyLayer), which its services and
//! response futures carry: the decoder, the cap, whether successes are inspected.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::response::Parts;
use towline_core::ApiError;

use crate::decoder::{Builtins, Decoder};

/// The default cap on the body bytes read: 64 KiB.
///
/// Error bodies are small (the vendor examples are a few hundred bytes; a Google error with
/// details a few KiB); 64 KiB keeps every real one whole while bounding what a hostile or
/// broken server can make us hold. It is also hyper's default read buffer size.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// The layer's settings, copied into each service and each response future.
///
/// Services are cloned and futures made on every call (`service.clone().oneshot(..)`), so an
/// `Arc` here would cost two atomic read-modify-writes per copy. A decoder of built-in formats
/// with default hints (every preset's) is just its `Builtins`, so those settings are plain
/// values; only a decoder with custom formats or hints is shared.
#[derive(Clone)]
pub(crate) enum Settings {
    Inline {
        builtins: Builtins,
        inspect_success: bool,
        max_body: usize,
    },
    Shared(Arc<Config>),
}

/// The settings of a decoder that cannot be inline.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    decoder: Decoder,
    max_body: usize,
    inspect_success: bool,
}

impl Settings {
    pub(crate) fn new(decoder: Decoder) -> Self {
        let inspect_success = decoder.has_in_band_errors();
        match decoder.builtins_only() {
            Some(builtins) => Settings::Inline {
                builtins,
                inspect_success,
                max_body: DEFAULT_MAX_BODY,
            },
            None => Settings::Shared(Arc::new(Config {
                decoder,
                max_body: DEFAULT_MAX_BODY,
                inspect_success,
            })),
        }
    }

    pub(crate) fn set_max_body(&mut self, bytes: usize) {
        match self {
            Settings::Inline { max_body, .. } => *max_body = bytes,
            // Builders run before the layer is shared; clone the config if it already is.
            Settings::Shared(config) => Arc::make_mut(config).max_body = bytes,
        }
    }

    pub(crate) fn set_inspect_success(&mut self, inspect: bool) {
        match self {
            Settings::Inline {
                inspect_success, ..
            } => *inspect_success = inspect,
            Settings::Shared(config) => Arc::make_mut(config).inspect_success = inspect,
        }
    }

    pub(crate) fn max_body(&self) -> usize {
        match self {
            Settings::Inline { max_body, .. } => *max_body,
            Settings::Shared(config) => config.max_body,
        }
    }

    pub(crate) fn inspect_success(&self) -> bool {
        match self {
            Settings::Inline {
                inspect_success, ..
            } => *inspect_success,
            Settings::Shared(config) => config.inspect_success,
        }
    }

    /// Runs `f` with the decoder. Rebuilding a built-in decoder allocates nothing.
    fn with_decoder<T>(&self, f: impl FnOnce(&Decoder) -> T) -> T {
        match self {
            Settings::Inline { builtins, .. } => f(&Decoder::from_builtins(*builtins)),
            Settings::Shared(config) => f(&config.decoder),
        }
    }

    /// Decodes the (possibly cut) body of a response with an error status.
    pub(crate) fn decode_error(&self, parts: &Parts, body: Bytes) -> ApiError {
        self.with_decoder(|d| {
            d.decode_error_status(parts.status, &parts.headers, body, SystemTime::now())
        })
    }

    /// The in-band error in the whole body of a success, if there is one.
    pub(crate) fn decode_in_band(&self, parts: &Parts, body: Bytes) -> Option<ApiError> {
        self.with_decoder(|d| d.decode(parts.status, &parts.headers, body))
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.with_decoder(|decoder| {
            f.debug_struct("Config")
                .field("decoder", decoder)
                .field("max_body", &self.max_body())
                .field("inspect_success", &self.inspect_success())
                .finish()
        })
    }
}
