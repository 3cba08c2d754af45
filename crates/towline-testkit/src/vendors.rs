//! Simulators of the four APIs towline was built from, faithful to their error docs: their
//! envelopes and statuses, token expiry, rate limits and quirks. Each is a [`TestServer`]
//! with stateful routes, plus controls for tests (expire tokens, trip a limit, ...).
//!
//! Time is tokio's, so tests can scale the vendors' minutes down under a paused clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::Method;
use tokio::time::Instant;

use crate::{RecordedRequest, Reply, TestServer};

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Issued tokens and their expiry.
#[derive(Default)]
struct Tokens {
    next: AtomicU64,
    valid: Mutex<HashMap<String, Option<Instant>>>,
}

impl Tokens {
    fn issue(&self, prefix: &str, lifetime: Option<Duration>) -> String {
        let n = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("{prefix}-{n}");
        let expiry = lifetime.map(|l| Instant::now() + l);
        lock(&self.valid).insert(token.clone(), expiry);
        token
    }

    /// `Ok` if `token` is valid now; `Err(true)` if it expired, `Err(false)` if unknown.
    fn check(&self, token: &str) -> Result<(), bool> {
        match lock(&self.valid).get(token) {
            Some(Some(expiry)) if Instant::now() >= *expiry => Err(true),
            Some(_) => Ok(()),
            None => Err(false),
        }
    }

    fn expire_all(&self) {
        let now = Instant::now();
        for expiry in lock(&self.valid).values_mut() {
            *expiry = Some(now);
        }
    }

    fn issued(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }
}

fn bearer(request: &RecordedRequest) -> Option<&str> {
    request.header("authorization")?.strip_prefix("Bearer ")
}

