//! [`Token`], [`TokenSource`] and the built-in sources.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use towline_core::BoxError;

/// A secret credential (a bearer token, an API key) with an optional expiry.
///
/// The secret never appears in `Debug` or `Display`, and it is checked when made: a value with
/// a newline or another byte that cannot stand in an HTTP header is an [`InvalidToken`] error,
/// not a panic or a header injection later.
///
/// ```
/// use std::time::Duration;
/// use towline_auth::Token;
///
/// let token = Token::new("s3cr3t").unwrap().expires_in(Duration::from_secs(900));
/// assert_eq!(format!("{token:?}"), "Token { secret: \"[redacted]\", expires_at: Some(..) }");
/// assert!(Token::new("abc\r\nX-Injected: 1").is_err());
/// ```
#[derive(Clone)]
pub struct Token {
    secret: Arc<str>,
    expires_at: Option<Instant>,
}

/// A token value that cannot be sent in an HTTP header.
///
/// ```
/// use towline_auth::{InvalidToken, Token};
///
/// assert_eq!(Token::new("").unwrap_err(), InvalidToken::Empty);
/// assert_eq!(Token::new("a\nb").unwrap_err(), InvalidToken::NotVisibleAscii);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidToken {
    /// The token is empty.
    Empty,
    /// The token contains a byte outside visible ASCII (a newline, a control character, a
    /// non-ASCII byte, a space).
    NotVisibleAscii,
}

impl fmt::Display for InvalidToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token itself.
        f.write_str(match self {
            InvalidToken::Empty => "the token is empty",
            InvalidToken::NotVisibleAscii => {
                "the token contains a byte that cannot be sent in a header"
            }
        })
    }
}

impl std::error::Error for InvalidToken {}

impl Token {
    /// A token with the secret `secret`, which must be visible ASCII (RFC 6750's `b64token`
    /// and API keys are).
    pub fn new(secret: impl Into<String>) -> Result<Self, InvalidToken> {
        let secret: String = secret.into();
        if secret.is_empty() {
            return Err(InvalidToken::Empty);
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(InvalidToken::NotVisibleAscii);
        }
        Ok(Token {
            secret: secret.into(),
            expires_at: None,
        })
    }

    /// The token expires at `instant`.
    pub fn expires_at(mut self, instant: Instant) -> Self {
        self.expires_at = Some(instant);
        self
    }

    /// The token expires `lifetime` from now (OAuth 2.0's `expires_in`).
    pub fn expires_in(self, lifetime: Duration) -> Self {
        let at = towline_core::Deadline::after(lifetime).instant();
        self.expires_at(at)
    }

    /// When the token expires, if known.
    pub fn expiry(&self) -> Option<Instant> {
        self.expires_at
    }

    /// The secret. Handle with care: this is the one place it is visible.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("secret", &"[redacted]")
            .field("expires_at", &self.expires_at.map(|_| Elided))
            .finish()
    }
}

/// Prints `..` for a value not worth showing.
struct Elided;

impl fmt::Debug for Elided {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("..")
    }
}

/// A future that yields a token.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Token, BoxError>> + Send + 'a>>;

/// Where tokens come from. Asked only when the layer has no valid token: once at the start,
/// before one expires, and after a refreshable 401; never twice at once (single-flight).
///
/// The fetch runs as a tokio task of its own, bounded by the layer's
/// [`fetch_timeout`](crate::TokenRefreshBuilder::fetch_timeout): it is not cancelled when
/// the call that needed it gives up, it sees none of that call's context (deadline, tracing
/// span), and every call waiting for it gets its outcome.
///
/// Built in: [`StaticToken`], any async closure `Fn() -> impl Future<Output = Result<Token, E>>`
/// via [`from_fn`], and [`ClientCredentials`](crate::ClientCredentials) (OAuth 2.0).
pub trait TokenSource: Send + Sync + 'static {
    /// Fetches a new token.
    fn fetch(&self) -> TokenFuture<'_>;

    /// The server refused `token` (a refreshable 401): the layer drops it and fetches again.
    /// A source that caches tokens itself (one shared by many replicas, say) forgets it here,
    /// if it still holds that very token, so that the next fetch does not return it again.
    /// Called under the layer's lock, before the fetch: must be quick and must not block.
    /// Does nothing by default.
    ///
    /// ```
    /// use towline_auth::{StaticToken, Token, TokenSource};
    ///
    /// let source = StaticToken::new(Token::new("key-123").unwrap());
    /// source.rejected(&Token::new("key-123").unwrap());
    /// ```
    fn rejected(&self, token: &Token) {
        let _ = token;
    }
}

/// A token that never changes: an API key (Open2b's `X-Key`), a long-lived bearer token.
///
/// ```
/// use towline_auth::{StaticToken, Token, TokenSource};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let source = StaticToken::new(Token::new("key-123").unwrap());
/// assert_eq!(source.fetch().await.unwrap().secret(), "key-123");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct StaticToken {
    token: Token,
}

impl StaticToken {
    /// Always `token`.
    pub fn new(token: Token) -> Self {
        StaticToken { token }
    }
}

impl TokenSource for StaticToken {
    fn fetch(&self) -> TokenFuture<'_> {
        let token = self.token.clone();
        Box::pin(async move { Ok(token) })
    }
}

/// A [`TokenSource`] from an async closure.
///
/// ```
/// use std::time::Duration;
/// use towline_auth::{Token, TokenSource, from_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let source = from_fn(|| async {
///     // e.g. log in, read a vault, ...
///     Token::new("fresh").map(|t| t.expires_in(Duration::from_secs(900)))
/// });
/// assert_eq!(source.fetch().await.unwrap().secret(), "fresh");
/// # }
/// ```
pub fn from_fn<F, Fut, E>(fetch: F) -> FnSource<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Token, E>> + Send + 'static,
    E: Into<BoxError>,
{
    FnSource(fetch)
}

/// The [`TokenSource`] made by [`from_fn`].
#[derive(Clone)]
pub struct FnSource<F>(F);

impl<F> fmt::Debug for FnSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnSource")
    }
}

impl<F, Fut, E> TokenSource for FnSource<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Token, E>> + Send + 'static,
    E: Into<BoxError>,
{
    fn fetch(&self) -> TokenFuture<'_> {
        let future = (self.0)();
        Box::pin(async move { future.await.map_err(Into::into) })
    }
}
