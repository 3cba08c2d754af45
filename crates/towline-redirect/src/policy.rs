//! Which responses are redirects, and which of them a caller gets back as responses.

use http::StatusCode;
use towline_core::Redirected;

/// Whether `status` is a redirect this layer stops: 300, 301, 302, 303, 307 or 308.
///
/// 304 Not Modified is not one (it answers a conditional request from the cache), nor are the
/// unused 305 and 306.
///
/// ```
/// use http::StatusCode;
/// use towline_redirect::is_redirect;
///
/// assert!(is_redirect(StatusCode::TEMPORARY_REDIRECT));
/// assert!(!is_redirect(StatusCode::NOT_MODIFIED));
/// ```
pub fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 300..=303 | 307 | 308)
}

/// Decides which redirects are handed back to the caller as responses instead of errors.
///
/// Implemented for [`DenyAll`] (the default) and for any `Fn(&Redirected) -> bool + Clone`.
/// Either way the redirect is never followed. See the crate docs for an example.
pub trait AllowRedirect {
    /// `true` to return this redirect as an `Ok` response, `false` to make it an error.
    fn allow(&self, redirect: &Redirected) -> bool;
}

/// The default [`AllowRedirect`]: every redirect is an error.
#[derive(Clone, Copy, Debug, Default)]
pub struct DenyAll;

impl AllowRedirect for DenyAll {
    fn allow(&self, _: &Redirected) -> bool {
        false
    }
}

impl<F> AllowRedirect for F
where
    F: Fn(&Redirected) -> bool,
{
    fn allow(&self, redirect: &Redirected) -> bool {
        self(redirect)
    }
}
