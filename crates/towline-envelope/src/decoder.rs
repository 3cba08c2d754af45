//! [`Decoder`]: which formats to try, and how a response becomes an [`ApiError`].

use std::fmt;
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode};
use towline_core::{ApiError, ApiFormat, HintReader};

use crate::Format;
use crate::custom::ErrorFormat;
use crate::json::{self, Json};
use crate::{formats, generic, public};

/// Which formats to try.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtins {
    /// Every built-in format, in [`Format::ALL`] order, plus content-type hints.
    Detect,
    /// Only `Format::ALL[i]`: an index, not a `Format`, which (for its `Custom(&str)`) is
    /// many times larger, and the layer copies these settings into every response future.
    Only(u8),
    /// None (custom formats only).
    Nothing,
}

impl fmt::Debug for Builtins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Builtins::Detect => f.write_str("Detect"),
            Builtins::Only(i) => f
                .debug_tuple("Only")
                .field(&Format::ALL[usize::from(*i)])
                .finish(),
            Builtins::Nothing => f.write_str("Nothing"),
        }
    }
}

impl Builtins {
    /// The one format of [`Only`](Builtins::Only).
    fn only(self) -> Option<Format> {
        match self {
            Builtins::Only(i) => Some(Format::ALL[usize::from(i)]),
            Builtins::Detect | Builtins::Nothing => None,
        }
    }
}

/// Decodes response bodies into [`ApiError`]s.
///
/// [`Decoder::new`] auto-detects every built-in [`Format`]: the content type decides first
/// (`application/problem+json`, `application/vnd.api+json`), then the body's shape, trying
/// the most specific formats first. [`Decoder::only`] skips detection. Formats added with
/// [`with_format`](Decoder::with_format) are tried before the built-ins.
///
/// Every decoded error also gets the retry hint of the response headers (see
/// [`HintReader`]), or of the body (Google's `RetryInfo`).
///
/// Cloning is cheap: custom formats are shared.
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use towline_core::{ApiErrorKind, ApiFormat, AuthReason, Target};
/// use towline_envelope::Decoder;
///
/// // IXON's answer to an expired bearer token.
/// let body = br#"{"type":"Error","data":[{"message":"Invalid value","propertyName":"Authorization"}],"moreAfter":null,"status":"error"}"#;
/// let err = Decoder::new()
///     .decode(StatusCode::UNAUTHORIZED, &HeaderMap::new(), &body[..])
///     .unwrap();
/// assert_eq!(err.format, ApiFormat::Ixon);
/// assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::InvalidToken));
/// assert_eq!(err.target, Some(Target::Header("Authorization".into())));
/// assert!(err.kind == ApiErrorKind::Auth(AuthReason::InvalidToken) && AuthReason::InvalidToken.is_refreshable());
/// ```
#[derive(Clone)]
pub struct Decoder {
    builtins: Builtins,
    custom: Vec<Arc<dyn ErrorFormat>>,
    /// `None`: the default reader, shared. A decoder of built-in formats with default hints is
    /// then all in `builtins`, which lets the layer carry it inline instead of in an `Arc`.
    hints: Option<HintReader>,
}

/// The most nested errors a decoded [`ApiError`] keeps in each list of
/// [`details`](ApiError::details); how many more the body listed is in
/// [`details_omitted`](ApiError::details_omitted), and their text is still in the body.
///
/// ```
/// use http::{HeaderMap, StatusCode};
///
/// let items = vec![r#"{"message":"Invalid value","propertyName":"name"}"#; 1_000].join(",");
/// let body = format!(r#"{{"type":"Error","data":[{items}],"status":"error"}}"#);
/// let err = towline_envelope::decode(StatusCode::BAD_REQUEST, &HeaderMap::new(), body).unwrap();
/// assert_eq!(err.details.len(), towline_envelope::MAX_DETAILS);
/// assert_eq!(err.details_omitted, 900);
/// assert!(err.to_string().ends_with("(+1000 more)"));
/// ```
pub const MAX_DETAILS: usize = 100;

/// Keeps at most [`MAX_DETAILS`] details in each list of `err`'s tree, counting the rest.
fn cap_details(err: &mut ApiError) {
    if err.details.len() > MAX_DETAILS {
        let omitted = err.details.len() - MAX_DETAILS;
        err.details_omitted = err.details_omitted.saturating_add(omitted);
        err.details.truncate(MAX_DETAILS);
        err.details.shrink_to_fit();
    }
    err.details.iter_mut().for_each(cap_details);
}