fn ixon_error(status: u16, message: &str, property: Option<&str>) -> Reply {
    let data = match property {
        Some(p) => format!(r#"{{"message":"{message}","propertyName":"{p}"}}"#),
        None => format!(r#"{{"message":"{message}"}}"#),
    };
    Reply::status(status).json(format!(
        r#"{{"type":"Error","data":[{data}],"moreAfter":null,"status":"error"}}"#
    ))
}

// ------------------------------------------------------------------------------------- IXON

/// IXON Cloud APIv2 (`/api/devices`): requires `Api-Version: 2`, `Api-Application` and
/// `Api-Company` (400 "Required header" otherwise) and a bearer token (401 "Invalid value" on
/// `Authorization` when expired or unknown; "2FA is required" when the account demands it).
/// More than `burst` requests within a second trip the rate limit: 429, and the lock stays
/// for `lock` (10 minutes at IXON; scale it down in tests).
#[derive(Clone)]
pub struct IxonSim {
    /// The server.
    pub server: Arc<TestServer>,
    tokens: Arc<Tokens>,
    state: Arc<Mutex<IxonState>>,
}

struct IxonState {
    require_2fa: bool,
    burst: usize,
    lock: Duration,
    recent: Vec<Instant>,
    locked_until: Option<Instant>,
}

impl std::fmt::Debug for IxonSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IxonSim")
            .field("server", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl IxonSim {
    /// Starts the simulator with a burst limit of `burst` requests per second and a lock of
    /// `lockout` once tripped.
    pub async fn start(burst: usize, lockout: Duration) -> Self {
        let server = Arc::new(TestServer::start().await);
        let tokens = Arc::new(Tokens::default());
        let state = Arc::new(Mutex::new(IxonState {
            require_2fa: false,
            burst,
            lock: lockout,
            recent: Vec::new(),
            locked_until: None,
        }));
        let (t, s) = (tokens.clone(), state.clone());
        server.route_fn("/api/devices", move |request| {
            for header in ["Api-Version", "Api-Application", "Api-Company"] {
                if request.header(header).is_none() {
                    return ixon_error(400, "Required header", Some(header));
                }
            }
            let mut state = lock(&s);
            let now = Instant::now();
            if state.locked_until.is_some_and(|until| now < until) {
                return ixon_error(429, "Too many requests", None);
            }
            state.recent.retain(|at| now.duration_since(*at) < Duration::from_secs(1));
            state.recent.push(now);
            if state.recent.len() > state.burst {
                state.locked_until = Some(now + state.lock);
                return ixon_error(429, "Too many requests", None);
            }
            if state.require_2fa {
                return ixon_error(401, "2FA is required", None);
            }
            match bearer(request).map(|token| t.check(token)) {
                Some(Ok(())) => Reply::ok().json(
                    r#"{"type":"Device","data":[{"publicId":"dv1","name":"Press 4"}],"moreAfter":null,"status":"success"}"#,
                ),
                _ => ixon_error(401, "Invalid value", Some("Authorization")),
            }
        });
        IxonSim {
            server,
            tokens,
            state,
        }
    }

    /// Issues a token valid until [`expire_tokens`](Self::expire_tokens).
    pub fn issue_token(&self) -> String {
        self.tokens.issue("ixon", None)
    }

    /// Makes every issued token invalid.
    pub fn expire_tokens(&self) {
        self.tokens.expire_all();
    }

    /// How many tokens were issued.
    pub fn tokens_issued(&self) -> u64 {
        self.tokens.issued()
    }

    /// Makes the account demand two-factor authentication.
    pub fn require_2fa(&self, require: bool) {
        lock(&self.state).require_2fa = require;
    }
}

// ---------------------------------------------------------------------------------- Attraqt

/// Attraqt Items API: `/oauth/token` (client credentials, `expires_in` = `token_lifetime`),
/// `/items` with a bearer token (401 `{"code":16,...}` when expired), the first `preparing`
/// requests answered 503 "API in preparation" (`{"code":14,...}`), and at most `per_second`
/// requests a second, else 429 with `Retry-After: 1`.
#[derive(Clone)]
pub struct AttraqtSim {
    /// The server.
    pub server: Arc<TestServer>,
    tokens: Arc<Tokens>,
    state: Arc<Mutex<AttraqtState>>,
}

struct AttraqtState {
    preparing: usize,
    per_second: usize,
    recent: Vec<Instant>,
}

impl std::fmt::Debug for AttraqtSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttraqtSim")
            .field("server", &self.server.addr())
            .finish_non_exhaustive()
    }
}

/// The client id and secret the Attraqt simulator accepts.
pub const ATTRAQT_CLIENT: (&str, &str) = ("items-client", "items-secret");

impl AttraqtSim {
    /// Starts the simulator.
    pub async fn start(token_lifetime: Duration, preparing: usize, per_second: usize) -> Self {
        let server = Arc::new(TestServer::start().await);
        let tokens = Arc::new(Tokens::default());
        let state = Arc::new(Mutex::new(AttraqtState {
            preparing,
            per_second,
            recent: Vec::new(),
        }));
        let t = tokens.clone();
        server.route_fn("/oauth/token", move |request| {
            let body = String::from_utf8_lossy(&request.body);
            let wanted = [
                "grant_type=client_credentials".to_owned(),
                format!("client_id={}", ATTRAQT_CLIENT.0),
                format!("client_secret={}", ATTRAQT_CLIENT.1),
            ];
            if request.method != Method::POST
                || !wanted.iter().all(|w| body.split('&').any(|p| p == w))
            {
                return Reply::status(401).json(r#"{"error":"invalid_client"}"#);
            }
            let token = t.issue("attraqt", Some(token_lifetime));
            Reply::ok().json(format!(
                r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{}}}"#,
                token_lifetime.as_secs()
            ))
        });
        let (t, s) = (tokens.clone(), state.clone());
        server.route_fn("/items", move |request| {
            let mut state = lock(&s);
            let now = Instant::now();
            state
                .recent
                .retain(|at| now.duration_since(*at) < Duration::from_secs(1));
            if state.recent.len() >= state.per_second {
                return Reply::status(429)
                    .header("retry-after", "1")
                    .json(r#"{"code":8,"message":"Too many requests","details":[]}"#);
            }
            state.recent.push(now);
            if bearer(request).map(|token| t.check(token)) != Some(Ok(())) {
                return Reply::status(401)
                    .json(r#"{"code":16,"message":"Unauthenticated","details":[]}"#);
            }
            if state.preparing > 0 {
                state.preparing -= 1;
                return Reply::status(503)
                    .json(r#"{"code":14,"message":"API in preparation","details":[]}"#);
            }
            Reply::ok().json(r#"{"items":[{"id":"sku-1"}]}"#)
        });
        AttraqtSim {
            server,
            tokens,
            state,
        }
    }

    /// How many tokens the token endpoint issued.
    pub fn tokens_issued(&self) -> u64 {
        self.tokens.issued()
    }

    /// Answers the next `n` item requests with 503 "in preparation".
    pub fn prepare(&self, n: usize) {
        lock(&self.state).preparing = n;
    }
}

// ----------------------------------------------------------------------------------- Open2b

/// Open2b 7.8 (`/api/v7.8/<method>`): POST only (405 otherwise), the key in `X-Key` (403
/// "Forbidden, missing key" / "malformed key", not JSON), at most `quota` calls per `window`
/// per key (then 503 with `X-Wait-Seconds` until the window ends), and errors inside HTTP 200:
/// a call whose JSON body lacks `"name"` gets `{"status":"error","error":{"field":"name",
/// "type":"Missing",...}}`. `/old` answers 301.
#[derive(Clone)]
pub struct Open2bSim {
    /// The server.
    pub server: Arc<TestServer>,
    state: Arc<Mutex<Open2bState>>,
}

struct Open2bState {
    quota: usize,
    window: Duration,
    calls: HashMap<String, Vec<Instant>>,
    processed: usize,
}

impl std::fmt::Debug for Open2bSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Open2bSim")
            .field("server", &self.server.addr())
            .finish_non_exhaustive()
    }
}

/// The key the Open2b simulator accepts.
pub const OPEN2B_KEY: &str = "open2b-key-1";

impl Open2bSim {
    /// Starts the simulator.
    pub async fn start(quota: usize, window: Duration) -> Self {
        let server = Arc::new(TestServer::start().await);
        let state = Arc::new(Mutex::new(Open2bState {
            quota,
            window,
            calls: HashMap::new(),
            processed: 0,
        }));
        let s = state.clone();
        server.route_fn("/api/v7.8/commerce.products.add", move |request| {
            if request.method != Method::POST {
                return Reply::status(405).body("Method Not Allowed");
            }
            let key = match request.header("x-key") {
                None => return Reply::status(403).body("Forbidden, missing key"),
                Some(key) if key != OPEN2B_KEY => return Reply::status(403).body("Forbidden, malformed key"),
                Some(key) => key.to_owned(),
            };
            let mut state = lock(&s);
            let now = Instant::now();
            let window = state.window;
            let quota = state.quota;
            let calls = state.calls.entry(key).or_default();
            calls.retain(|at| now.duration_since(*at) < window);
            if calls.len() >= quota {
                // Whole seconds, rounded up: waiting that long is always enough.
                let wait = window.saturating_sub(now.duration_since(calls[0]));
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Reply::status(503)
                    .header("x-wait-seconds", seconds.max(1).to_string())
                    .body("Service Unavailable");
            }
            calls.push(now);
            let body: serde_like::Body = serde_like::parse(&request.body);
            if !body.has_name {
                return Reply::ok().json(
                    r#"{"status":"error","error":{"field":"name","type":"Missing","description":"name is required"}}"#,
                );
            }
            state.processed += 1;
            Reply::ok().json(r#"{"status":"ok","response":{"id":1}}"#)
        });
        server.route(
            "/old",
            Reply::redirect(301, "/api/v7.8/commerce.products.add"),
        );
        Open2bSim { server, state }
    }

    /// How many calls were processed (not refused, not in-band errors).
    pub fn processed(&self) -> usize {
        lock(&self.state).processed
    }
}

/// Just enough JSON reading for the simulator: whether the body has a `"name"` key.
mod serde_like {
    pub(super) struct Body {
        pub(super) has_name: bool,
    }

    pub(super) fn parse(body: &[u8]) -> Body {
        let text = String::from_utf8_lossy(body);
        Body {
            has_name: text.contains("\"name\""),
        }
    }
}

// -------------------------------------------------------------------------------- Telecom X

/// Telecom X (`/login`, `/mvno/accounts/<id>`): sessions from `/login` last `session`
/// (15 minutes at Telecom X); account requests need `Authorization: Bearer <session>` — none
/// gives 401 `credentials_invalid`, an expired one 401 `expired`, an unknown one 401
/// `invalid_token`; an unknown account gives 404 `mvnoAccount`.
#[derive(Clone)]
pub struct TelecomXSim {
    /// The server.
    pub server: Arc<TestServer>,
    tokens: Arc<Tokens>,
}

impl std::fmt::Debug for TelecomXSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelecomXSim")
            .field("server", &self.server.addr())
            .finish_non_exhaustive()
    }
}

fn telecom_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::status(status).json(format!(
        r#"{{"error":{{"code":"{code}","status":{status},"message":"{message}"}}}}"#
    ))
}

