//! Presets for the four APIs towline was built from: each a [`Pipeline`] with the vendor's
//! error format, headers, auth flow and limits, from the vendor's own documentation.
//!
//! | vendor | errors | auth | limits and quirks | circuit breaker |
//! |---|---|---|---|---|
//! | IXON Cloud APIv2 | IXON envelope; 2FA/SSO are not refreshable | bearer token; `Api-Version: 2`, `Api-Application`, `Api-Company` | 429 on bursts, a lock that stays 10 minutes: fails fast with the instant | standard, and 5 failures in a row ("a repetitive pattern ... a chronic problem") |
//! | Attraqt Items API | `{"code","message","details"}` | OAuth 2.0 client credentials; refresh on 401 | 429 + `Retry-After`; 5xx "in preparation": retried with backoff | standard: 5xx are normal only "limited to a very small percentage" |
//! | Open2b 7.8 | in-band errors in HTTP 200 | the key in `X-Key` | POST only; 1000 calls per 5 minutes per key; 503 + `X-Wait-Seconds`; never follow 3xx | standard, and 5 failures in a row (the quota keeps a client near the minimum throughput) |
//! | Telecom X | `{"error":{"code","status",...}}` | bearer session token, 15 minutes | 401 `expired` refreshes; `credentials_invalid` does not | standard |
//!
//! "Standard" is the `Pipeline`'s: opens at 10 % failures over 30 s once 100 calls were seen;
//! in-band errors, 4xx and waits the server asked for are not failures.
//!
//! The rate-limit gate is shared widely: one 429 or 503 with a wait hint holds every request
//! with the same key until the server's time, whatever the path. IXON, Attraqt and Telecom X
//! keep the [`Pipeline`]'s key, the authority (`host:port`): IXON's burst lock or Attraqt's
//! `Retry-After` closes the gate for the whole host. Open2b's is the `X-Key` (its quota is per
//! key): a 503 + `X-Wait-Seconds` holds every request made with that key.

use std::time::Duration;

use http::{HeaderName, HeaderValue};
use towline_auth::{Token, TokenRefreshLayer, TokenSource};
use towline_breaker::{CircuitBreakerLayer, Settings};
use towline_envelope::{Decoder, ErrorBodyLayer, Format};
use towline_ratelimit::{Quota, RateLimitLayer};

use crate::Pipeline;

/// A vendor setting that cannot be sent as a header (a newline in an id, say).
///
/// ```
/// use towline::vendors::{InvalidSetting, ixon};
/// use towline::{StaticToken, Token, TokenRefreshLayer};
///
/// let auth = TokenRefreshLayer::new(StaticToken::new(Token::new("t").unwrap()));
/// let err = ixon("app\nid", "company", auth).unwrap_err();
/// assert_eq!(err, InvalidSetting("Api-Application"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidSetting(pub &'static str);

impl std::fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the {} value cannot be sent as a header", self.0)
    }
}

impl std::error::Error for InvalidSetting {}

fn header_value(value: &str, name: &'static str) -> Result<HeaderValue, InvalidSetting> {
    HeaderValue::from_str(value).map_err(|_| InvalidSetting(name))
}

/// IXON Cloud APIv2: `Api-Version: 2`, your `Api-Application` and `Api-Company` ids on every
/// request, a bearer token from `auth`, the IXON error envelope decoded (2FA and SSO are auth
/// errors no refresh fixes; "Invalid value" on `Authorization` refreshes).
///
/// See the module docs for the whole table.
pub fn ixon(
    application: &str,
    company: &str,
    auth: TokenRefreshLayer,
) -> Result<Pipeline, InvalidSetting> {
    Ok(Pipeline::new()
        .default_header(
            HeaderName::from_static("api-version"),
            HeaderValue::from_static("2"),
        )
        .default_header(
            HeaderName::from_static("api-application"),
            header_value(application, "Api-Application")?,
        )
        .default_header(
            HeaderName::from_static("api-company"),
            header_value(company, "Api-Company")?,
        )
        .error_body(ErrorBodyLayer::with_decoder(Decoder::only(Format::Ixon)))
        .circuit_breaker(also_in_a_row(5))
        .auth(auth))
}

