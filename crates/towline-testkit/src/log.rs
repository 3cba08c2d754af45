//! The request log.

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, Method, Uri};
use tokio::time::Instant;

/// The most request body bytes the log keeps per request (16 MiB).
pub const MAX_RECORDED_BODY: usize = 16 * 1024 * 1024;

/// One request as the server received it.
///
/// The entry is added to the log as soon as the request head arrives, before
/// the body is read and before any scripted delay or fault, so a test sees
/// requests whose replies reset or stall. `arrived_at` is stamped at that
/// moment. The body is filled in once it has been read completely (the server
/// reads it before replying, so by the time a client has any response, the
/// body in the log is complete); until then `body_complete` is `false`.
///
/// The `Debug` output shows only the first bytes of the body.
#[derive(Clone)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The request method.
    pub method: Method,
    /// The request target as sent (usually origin-form: path and query).
    pub uri: Uri,
    /// The path of `uri`, without the query.
    pub path: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The request body, at most [`MAX_RECORDED_BODY`] bytes.
    pub body: Bytes,
    /// `true` if the body was longer than [`MAX_RECORDED_BODY`]; the rest was
    /// read and thrown away.
    pub body_truncated: bool,
    /// `true` once the whole body has been read. Stays `false` if the client
    /// went away mid-body.
    pub body_complete: bool,
    /// When the head arrived, on the tokio clock (so it follows a paused clock).
    pub arrived_at: Instant,
    /// Which TCP connection carried the request: connections are numbered
    /// 1, 2, 3, … in the order they were accepted.
    pub connection: u64,
}

impl RecordedRequest {
    /// The query string, if any.
    pub fn query(&self) -> Option<&str> {
        self.uri.query()
    }

    /// The first value of a header, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("path", &self.path)
            .field("headers", &self.headers)
            .field("body", &format_args!("{}", Preview(&self.body)))
            .field("body_truncated", &self.body_truncated)
            .field("body_complete", &self.body_complete)
            .field("arrived_at", &self.arrived_at)
            .field("connection", &self.connection)
            .finish()
    }
}

/// Shows a body's length and its first bytes, so that a 16 MiB body does not
/// flood a failing test's output.
pub(crate) struct Preview<'a>(pub(crate) &'a Bytes);

impl fmt::Display for Preview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        let b = self.0;
        write!(f, "{} bytes {:?}", b.len(), b.slice(..b.len().min(SHOWN)))?;
        if b.len() > SHOWN {
            f.write_str("…")?;
        }
        Ok(())
    }
}
