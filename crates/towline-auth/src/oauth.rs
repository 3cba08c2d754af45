//! [`ClientCredentials`]: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4) as a
//! [`TokenSource`].

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE};
use http::{Request, Response, Uri};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use tower::{Service, ServiceExt};
use towline_core::BoxError;

use crate::token::{Token, TokenFuture, TokenSource};

/// The most of a token endpoint's answer that is read: 64 KiB.
const MAX_TOKEN_RESPONSE: usize = 64 * 1024;

/// Fetches tokens with the OAuth 2.0 client-credentials grant (RFC 6749 §4.4): a
/// form-encoded POST of `grant_type=client_credentials` (with the client id and secret in the
/// body, §2.3.1, and an optional `scope`) to the token endpoint, through any tower HTTP service
/// you give it. `expires_in` in the answer sets the token's expiry. This is the flow Attraqt
/// uses.
///
/// The client secret never appears in `Debug`; errors say what went wrong without it.
///
/// ```no_run
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use hyper_util::client::legacy::Client;
/// use hyper_util::rt::TokioExecutor;
/// use towline_auth::ClientCredentials;
///
/// let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
/// let source = ClientCredentials::new(
///     client,
///     "https://auth.example/oauth/token".parse().unwrap(),
///     "my-client",
///     "my-secret",
/// )
/// .scope("items:write");
/// # let _ = source;
/// ```
#[derive(Clone)]
pub struct ClientCredentials<S> {
    service: S,
    endpoint: Uri,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
}

impl<S> fmt::Debug for ClientCredentials<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("endpoint", &self.endpoint)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("scope", &self.scope)
            .finish()
    }
}

impl<S> ClientCredentials<S> {
    /// Posts to `endpoint` through `service` as `client_id` / `client_secret`.
    pub fn new(
        service: S,
        endpoint: Uri,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        ClientCredentials {
            service,
            endpoint,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scope: None,
        }
    }

    /// Asks for `scope` (space-separated scopes).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    fn form(&self) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        form.append_pair("client_id", &self.client_id);
        form.append_pair("client_secret", &self.client_secret);
        if let Some(scope) = &self.scope {
            form.append_pair("scope", scope);
        }
        form.finish()
    }
}

/// Why the token endpoint's answer gave no token. Never contains a secret.
#[derive(Debug)]
struct TokenEndpointError(String);

impl fmt::Display for TokenEndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token endpoint: {}", self.0)
    }
}

impl std::error::Error for TokenEndpointError {}

impl<S, B> TokenSource for ClientCredentials<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn fetch(&self) -> TokenFuture<'_> {
        let request = Request::post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::from(self.form())));
        let service = self.service.clone();
        Box::pin(async move {
            let request = request?;
            let response = service.oneshot(request).await.map_err(Into::into)?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_TOKEN_RESPONSE)
                .collect()
                .await?
                .to_bytes();
            if !status.is_success() {
                // RFC 6749 §5.2: {"error": "invalid_client", ...}; no secret in it.
                let code = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
                    .unwrap_or_default();
                return Err(Box::new(TokenEndpointError(
                    format!("{status} {code}").trim().to_owned(),
                ))
                .into());
            }
            let answer: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|_| TokenEndpointError("the answer is not JSON".into()))?;
            let access_token = answer
                .get("access_token")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| TokenEndpointError("no access_token in the answer".into()))?;
            let mut token = Token::new(access_token)?;
            if let Some(seconds) = answer.get("expires_in").and_then(expires_in) {
                token = token.expires_in(Duration::from_secs(seconds));
            }
            Ok(token)
        })
    }
}

/// `expires_in` as a number, or a number in a string (some servers send `"3600"`).
fn expires_in(value: &serde_json::Value) -> Option<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str()?.trim().parse().ok())
}
