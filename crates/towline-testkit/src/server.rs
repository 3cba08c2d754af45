//! [`TestServer`]: the handle a test holds (start, routes, the log, shutdown).

use std::fmt;
use std::net::{Ipv4Addr, Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::uri::Authority;
use http::{Method, Uri};
use socket2::{SockRef, Socket};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::connection::accept_loop;
use crate::log::RecordedRequest;
use crate::reply::Reply;
use crate::routes::{Script, Shared, lock};

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
/// close, and connections with a response in flight get [`SHUTDOWN_GRACE`](crate::SHUTDOWN_GRACE) to
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
    /// [`DEFAULT_LOG_LIMIT`](crate::DEFAULT_LOG_LIMIT) of them, or as many as [`set_log_limit`](Self::set_log_limit) says.
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
    /// busy after [`SHUTDOWN_GRACE`](crate::SHUTDOWN_GRACE) (stalled or endless bodies, say) are
    /// dropped. Returns within about [`SHUTDOWN_GRACE`](crate::SHUTDOWN_GRACE) on the tokio clock.
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