/// The default [`HintReader`], built once instead of per decoder.
static DEFAULT_HINTS: LazyLock<HintReader> = LazyLock::new(HintReader::new);

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let custom: Vec<&str> = self.custom.iter().map(|c| c.name()).collect();
        f.debug_struct("Decoder")
            .field("builtins", &self.builtins)
            .field("custom", &custom)
            .field("hints", self.hint_reader())
            .finish()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

/// How much of a non-JSON body becomes the message of an unrecognised error.
const MAX_TEXT_MESSAGE: usize = 256;

impl Decoder {
    /// Auto-detects every built-in format. See the type's docs for an example.
    pub fn new() -> Self {
        Self::from_builtins(Builtins::Detect)
    }

    /// Built-in formats only, default hints: the decoder [`builtins_only`](Self::builtins_only)
    /// describes. Allocates nothing.
    pub(crate) fn from_builtins(builtins: Builtins) -> Self {
        Decoder {
            builtins,
            custom: Vec::new(),
            hints: None,
        }
    }

    /// `Some` when this decoder is its built-in formats and nothing else (no custom format,
    /// the default hints): then `from_builtins` rebuilds it from that value alone.
    pub(crate) fn builtins_only(&self) -> Option<Builtins> {
        (self.custom.is_empty() && self.hints.is_none()).then_some(self.builtins)
    }

    fn hint_reader(&self) -> &HintReader {
        self.hints.as_ref().unwrap_or_else(|| &DEFAULT_HINTS)
    }

    /// Decodes `format` only, without detection (and custom formats, if added).
    ///
    /// ```
    /// use http::{HeaderMap, StatusCode};
    /// use towline_core::{ApiErrorKind, ApiFormat, AuthReason};
    /// use towline_envelope::{Decoder, Format};
    ///
    /// // Open2b's non-JSON answer to a bad X-Key.
    /// let err = Decoder::only(Format::Open2b)
    ///     .decode(StatusCode::FORBIDDEN, &HeaderMap::new(), &b"Forbidden, malformed key"[..])
    ///     .unwrap();
    /// assert_eq!(err.format, ApiFormat::Open2b);
    /// assert_eq!(err.kind, ApiErrorKind::Auth(AuthReason::CredentialsInvalid));
    /// ```
    ///
    /// [`Format::Custom`] and [`Format::Unrecognized`] name no built-in format: such a decoder
    /// is [`custom_only`](Decoder::custom_only).
    pub fn only(format: Format) -> Self {
        match Format::ALL.iter().position(|f| *f == format) {
            Some(i) => Self::from_builtins(Builtins::Only(i as u8)),
            None => Self::custom_only(),
        }
    }

    /// Tries only the custom formats added with [`with_format`](Decoder::with_format).
    pub fn custom_only() -> Self {
        Self::from_builtins(Builtins::Nothing)
    }

    /// Adds a user format, tried before the built-ins (in the order added).
    /// See [`ErrorFormat`] for an example.
    pub fn with_format(mut self, format: impl ErrorFormat) -> Self {
        self.custom.push(Arc::new(format));
        self
    }

    /// Reads retry hints from headers with `hints` instead of the default [`HintReader`].
    pub fn hints(mut self, hints: HintReader) -> Self {
        self.hints = Some(hints);
        self
    }

    /// Whether success bodies need inspecting: true when a format chosen with
    /// [`only`](Decoder::only), or a custom format, reports errors inside 2xx responses
    /// (Open2b does). Auto-detection alone answers `false`: buffering every JSON success of an
    /// unknown API to look for an Open2b envelope would cost every user for one vendor's quirk.
    /// [`decode`](Decoder::decode) itself always recognises in-band errors it is given.
    ///
    /// ```
    /// use towline_envelope::{Decoder, Format};
    ///
    /// assert!(Decoder::only(Format::Open2b).has_in_band_errors());
    /// assert!(!Decoder::new().has_in_band_errors());
    /// ```
    pub fn has_in_band_errors(&self) -> bool {
        // Detection alone answers `false`: see above.
        let builtin = self.builtins.only().is_some_and(Format::has_in_band_errors);
        builtin || self.custom.iter().any(|c| c.has_in_band_errors())
    }

    /// Decodes a response.
    ///
    /// - A non-success status (4xx, 5xx) always gives an error: decoded if a format matched,
    ///   otherwise [`ApiFormat::Unrecognized`] with the status, the kind it implies and, for a
    ///   short text body, the text as message.
    /// - A success status gives an error only if a format with in-band errors recognises one
    ///   (Open2b's `{"status":"error",...}` in a 200); any other body is a success: `None`.
    ///
    /// `body` is kept in [`ApiError::body`]; pass a prefix of a long body and set
    /// [`ApiError::body_truncated`] yourself (the layer does both).
    pub fn decode(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: impl Into<Bytes>,
    ) -> Option<ApiError> {
        let body = body.into();
        if status.is_client_error() || status.is_server_error() {
            return Some(self.decode_error_status(status, headers, body, SystemTime::now()));
        }
        // A success reads no hint: no need for the clock.
        self.decode_in_band_body(status, body)
    }

