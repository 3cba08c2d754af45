//! [`AuthError`] and [`AuthReason`]: why a server refused our credentials.

use std::error::Error as StdError;
use std::fmt;

use crate::BoxError;

/// Why a server refused our credentials.
///
/// Only [`Expired`](AuthReason::Expired) and [`InvalidToken`](AuthReason::InvalidToken) are
/// [refreshable](AuthReason::is_refreshable): a new token can fix them. The others need a
/// person (2FA, SSO, a role) or a fix in the code (a malformed header), so retrying with a
/// fresh token would only loop.
///
/// ```
/// use towline_core::AuthReason;
///
/// assert!(AuthReason::Expired.is_refreshable());
/// assert!(!AuthReason::TwoFactorRequired.is_refreshable());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthReason {
    /// The token has expired (Telecom X `expired`).
    Expired,
    /// The token is not (or no longer) accepted (IXON "Invalid value" on `Authorization`,
    /// Telecom X `invalid_token`).
    InvalidToken,
    /// The credentials are wrong or missing (Telecom X `credentials_invalid`).
    CredentialsInvalid,
    /// The account needs a one-time password (IXON "2FA is required").
    TwoFactorRequired,
    /// The account must log in through single sign-on (IXON "SSO is required").
    SsoRequired,
    /// The SSO code or state was rejected (IXON `ssoAuthentication.code` / `.state`).
    SsoInvalid,
    /// The token is shorter than the server allows (IXON "Value is too short").
    TokenTooShort,
    /// The token is longer than the server allows (IXON "Value is too long").
    TokenTooLong,
    /// The token's characters do not match what the server expects (IXON "Value does not match
    /// regex expression").
    TokenMalformed,
    /// The `Authorization` header is not `<scheme> <credentials>` (IXON "must start with a
    /// type", Telecom X `format_error`).
    MalformedHeader,
    /// The client's IP address is not allowed for this token (Telecom X).
    IpNotAllowed,
    /// Our token source failed to produce a token (the token endpoint is down, the
    /// credentials were refused); the next call asks it again.
    SourceFailed,
    /// The server gave no reason we recognise.
    Unknown,
}

impl AuthReason {
    /// Whether fetching a new token and replaying the request can fix this.
    pub fn is_refreshable(self) -> bool {
        matches!(self, AuthReason::Expired | AuthReason::InvalidToken)
    }
}

impl fmt::Display for AuthReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthReason::Expired => "token expired",
            AuthReason::InvalidToken => "token invalid",
            AuthReason::CredentialsInvalid => "credentials invalid",
            AuthReason::TwoFactorRequired => "two-factor authentication required",
            AuthReason::SsoRequired => "single sign-on required",
            AuthReason::SsoInvalid => "single sign-on code or state invalid",
            AuthReason::TokenTooShort => "token too short",
            AuthReason::TokenTooLong => "token too long",
            AuthReason::TokenMalformed => "token malformed",
            AuthReason::MalformedHeader => "authorization header malformed",
            AuthReason::IpNotAllowed => "IP address not allowed",
            AuthReason::SourceFailed => "the token source failed",
            AuthReason::Unknown => "unauthorized",
        })
    }
}

/// Authentication failed and the auth layer could not fix it.
///
/// ```
/// use towline_core::{AuthError, AuthReason};
///
/// let err = AuthError::new(AuthReason::SsoRequired);
/// assert_eq!(err.reason(), AuthReason::SsoRequired);
/// assert_eq!(err.to_string(), "authentication failed: single sign-on required");
/// ```
#[derive(Debug)]
pub struct AuthError {
    reason: AuthReason,
    source: Option<BoxError>,
}

impl AuthError {
    /// Authentication failed for `reason`.
    pub fn new(reason: AuthReason) -> Self {
        AuthError {
            reason,
            source: None,
        }
    }

    /// Keeps the cause (the decoded 401, or the token source's error) as the source.
    pub fn with_source(mut self, source: BoxError) -> Self {
        self.source = Some(source);
        self
    }

    /// Why authentication failed.
    pub fn reason(&self) -> AuthReason {
        self.reason
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "authentication failed: {}", self.reason)
    }
}

impl StdError for AuthError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|e| e as _)
    }
}
