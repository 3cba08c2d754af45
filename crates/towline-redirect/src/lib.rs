//! `NoRedirectLayer`: every redirect (300, 301, 302, 303, 307, 308) becomes an `Err` carrying
//! [`towline_core::Redirected`], never followed, so credentials never travel to another origin.
//! 304 Not Modified is not a redirect and passes through.
//!
//! **Status:** not built yet (issue 4). The typed error it will return,
//! [`towline_core::Redirected`], already lives in `towline-core` so that
//! [`towline_core::classify`] recognises it.