    /// [`decode`](Decoder::decode) as of `now`: the wall-clock time retry hints are measured
    /// against when the response has no trustworthy `Date` (see [`HintReader::read_at`]).
    /// Decode a recorded response as of its own `Date` to get the waits it asked for then.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use http::{HeaderMap, StatusCode};
    /// use towline_envelope::Decoder;
    ///
    /// // Recorded in 2013: the reset was 5 minutes after the response's Date.
    /// let mut headers = HeaderMap::new();
    /// headers.insert("date", "Tue, 20 Aug 2013 14:50:41 GMT".parse().unwrap());
    /// headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
    /// headers.insert("x-ratelimit-reset", "1377010541".parse().unwrap());
    /// let recorded_at = UNIX_EPOCH + Duration::from_secs(1_377_010_241); // its Date
    /// let err = Decoder::new()
    ///     .decode_at(StatusCode::TOO_MANY_REQUESTS, &headers, &b""[..], recorded_at)
    ///     .unwrap();
    /// assert_eq!(err.retry_hint.unwrap().wait(), Duration::from_secs(300));
    /// ```
    pub fn decode_at(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: impl Into<Bytes>,
        now: SystemTime,
    ) -> Option<ApiError> {
        let body = body.into();
        if status.is_client_error() || status.is_server_error() {
            return Some(self.decode_error_status(status, headers, body, now));
        }
        self.decode_in_band_body(status, body)
    }

    /// An error inside a success (Open2b's), or `None`.
    fn decode_in_band_body(&self, status: StatusCode, body: Bytes) -> Option<ApiError> {
        let mut err = self.decode_in_band(status, &body)?;
        cap_details(&mut err);
        err.retry_hint = err
            .retry_hint
            .take()
            .map(|hint| hint.capped(self.hint_reader().limit()));
        err.attach_members(body.clone(), json::parse);
        err.body = body;
        Some(err)
    }

    /// [`decode`](Decoder::decode) for a response with an error status (4xx, 5xx), which
    /// always gives an error.
    pub(crate) fn decode_error_status(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
        now: SystemTime,
    ) -> ApiError {
        let (mut err, is_json) = self.decode_error(status, headers, &body);
        cap_details(&mut err);
        generic::mark_rate_limit(&mut err, status, headers);
        // Only a response that asks for a wait gets one from its headers: many APIs send a
        // reset on every response, where it describes the window (a 401 with
        // `x-ratelimit-remaining: 0` asks for new credentials, not for an hour's wait). A
        // header (`Retry-After`, ...) is the server's explicit answer and wins over a body
        // hint (Google's `RetryInfo`); either way the cap applies.
        let from_headers = if err.asks_to_wait() {
            self.hint_reader().read_at(headers, now)
        } else {
            None
        };
        err.retry_hint = from_headers
            .or_else(|| err.retry_hint.take())
            .map(|hint| hint.capped(self.hint_reader().limit()));
        if is_json {
            err.attach_members(body.clone(), json::parse);
        }
        err.body = body;
        err
    }

