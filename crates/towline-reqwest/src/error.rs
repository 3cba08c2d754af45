//! reqwest's errors as errors [`towline_core::classify`] sorts correctly.

use std::io;

use towline_core::BoxError;

/// Boxes a reqwest error so that `classify` reads it as it reads hyper-util's.
///
/// - A connect error (refused, DNS, a connect timeout) is kept as it is: its chain holds
///   hyper-util's connect error, which `classify` reads as certainly not sent. This comes first
///   because a connect timeout is also a timeout, and "never sent" is what matters for a retry.
/// - Any other timeout (reqwest's total and read timeouts are private types `classify` cannot
///   name) is wrapped in an `io::Error` of kind `TimedOut`, which `classify` reads as `Timeout`;
///   the reqwest error stays inside it (`Error::find::<reqwest::Error>()` reaches it).
/// - Everything else is kept: its chain holds hyper's or hyper-util's error, or the request
///   body's own error, which `classify` reads.
pub(crate) fn into_box_error(error: reqwest::Error) -> BoxError {
    if !error.is_connect() && error.is_timeout() {
        Box::new(io::Error::new(io::ErrorKind::TimedOut, error))
    } else {
        Box::new(error)
    }
}
