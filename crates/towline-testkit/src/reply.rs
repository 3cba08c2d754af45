//! [`Reply`]: what the server answers, including the faults it injects.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// Where the bytes of a reply body come from.
#[derive(Clone)]
pub(crate) enum BodySource {
    /// A fixed body, sent as is.
    Fixed(Bytes),
    /// `len` bytes of the repeating pattern (see [`Reply::huge_body`]).
    Pattern(u64),
    /// The repeating pattern, forever.
    Endless,
}

impl fmt::Debug for BodySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Only a preview: a body may be megabytes long and end up in a panic message.
            Self::Fixed(b) => write!(f, "Fixed({})", crate::log::Preview(b)),
            Self::Pattern(len) => write!(f, "Pattern({len} bytes)"),
            Self::Endless => f.write_str("Endless"),
        }
    }
}

/// The fault, if any, that cuts a reply short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Send the whole reply.
    None,
    /// Reset the connection instead of sending the head.
    ResetBeforeHead,
    /// Send the head and this many body bytes, then never send more.
    StallAfter(u64),
    /// Send the head and this many body bytes, then reset the connection.
    ResetAfter(u64),
}

/// A scripted reply: status, headers, body and faults.
///
/// Build one with [`Reply::ok`], [`Reply::status`], [`Reply::new`],
/// [`Reply::redirect`], [`Reply::reset`], [`Reply::huge_body`] or
/// [`Reply::endless_body`], then refine it with the builder methods. Replies
/// are plain values: clone them, keep them in a `Vec` for
/// [`TestServer::script`](crate::TestServer::script).
///
/// Faults combine where that makes sense, for example a 500 with a huge body
/// sent slowly after a delay:
///
/// ```
/// use std::time::Duration;
/// use towline_testkit::Reply;
///
/// let reply = Reply::huge_body(64 << 20)
///     .with_status(500)
///     .delay(Duration::from_secs(2))
///     .slow_body(8, Duration::from_millis(100));
/// # let _ = reply;
/// ```
///
/// Methods that take header names or values panic on invalid input: a
/// `Reply` is test code, and failing loudly at construction beats a confusing
/// failure later.
#[derive(Clone, Debug)]
pub struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: BodySource,
    pub(crate) delay: Option<Duration>,
    pub(crate) slow: Option<(usize, Duration)>,
    pub(crate) fault: Fault,
}