/// The standard circuit breaker (10 % failures over 30 s, at least 100 calls), which also
/// opens after `failures` in a row: for APIs whose docs call a run of failures chronic, or
/// whose quota keeps a client below the minimum throughput.
fn also_in_a_row(failures: u32) -> CircuitBreakerLayer {
    CircuitBreakerLayer::with_settings(Settings::new().consecutive_failures(failures))
        .expect("the standard settings with a run of failures are valid")
}

/// Attraqt Items API: tokens from the OAuth 2.0 client-credentials grant (pass a
/// [`ClientCredentials`](crate::ClientCredentials) source), reused until they expire and
/// refreshed on 401; 429 honours `Retry-After`; 5xx retried with backoff ("normal at low
/// rates"); 403 never retried.
pub fn attraqt(tokens: impl TokenSource) -> Pipeline {
    Pipeline::new()
        .error_body(ErrorBodyLayer::with_decoder(Decoder::only(Format::Attraqt)))
        .auth(TokenRefreshLayer::new(tokens))
}

/// Open2b 7.8: the key in `X-Key` (sensitive), errors inside HTTP 200 decoded (success
/// bodies inspected), calls paced to 1000 per 5 minutes per key, a 503 with `X-Wait-Seconds`
/// holding every call on the key. Open2b takes POST only; a POST is retried only when the
/// server says it did not process it (503 with a wait, 429) — never after a 500.
pub fn open2b(key: Token) -> Pipeline {
    let key_header = HeaderName::from_static("x-key");
    // The quota belongs to the key. The rate-limit layer sits above the one that attaches
    // it, so the key is named here, by a fingerprint: quota keys are listed by the gates
    // handle and may be logged, and the key is a secret.
    let quota_key = key_fingerprint(&key);
    let auth = TokenRefreshLayer::builder(towline_auth::StaticToken::new(key))
        .header(key_header.clone())
        .no_scheme()
        .build();
    let by_key = move |_: &http::request::Parts| Some(quota_key.clone());
    Pipeline::new()
        .error_body(ErrorBodyLayer::with_decoder(Decoder::only(Format::Open2b)))
        .circuit_breaker(also_in_a_row(5))
        .rate_limit(
            RateLimitLayer::new()
                .quota(Quota::new(1000, Duration::from_secs(300)))
                .key_by(by_key),
        )
        .auth(auth)
        .sensitive_header(key_header)
}

/// A name for an API key that does not reveal it: `open2b-key-` and 64 bits of a hash of it.
fn key_fingerprint(key: &Token) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.secret().hash(&mut hasher);
    format!("open2b-key-{:016x}", hasher.finish())
}

/// Telecom X: a bearer session token (sessions last 15 minutes; refreshed before expiry and
/// on 401 `expired` / `invalid_token`; `credentials_invalid` and `format_error` are not
/// refreshable), the Telecom X error format decoded.
pub fn telecom_x(sessions: impl TokenSource) -> Pipeline {
    Pipeline::new()
        .error_body(ErrorBodyLayer::with_decoder(Decoder::only(
            Format::TelecomX,
        )))
        .auth(TokenRefreshLayer::new(sessions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open2b_quota_is_keyed_by_the_key_without_revealing_it() {
        let one = key_fingerprint(&Token::new("secret-key-1").unwrap());
        let two = key_fingerprint(&Token::new("secret-key-2").unwrap());
        assert_ne!(one, two, "each key has its own quota");
        assert_eq!(one, key_fingerprint(&Token::new("secret-key-1").unwrap()));
        assert!(!one.contains("secret"));
    }
}