impl TelecomXSim {
    /// Starts the simulator with sessions lasting `session`.
    pub async fn start(session: Duration) -> Self {
        let server = Arc::new(TestServer::start().await);
        let tokens = Arc::new(Tokens::default());
        let t = tokens.clone();
        server.route_fn("/login", move |_request| {
            let token = t.issue("tx", Some(session));
            Reply::ok().json(format!(
                r#"{{"token":"{token}","expires_in":{}}}"#,
                session.as_secs()
            ))
        });
        let t = tokens.clone();
        for account in ["/mvno/accounts/42", "/mvno/accounts/7"] {
            let t = t.clone();
            let known = account.ends_with("42");
            server.route_fn(account, move |request| {
                let Some(token) = bearer(request) else {
                    return telecom_error(
                        401,
                        "credentials_invalid",
                        "Authorization required, please login",
                    );
                };
                match t.check(token) {
                    Err(true) => telecom_error(401, "expired", "Session has expired, please login"),
                    Err(false) => telecom_error(401, "invalid_token", "Undecipherable"),
                    Ok(()) if known => Reply::ok().json(r#"{"id":42,"name":"ACME Mobile"}"#),
                    Ok(()) => telecom_error(404, "mvnoAccount", "MVNO account not found"),
                }
            });
        }
        TelecomXSim { server, tokens }
    }

    /// How many sessions were opened.
    pub fn sessions_opened(&self) -> u64 {
        self.tokens.issued()
    }
}