impl Reply {
    /// A reply with this status, no headers and an empty body.
    ///
    /// ```
    /// let reply = towline_testkit::Reply::new(http::StatusCode::ACCEPTED);
    /// # let _ = reply;
    /// ```
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: BodySource::Fixed(Bytes::new()),
            delay: None,
            slow: None,
            fault: Fault::None,
        }
    }

    /// `200 OK` with an empty body.
    pub fn ok() -> Self {
        Self::new(StatusCode::OK)
    }

    /// A reply with this numeric status and an empty body.
    ///
    /// # Panics
    ///
    /// If `code` is not a valid status code (100..=999).
    ///
    /// ```
    /// let reply = towline_testkit::Reply::status(503).header("retry-after", "2");
    /// # let _ = reply;
    /// ```
    pub fn status(code: u16) -> Self {
        Self::new(status_code(code))
    }

    /// A redirect: this status (e.g. 301, 302, 307, 308) and a `Location` header.
    ///
    /// # Panics
    ///
    /// If `code` is not a valid status code or `location` is not a valid header value.
    ///
    /// ```
    /// let reply = towline_testkit::Reply::redirect(307, "/elsewhere");
    /// # let _ = reply;
    /// ```
    pub fn redirect(code: u16, location: &str) -> Self {
        Self::status(code).header(LOCATION, location)
    }

    /// Reads the request, then resets the TCP connection (`SO_LINGER` 0, so
    /// the close sends an RST) without sending a single byte of the response.
    ///
    /// The client sees a connection reset after its request was written, which
    /// is the "may have reached the server" kind of network error. Any
    /// [`delay`](Self::delay) is applied before the reset; status, headers and
    /// body are ignored.
    pub fn reset() -> Self {
        Self {
            fault: Fault::ResetBeforeHead,
            ..Self::ok()
        }
    }

    /// `200 OK` with a body of `len` bytes, streamed with a `Content-Length`.
    ///
    /// The body is cut from one shared 64 KiB buffer, so memory stays bounded
    /// whatever `len` is (1 GiB and more are fine). Byte `i` of the body is
    /// `(i % 256) as u8`, which lets a test check what it received.
    pub fn huge_body(len: u64) -> Self {
        Self {
            body: BodySource::Pattern(len),
            ..Self::ok()
        }
    }

    /// `200 OK` with a chunked body that never ends (same byte pattern as
    /// [`huge_body`](Self::huge_body), bounded memory). The client decides when
    /// to stop reading; the connection task ends when the client hangs up or the
    /// server shuts down.
    pub fn endless_body() -> Self {
        Self {
            body: BodySource::Endless,
            ..Self::ok()
        }
    }

    /// Replaces the status code, keeping everything else.
    ///
    /// # Panics
    ///
    /// If `code` is not a valid status code (100..=999).
    pub fn with_status(mut self, code: u16) -> Self {
        self.status = status_code(code);
        self
    }

    /// Adds a response header (appended, so a name may repeat).
    ///
    /// Accepts anything that converts into [`HeaderName`] / [`HeaderValue`]:
    /// `&str`, `String`, the `http::header` constants, ready-made values.
    ///
    /// # Panics
    ///
    /// If the name or value is invalid, with a message naming it.
    ///
    /// ```
    /// let reply = towline_testkit::Reply::ok()
    ///     .header("x-request-id", "abc")
    ///     .header(http::header::CACHE_CONTROL, "no-store");
    /// # let _ = reply;
    /// ```
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: fmt::Debug,
        V: TryInto<HeaderValue>,
        V::Error: fmt::Debug,
    {
        let name = name
            .try_into()
            .unwrap_or_else(|e| panic!("Reply::header: invalid header name: {e:?}"));
        let value = value
            .try_into()
            .unwrap_or_else(|e| panic!("Reply::header: invalid value for {name}: {e:?}"));
        self.headers.append(name, value);
        self
    }

    /// Sets the body. The response carries a matching `Content-Length`.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = BodySource::Fixed(body.into());
        self
    }

    /// Sets the body and `Content-Type: application/json`. The text is sent
    /// as is; it is not validated.
    ///
    /// ```
    /// let reply = towline_testkit::Reply::status(429).json(r#"{"error":"slow down"}"#);
    /// # let _ = reply;
    /// ```
    pub fn json(mut self, json: impl Into<Bytes>) -> Self {
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.body(json)
    }

    /// Waits this long (on the tokio clock, so it follows a paused clock)
    /// after the request body was read and before sending the head.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Sends the body in `chunks` pieces of (nearly) equal size, sleeping
    /// `interval` between two pieces (tokio clock). The head goes out with the
    /// first piece. A body shorter than `chunks` bytes is sent one byte per piece.
    ///
    /// For [`endless_body`](Self::endless_body), whose length is unknown,
    /// `chunks` is ignored and the pause comes after every 64 KiB.
    ///
    /// # Panics
    ///
    /// If `chunks` is 0.
    pub fn slow_body(mut self, chunks: usize, interval: Duration) -> Self {
        assert!(chunks > 0, "Reply::slow_body: chunks must be at least 1");
        self.slow = Some((chunks, interval));
        self
    }

    /// Sends the head and the first `n` bytes of the body, then nothing more,
    /// ever: the connection stays open until the client gives up or the server
    /// shuts down.
    ///
    /// The head announces the full body (`Content-Length`), or, if the body
    /// has no more than `n` bytes, uses chunked encoding and never sends the
    /// last chunk; either way the client keeps waiting for more.
    pub fn stall_body_after(mut self, n: u64) -> Self {
        self.fault = Fault::StallAfter(n);
        self
    }

    /// Sends the head, then resets the connection (RST). Same as
    /// [`reset_after_body_bytes(0)`](Self::reset_after_body_bytes).
    pub fn reset_after_head(self) -> Self {
        self.reset_after_body_bytes(0)
    }

    /// Sends the head and the first `n` body bytes, then resets the
    /// connection (RST). The head announces more than `n` bytes, as for
    /// [`stall_body_after`](Self::stall_body_after).
    ///
    /// An RST throws away whatever the kernel has not yet delivered, so keep
    /// `n` well within the socket buffers (up to a few tens of KiB) if the
    /// test needs all `n` bytes to reach the client first.
    pub fn reset_after_body_bytes(mut self, n: u64) -> Self {
        self.fault = Fault::ResetAfter(n);
        self
    }
}

fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or_else(|e| panic!("invalid status code {code}: {e}"))
}
