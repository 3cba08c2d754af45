//! The names towline's telemetry uses: spans, their attributes, the decision events and the
//! metrics. Attribute names are OpenTelemetry's semantic conventions where one exists (HTTP
//! client spans and metrics, stable since semconv 1.23); the rest are in the `towline.`
//! namespace.
//!
//! ```
//! use towline_telemetry::names;
//!
//! assert_eq!(names::CLIENT_REQUEST_DURATION, "http.client.request.duration");
//! assert_eq!(names::RESEND_COUNT, "http.request.resend_count");
//! ```

/// The `tracing` name of the span around one logical call (all its attempts and waits).
pub const CALL_SPAN: &str = "towline.call";
/// The `tracing` name of the client span around one attempt: one request on the wire.
/// Exported under the request's method (`otel.name`), as the conventions name client spans.
pub const ATTEMPT_SPAN: &str = "towline.attempt";

/// The request method, or `_OTHER` for a method the conventions do not list.
pub const METHOD: &str = "http.request.method";
/// The method as sent, only when [`METHOD`] is `_OTHER`.
pub const METHOD_ORIGINAL: &str = "http.request.method_original";
/// The host the request is sent to.
pub const SERVER_ADDRESS: &str = "server.address";
/// The port the request is sent to (the scheme's default when the URL has none).
pub const SERVER_PORT: &str = "server.port";
/// The URL with credentials and every query value replaced by `REDACTED`. Spans only.
pub const URL_FULL: &str = "url.full";
/// How many times this request was sent before this attempt: absent on the first attempt,
/// `1` on the second (the conventions' "if and only if the request was resent").
pub const RESEND_COUNT: &str = "http.request.resend_count";
/// The response status.
pub const STATUS_CODE: &str = "http.response.status_code";
/// Why the request failed: the status (`"503"`) for a 4xx or 5xx response, otherwise the
/// error's kind (`"timeout"`, `"network"`, `"cancelled"`, ...). Absent on success.
pub const ERROR_TYPE: &str = "error.type";
/// On the call span: how many requests the call sent.
pub const ATTEMPTS: &str = "towline.attempts";

/// The event of a retry decision (level INFO, target `towline::retry`).
pub const RETRY_EVENT: &str = "towline.retry";
/// Why a request is sent again: the [`ERROR_TYPE`] of the attempt before, or
/// `"credentials_refreshed"`.
pub const RETRY_REASON: &str = "towline.retry.reason";
/// How long the retry waits before it is sent, in milliseconds.
pub const RETRY_DELAY_MS: &str = "towline.retry.delay_ms";
/// The event of a retry the retry budget refused (level INFO, target `towline::retry`).
pub const BUDGET_REFUSED_EVENT: &str = "towline.retry.budget_refused";
/// The event of a call held at a rate-limit gate or for a quota slot (level INFO, target
/// `towline::ratelimit`).
pub const GATE_WAIT_EVENT: &str = "towline.gate.wait";
/// How long the call waits at the gate, in milliseconds.
pub const GATE_WAIT_MS: &str = "towline.gate.wait_ms";
/// Why it waits: `"closed"` (the server asked for a wait) or `"quota"` (pacing).
pub const GATE_REASON: &str = "towline.gate.reason";
/// The event of a token fetch ending, one per fetch however many calls wait for it (level
/// INFO, target `towline::auth`). Never carries the token. In the span of the call that
/// waits for the fetch; a background refresh has no parent span.
pub const AUTH_REFRESH_EVENT: &str = "towline.auth.refresh";
/// Why the token is fetched: `"initial"` (none yet), `"expiring"` (inside its refresh margin,
/// fetched in the background while calls still use it), `"expired"` (calls wait for the new
/// one) or `"rejected"` (a 401 refused it).
pub const AUTH_REFRESH_REASON: &str = "towline.auth.reason";
/// How long the fetch took, in milliseconds.
pub const AUTH_REFRESH_DURATION_MS: &str = "towline.auth.duration_ms";
/// How the fetch ended: `"ok"`, or the error's kind (`"timeout"`, `"api"`, `"other"`, ...).
pub const AUTH_REFRESH_OUTCOME: &str = "towline.auth.outcome";
/// The event of a circuit's transition, one per transition (target `towline::breaker`; level
/// WARN when it opens, INFO otherwise).
pub const CIRCUIT_STATE_EVENT: &str = "towline.circuit.state";
/// The circuit's key: the request's authority (`api.example`, `api.example:8443`), or
/// `"<redacted>"` for a `key_by` key (it may be a secret).
pub const CIRCUIT_KEY: &str = "towline.circuit.key";
/// The state it leaves: `"closed"`, `"open"`, `"half_open"` or `"forced_open"`.
pub const CIRCUIT_FROM: &str = "towline.circuit.from";
/// The state it enters, named as in [`CIRCUIT_FROM`].
pub const CIRCUIT_TO: &str = "towline.circuit.to";
/// When it opens: how long calls fail fast before a probe goes, in milliseconds.
pub const CIRCUIT_BREAK_MS: &str = "towline.circuit.break_ms";

/// The event of a hedge going out: a second copy of an idempotent request whose first
/// attempt is slow (level INFO, target `towline::retry`). Carries [`METHOD`] and
/// [`RESEND_COUNT`] (the hedge's own).
pub const HEDGE_EVENT: &str = "towline.hedge";
/// How long the first attempt had run when the hedge went out, in milliseconds.
pub const HEDGE_DELAY_MS: &str = "towline.hedge.delay_ms";

/// Histogram of each attempt's duration in seconds, by the conventions' attributes.
pub const CLIENT_REQUEST_DURATION: &str = "http.client.request.duration";
/// Histogram of each whole call's duration in seconds (attempts, waits and refreshes).
pub const CALL_DURATION: &str = "towline.call.duration";
/// Counter of retries, by [`RETRY_REASON`].
pub const RETRIES: &str = "towline.retries";
/// Counter of retries the budget refused.
pub const BUDGET_REFUSALS: &str = "towline.retry.budget_refusals";
/// Counter of calls held at a gate, by [`GATE_REASON`].
pub const GATE_WAITS: &str = "towline.gate.waits";
/// Counter of token fetches, by [`AUTH_REFRESH_REASON`] and [`AUTH_REFRESH_OUTCOME`].
pub const AUTH_REFRESHES: &str = "towline.auth.refreshes";
/// Counter of circuit transitions, by [`CIRCUIT_FROM`] and [`CIRCUIT_TO`] (not by key: keys
/// are unbounded).
pub const CIRCUIT_TRANSITIONS: &str = "towline.circuit.transitions";
/// Counter of hedges sent.
pub const HEDGES: &str = "towline.hedges";