    /// The decoded error, and whether the body was JSON.
    fn decode_error(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (ApiError, bool) {
        // `Some` when the body is JSON: then `Some(err)` if it is an object or a format matched.
        let decoded = if self.custom.is_empty() {
            json::with_tree(body, |tree| {
                tree.map(|tree| {
                    self.decode_builtin(status, headers, tree)
                        .or_else(|| Some(generic::unrecognized(status, tree.as_object()?)))
                })
            })
        } else {
            // Custom formats read a `Value` (their trait's type); the built-ins then read that
            // same parse.
            json::parse(body).map(|value| {
                let json = Json::Value(&value);
                self.custom
                    .iter()
                    .find_map(|c| c.decode(status, &value))
                    .or_else(|| self.decode_builtin(status, headers, json))
                    .or_else(|| Some(generic::unrecognized(status, json.as_object()?)))
            })
        };
        match decoded {
            Some(Some(err)) => (err, true),
            // JSON that is not an object says nothing.
            Some(None) => (ApiError::new(status, ApiFormat::Unrecognized), true),
            // A short text body is the message.
            None => {
                let text = short_text(body);
                if let (Some(Format::Open2b), Some(text)) = (self.builtins.only(), &text) {
                    return (formats::open2b_text(status, text), false);
                }
                let mut err = ApiError::new(status, ApiFormat::Unrecognized);
                err.message = text;
                (err, false)
            }
        }
    }

    fn decode_builtin(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        json: Json<'_>,
    ) -> Option<ApiError> {
        match self.builtins {
            Builtins::Only(_) => self
                .builtins
                .only()
                .and_then(|f| formats::decode(f, status, json, true)),
            Builtins::Nothing => None,
            Builtins::Detect => detect_by_content_type(status, headers, json).or_else(|| {
                Format::ALL
                    .into_iter()
                    .find_map(|format| formats::decode(format, status, json, false))
            }),
        }
    }

    /// The built-in formats to look for an error inside a success: those with in-band errors.
    fn in_band_builtins(&self) -> impl Iterator<Item = Format> + Clone {
        let candidates: &[Format] = match &self.builtins {
            Builtins::Detect => &Format::ALL,
            Builtins::Only(i) => std::slice::from_ref(&Format::ALL[usize::from(*i)]),
            Builtins::Nothing => &[],
        };
        candidates
            .iter()
            .copied()
            .filter(|f| f.has_in_band_errors())
    }

    fn decode_in_band(&self, status: StatusCode, body: &[u8]) -> Option<ApiError> {
        let builtins = self.in_band_builtins();
        if self.custom.iter().any(|c| c.has_in_band_errors()) {
            let value = json::parse(body)?;
            let custom = self
                .custom
                .iter()
                .filter(|c| c.has_in_band_errors())
                .find_map(|c| c.decode(status, &value));
            return custom.or_else(|| {
                let json = Json::Value(&value);
                builtins
                    .filter(|f| formats::is_in_band_error(*f, json))
                    .find_map(|f| formats::decode(f, status, json, true))
            });
        }
        // Nearly every success body is a real success: a first look that builds nothing
        // settles those, and only a possible error is parsed whole.
        if !builtins
            .clone()
            .any(|f| formats::may_be_in_band_error(f, body))
        {
            return None;
        }
        json::with_tree(body, |tree| {
            let tree = tree?;
            builtins
                .filter(|f| formats::is_in_band_error(*f, tree))
                .find_map(|f| formats::decode(f, status, tree, true))
        })
    }
}

/// `application/problem+json` and `application/vnd.api+json` name their format.
fn detect_by_content_type(
    status: StatusCode,
    headers: &HeaderMap,
    json: Json<'_>,
) -> Option<ApiError> {
    let essence = media_type(headers)?;
    if essence.eq_ignore_ascii_case("application/problem+json") {
        Some(public::problem_body(status, json.as_object()?))
    } else if essence.eq_ignore_ascii_case("application/vnd.api+json") {
        formats::decode(Format::JsonApi, status, json, true)
    } else {
        None
    }
}

/// The media type of a response, without parameters (`application/json; charset=utf-8` →
/// `application/json`).
pub(crate) fn media_type(headers: &HeaderMap) -> Option<&str> {
    let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    Some(content_type.split(';').next()?.trim())
}

/// The first line of a short, printable UTF-8 body, as a message.
fn short_text(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    let line = text.lines().next()?.trim();
    if line.is_empty() || line.chars().any(char::is_control) {
        return None;
    }
    let mut end = line.len().min(MAX_TEXT_MESSAGE);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    Some(line[..end].to_owned())
}

/// Decodes a response with the default [`Decoder`] (every built-in format, auto-detected).
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use towline_core::{ApiErrorKind, ApiFormat, Target};
///
/// // Open2b reports errors inside an HTTP 200.
/// let body = br#"{"status":"error","error":{"field":"name","type":"Malformed","description":"Name is not syntactically correct"}}"#;
/// let err = towline_envelope::decode(StatusCode::OK, &HeaderMap::new(), &body[..]).unwrap();
/// assert_eq!(err.format, ApiFormat::Open2b);
/// assert_eq!(err.kind, ApiErrorKind::Validation);
/// assert_eq!(err.target, Some(Target::Field("name".into())));
///
/// // A success body is not an error.
/// assert!(towline_envelope::decode(StatusCode::OK, &HeaderMap::new(), &br#"{"status":"ok"}"#[..]).is_none());
/// ```
pub fn decode(status: StatusCode, headers: &HeaderMap, body: impl Into<Bytes>) -> Option<ApiError> {
    static DEFAULT: OnceLock<Decoder> = OnceLock::new();
    DEFAULT
        .get_or_init(Decoder::new)
        .decode(status, headers, body)
}
