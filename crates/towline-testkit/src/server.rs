//! [`TestServer`]: the accept loop, the per-connection tasks and the routes.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::CONTENT_TYPE;
use http::uri::Authority;
use http::{HeaderValue, Method, Request, Response, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use socket2::{SockRef, Socket};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::{Instant, Sleep};

use crate::body::ReplyBody;
use crate::log::{MAX_RECORDED_BODY, RecordedRequest};
use crate::reply::{Fault, Reply};

/// How long a connection may take to finish after shutdown was asked for
/// before it is dropped (on the tokio clock).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// How many requests the log keeps by default (the most recent): far more than a test sends,
/// few enough that a long benchmark against the server does not grow without bound.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let server = towline_testkit::TestServer::start().await;
/// // A soak test sending more than the default keeps only the most recent 1,000.
/// server.set_log_limit(towline_testkit::DEFAULT_LOG_LIMIT.min(1_000));
/// # }
/// ```
pub const DEFAULT_LOG_LIMIT: usize = 100_000;

/// A real HTTP/1.1 server on `127.0.0.1`, with scripted replies, injected
/// faults and a log of every request.
///
/// Start one with [`TestServer::start`], give it routes with
/// [`route`](Self::route) or [`script`](Self::script), point a client at
/// [`url`](Self::url) and look at [`requests`](Self::requests) afterwards.
/// Everything takes `&self`, so routes can change while the server runs. See
/// the [crate docs](crate) for a full example.
///
/// A path without a route gets `404 Not Found` with a short text body.
///
/// Dropping the server stops it: the listening socket is closed at once (on
/// Linux; elsewhere as soon as the accept task next runs), idle connections
/// close, and connections with a response in flight get [`SHUTDOWN_GRACE`] to
/// finish before they are dropped. [`shutdown`](Self::shutdown) does the same
/// and waits until it is over.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    /// A second handle on the listening socket, so that `Drop` can stop it
    /// listening without waiting for the accept task to run.
    listener: Option<Socket>,
    accept_task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Binds `127.0.0.1:0` and spawns the server on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// If the port cannot be bound (which only happens when the machine is
    /// out of ports or file descriptors), or if not called within a tokio
    /// runtime.
    pub async fn start() -> TestServer {
        let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("TestServer: cannot bind 127.0.0.1:0: {e}"));
        std_listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("TestServer: cannot make the listener non-blocking: {e}"));
        let addr = std_listener
            .local_addr()
            .unwrap_or_else(|e| panic!("TestServer: no local address: {e}"));
        let listener = TcpListener::from_std(std_listener)
            .unwrap_or_else(|e| panic!("TestServer: cannot register the listener: {e}"));
        let dup = SockRef::from(&listener).try_clone().ok();

        let shared = Arc::new(Shared::default());
        let (stop, stop_rx) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stop_rx));
        TestServer {
            addr,
            shared,
            stop,
            listener: dup,
            accept_task: Some(accept_task),
        }
    }

    /// The address the server listens on (`127.0.0.1` and some free port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`, for building URIs or `Host` headers by hand.
    pub fn authority(&self) -> Authority {
        Authority::try_from(self.addr.to_string().as_str())
            .unwrap_or_else(|e| panic!("TestServer: bad authority {}: {e}", self.addr))
    }

    /// `http://127.0.0.1:PORT/path`. The path may carry a query and may omit
    /// the leading `/`.
    ///
    /// # Panics
    ///
    /// If `path` is not a valid URI path and query.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let server = towline_testkit::TestServer::start().await;
    /// let url = server.url("/items?page=2");
    /// assert_eq!(url.to_string(), format!("http://{}/items?page=2", server.addr()));
    /// # }
    /// ```
    pub fn url(&self, path: &str) -> Uri {
        let slash = if path.starts_with('/') { "" } else { "/" };
        let text = format!("http://{}{slash}{path}", self.addr);
        text.parse()
            .unwrap_or_else(|e| panic!("TestServer::url: invalid URI {text:?}: {e}"))
    }

    /// Every request to `path` (any method, any query) gets `reply`.
    ///
    /// Replaces any earlier route or script for `path` and any method.
    /// Method-specific routes ([`route_method`](Self::route_method)) win over it.
    pub fn route(&self, path: &str, reply: Reply) -> &Self {
        self.script(path, [reply])
    }

    /// Requests to `path` get these replies in order; the last one then
    /// repeats forever. Replaces any earlier route or script for `path` and
    /// any method.
    ///
    /// The next reply is taken when a request head arrives, so concurrent
    /// requests get replies in arrival order.
    ///
    /// # Panics
    ///
    /// If `replies` is empty.
    ///
    /// ```
    /// # use towline_testkit::{Reply, TestServer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let server = TestServer::start().await;
    /// // Fail twice, then succeed forever.
    /// server.script("/flaky", [Reply::status(503), Reply::reset(), Reply::ok().body("done")]);
    /// # }
    /// ```
    pub fn script(&self, path: &str, replies: impl IntoIterator<Item = Reply>) -> &Self {
        let script = Script::new(replies, path);
        let mut routes = lock(&self.shared.routes);
        let route = routes.entry(path.to_owned()).or_default();
        route.any = Some(script);
        route.handler = None;
        self
    }

    /// Requests to `path` are answered by `handler`, called with the request as recorded
    /// (method, headers, the whole body) once its body has arrived. Wins over every other
    /// route on the path; replaced by a later [`route`](Self::route) or
    /// [`script`](Self::script).
    ///
    /// ```
    /// # use towline_testkit::{Reply, TestServer};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let server = TestServer::start().await;
    /// // A protected resource: 401 unless the right token comes.
    /// server.route_fn("/me", |request| match request.header("authorization") {
    ///     Some("Bearer good") => Reply::ok().json(r#"{"name":"ada"}"#),
    ///     _ => Reply::status(401),
    /// });
    /// # }
    /// ```
    pub fn route_fn(
        &self,
        path: &str,
        handler: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    ) -> &Self {
        lock(&self.shared.routes)
            .entry(path.to_owned())
            .or_default()
            .handler = Some(Arc::new(handler));
        self
    }

    /// Requests to `path` with this method get `reply`. Wins over a route for
    /// any method on the same path.
    pub fn route_method(&self, method: Method, path: &str, reply: Reply) -> &Self {
        self.script_method(method, path, [reply])
    }

    /// Like [`script`](Self::script), for one method only. Wins over a route
    /// for any method on the same path.
    ///
    /// # Panics
    ///
    /// If `replies` is empty.
    pub fn script_method(
        &self,
        method: Method,
        path: &str,
        replies: impl IntoIterator<Item = Reply>,
    ) -> &Self {
        let script = Script::new(replies, path);
        lock(&self.shared.routes)
            .entry(path.to_owned())
            .or_default()
            .by_method
            .insert(method, script);
        self
    }

    /// Every request received so far, in arrival order (see
    /// [`RecordedRequest`] for when entries are added and completed): the most recent
    /// [`DEFAULT_LOG_LIMIT`] of them, or as many as [`set_log_limit`](Self::set_log_limit) says.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.log)
            .entries
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// The requests whose path (without query) is `path`, in arrival order.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        lock(&self.shared.log)
            .entries
            .iter()
            .filter(|(_, r)| r.path == path)
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// How many requests are in the log.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.log).entries.len()
    }

    /// How many TCP connections the server has accepted since it started
    /// (not reset by [`clear_log`](Self::clear_log)).
    pub fn connections_accepted(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Empties the request log.
    pub fn clear_log(&self) {
        lock(&self.shared.log).entries.clear();
    }

    /// Keeps only the most recent `limit` requests in the log (at least one), dropping the
    /// oldest first, so that a long run (a benchmark, a soak) holds its memory flat. The limit
    /// counts requests, not bytes: each entry keeps up to
    /// [`MAX_RECORDED_BODY`](crate::MAX_RECORDED_BODY) of its body. Handlers
    /// ([`route_fn`](Self::route_fn)) get their request whatever the log kept.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let server = towline_testkit::TestServer::start().await;
    /// server.set_log_limit(1_000);
    /// # }
    /// ```
    pub fn set_log_limit(&self, limit: usize) {
        let mut log = lock(&self.shared.log);
        log.limit = Some(limit.max(1));
        log.trim();
    }

    /// Stops the server and waits until it has stopped: no more connections
    /// are accepted, idle connections are closed, and connections still
    /// busy after [`SHUTDOWN_GRACE`] (stalled or endless bodies, say) are
    /// dropped. Returns within about [`SHUTDOWN_GRACE`] on the tokio clock.
    ///
    /// # Panics
    ///
    /// If a task of the server panicked, with that panic: nothing in the
    /// server should panic, whatever clients do, and tests should notice if
    /// it does.
    pub async fn shutdown(mut self) {
        self.signal_stop();
        if let Some(task) = self.accept_task.take()
            && let Err(e) = task.await
            // Only a panic inside the server gets here (a testkit bug): pass
            // it on so the test fails instead of hiding it.
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    fn signal_stop(&mut self) {
        self.stop.send_replace(true);
        if let Some(listener) = self.listener.take() {
            // On Linux, shutting down a listening socket stops it listening:
            // new connections are refused right away. Elsewhere this may
            // fail, and the accept task closes the socket when it next runs.
            let _ = listener.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .field("requests", &self.request_count())
            .field("connections_accepted", &self.connections_accepted())
            .finish_non_exhaustive()
    }
}

/// State shared by the handle, the accept loop and the connections.
#[derive(Default)]
struct Shared {
    routes: Mutex<HashMap<String, PathRoutes>>,
    log: Mutex<Log>,
    connections: AtomicU64,
}

/// A reply computed from the request (its headers and body), for servers that answer
/// differently depending on what they are sent: a token check, a simulated vendor.
type Handler = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;

#[derive(Default)]
struct PathRoutes {
    any: Option<Script>,
    by_method: HashMap<Method, Script>,
    handler: Option<Handler>,
}

/// What answers a request: a scripted reply, or a handler that decides once the body is in.
enum Answer {
    Reply(Reply),
    Handler(Handler),
}

/// Replies still to come for one route; the last one is never removed.
struct Script(VecDeque<Reply>);

impl Script {
    fn new(replies: impl IntoIterator<Item = Reply>, path: &str) -> Self {
        let replies: VecDeque<Reply> = replies.into_iter().collect();
        assert!(
            !replies.is_empty(),
            "TestServer: empty script for {path:?}; give at least one Reply"
        );
        Script(replies)
    }

    fn next(&mut self) -> Reply {
        if self.0.len() > 1
            && let Some(reply) = self.0.pop_front()
        {
            return reply;
        }
        self.0[0].clone()
    }
}

#[derive(Default)]
struct Log {
    /// Numbers requests so that a body can be filled in later even if the
    /// log was cleared or grew in between.
    next_seq: u64,
    entries: VecDeque<(u64, RecordedRequest)>,
    /// At most this many entries; `None` for [`DEFAULT_LOG_LIMIT`].
    limit: Option<usize>,
}

impl Log {
    /// Drops the oldest entries past the limit.
    fn trim(&mut self) {
        let limit = self.limit.unwrap_or(DEFAULT_LOG_LIMIT);
        while self.entries.len() > limit {
            self.entries.pop_front();
        }
    }
}

impl Shared {
    fn next_answer(&self, method: &Method, path: &str) -> Answer {
        let mut routes = lock(&self.routes);
        let found = routes.get_mut(path).and_then(|r| {
            if let Some(handler) = &r.handler {
                Some(Answer::Handler(handler.clone()))
            } else if let Some(script) = r.by_method.get_mut(method) {
                Some(Answer::Reply(script.next()))
            } else {
                r.any.as_mut().map(|s| Answer::Reply(s.next()))
            }
        });
        found.unwrap_or_else(|| {
            Answer::Reply(
                Reply::status(404)
                    .header(CONTENT_TYPE, HeaderValue::from_static("text/plain"))
                    .body(format!("towline-testkit: no route for {method} {path}\n")),
            )
        })
    }

    fn record(&self, request: RecordedRequest) -> u64 {
        let mut log = lock(&self.log);
        let seq = log.next_seq;
        log.next_seq += 1;
        log.entries.push_back((seq, request));
        log.trim();
        seq
    }

    fn fill_body(&self, seq: u64, body: ReadBody) {
        let mut log = lock(&self.log);
        // Usually the last entry, so search from the back.
        if let Some((_, r)) = log.entries.iter_mut().rev().find(|(s, _)| *s == seq) {
            r.body = body.bytes;
            r.body_truncated = body.truncated;
            r.body_complete = body.complete;
        }
    }
}

/// Locks, ignoring poisoning: a panicking test thread must not turn every
/// later server call into a second panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    // The first panic of a connection task, re-raised once the server has
    // stopped so that `shutdown().await` makes a testkit bug visible.
    let mut panicked = None;
    loop {
        tokio::select! {
            biased;
            // A change (only ever to `true`) or a dropped sender both mean stop.
            _ = stop.changed() => break,
            // Reap finished connections so the set does not grow forever.
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                keep_panic(&mut panicked, done);
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let id = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
                    connections.spawn(serve_connection(stream, id, Arc::clone(&shared), stop.clone()));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
    // Closing the listener refuses new connections from here on.
    drop(listener);
    // Each connection task ends within SHUTDOWN_GRACE of the stop signal.
    while let Some(done) = connections.join_next().await {
        keep_panic(&mut panicked, done);
    }
    if let Some(payload) = panicked {
        std::panic::resume_unwind(payload);
    }
}

fn keep_panic(slot: &mut Option<Box<dyn Any + Send>>, done: Result<(), JoinError>) {
    if let Err(e) = done
        && e.is_panic()
        && slot.is_none()
    {
        *slot = Some(e.into_panic());
    }
}

/// Serves one TCP connection until it closes, is reset, or the server stops.
async fn serve_connection(
    stream: TcpStream,
    id: u64,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    // Small writes (a head, a slow chunk) must go out at once, not wait for Nagle.
    let _ = stream.set_nodelay(true);
    // A second handle on the socket: hyper owns the stream, and a reset needs
    // SO_LINGER 0 set on the socket and every handle on it closed.
    let raw = SockRef::from(&stream).try_clone().ok();
    let reset = Arc::new(Notify::new());

    let service = {
        let reset = Arc::clone(&reset);
        service_fn(move |req| handle(Arc::clone(&shared), id, Arc::clone(&reset), req))
    };
    let mut conn = pin!(
        http1::Builder::new()
            // Idle keep-alive connections stay open: a timer here would also
            // fire, surprisingly, when a test advances a paused clock.
            .header_read_timeout(None)
            .serve_connection(TokioIo::new(stream), service)
    );

    let mut grace: Option<Pin<Box<Sleep>>> = None;
    loop {
        tokio::select! {
            // Client hangup, protocol errors and normal closes all end here.
            _ = conn.as_mut() => return,
            () = reset.notified() => {
                if let Some(raw) = &raw {
                    let _ = raw.set_linger(Some(Duration::ZERO));
                }
                // Returning drops the connection (hyper's handle) and then
                // `raw`; the last close of a zero-linger socket sends an RST.
                return;
            }
            _ = stop.changed(), if grace.is_none() => {
                conn.as_mut().graceful_shutdown();
                grace = Some(Box::pin(tokio::time::sleep(SHUTDOWN_GRACE)));
            }
            () = async { grace.as_mut().expect("guarded by the precondition").await }, if grace.is_some() => return,
        }
    }
}

/// A request body as read: at most MAX_RECORDED_BODY bytes of it.
struct ReadBody {
    bytes: Bytes,
    truncated: bool,
    complete: bool,
}

async fn read_body(mut body: Incoming) -> ReadBody {
    let mut buf = BytesMut::new();
    let mut truncated = false;
    let complete = loop {
        match body.frame().await {
            None => break true,
            Some(Err(_)) => break false,
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let room = MAX_RECORDED_BODY - buf.len();
                if data.len() > room {
                    truncated = true;
                }
                buf.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
    };
    ReadBody {
        bytes: buf.freeze(),
        truncated,
        complete,
    }
}

/// The service: log the request, read its body, then play the scripted reply.
async fn handle(
    shared: Arc<Shared>,
    connection: u64,
    reset: Arc<Notify>,
    req: Request<Incoming>,
) -> Result<Response<ReplyBody>, Infallible> {
    // Stamped first: this is when the head arrived.
    let arrived_at = Instant::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let answer = shared.next_answer(&parts.method, &path);
    let request = RecordedRequest {
        method: parts.method,
        uri: parts.uri,
        path,
        headers: parts.headers,
        body: Bytes::new(),
        body_truncated: false,
        body_complete: false,
        arrived_at,
        connection,
    };
    // A handler gets its own copy: the log entry may be gone by the time the body is read
    // (cleared, or trimmed to the log limit by requests arriving meanwhile).
    let mut own = matches!(answer, Answer::Handler(_)).then(|| request.clone());
    let seq = shared.record(request);
    // Clients send the body with the request, so reading it before replying
    // costs nothing and leaves a complete log entry behind.
    let body = read_body(body).await;
    if let Some(own) = own.as_mut() {
        own.body = body.bytes.clone();
        own.body_truncated = body.truncated;
        own.body_complete = body.complete;
    }
    shared.fill_body(seq, body);
    let reply = match (answer, own) {
        (Answer::Reply(reply), _) => reply,
        (Answer::Handler(handler), Some(request)) => handler(&request),
        (Answer::Handler(_), None) => Reply::status(500).body("towline-testkit: no request\n"),
    };

    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    if reply.fault == Fault::ResetBeforeHead {
        reset.notify_one();
        // The connection task drops this future along with the connection.
        std::future::pending::<()>().await;
    }
    let body = ReplyBody::new(&reply, reset);
    let mut response = Response::new(body);
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    Ok(response)
}
