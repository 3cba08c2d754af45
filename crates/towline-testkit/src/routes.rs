//! What the server answers and remembers: the routes, their scripts and handlers, the log.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method};

use crate::log::RecordedRequest;
use crate::reply::Reply;

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

/// State shared by the handle, the accept loop and the connections.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) routes: Mutex<HashMap<String, PathRoutes>>,
    pub(crate) log: Mutex<Log>,
    pub(crate) connections: AtomicU64,
}

/// A reply computed from the request (its headers and body), for servers that answer
/// differently depending on what they are sent: a token check, a simulated vendor.
pub(crate) type Handler = Arc<dyn Fn(&RecordedRequest) -> Reply + Send + Sync>;

#[derive(Default)]
pub(crate) struct PathRoutes {
    pub(crate) any: Option<Script>,
    pub(crate) by_method: HashMap<Method, Script>,
    pub(crate) handler: Option<Handler>,
}

/// What answers a request: a scripted reply, or a handler that decides once the body is in.
pub(crate) enum Answer {
    Reply(Reply),
    Handler(Handler),
}

/// Replies still to come for one route; the last one is never removed.
pub(crate) struct Script(VecDeque<Reply>);

impl Script {
    pub(crate) fn new(replies: impl IntoIterator<Item = Reply>, path: &str) -> Self {
        let replies: VecDeque<Reply> = replies.into_iter().collect();
        assert!(
            !replies.is_empty(),
            "TestServer: empty script for {path:?}; give at least one Reply"
        );
        Script(replies)
    }

    pub(crate) fn next(&mut self) -> Reply {
        if self.0.len() > 1
            && let Some(reply) = self.0.pop_front()
        {
            return reply;
        }
        self.0[0].clone()
    }
}

#[derive(Default)]
pub(crate) struct Log {
    /// Numbers requests so that a body can be filled in later even if the
    /// log was cleared or grew in between.
    pub(crate) next_seq: u64,
    pub(crate) entries: VecDeque<(u64, RecordedRequest)>,
    /// At most this many entries; `None` for [`DEFAULT_LOG_LIMIT`].
    pub(crate) limit: Option<usize>,
}

impl Log {
    /// Drops the oldest entries past the limit.
    pub(crate) fn trim(&mut self) {
        let limit = self.limit.unwrap_or(DEFAULT_LOG_LIMIT);
        while self.entries.len() > limit {
            self.entries.pop_front();
        }
    }
}

impl Shared {
    pub(crate) fn next_answer(&self, method: &Method, path: &str) -> Answer {
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

    pub(crate) fn record(&self, request: RecordedRequest) -> u64 {
        let mut log = lock(&self.log);
        let seq = log.next_seq;
        log.next_seq += 1;
        log.entries.push_back((seq, request));
        log.trim();
        seq
    }

    pub(crate) fn fill_body(&self, seq: u64, body: ReadBody) {
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
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A request body as read: at most MAX_RECORDED_BODY bytes of it.
pub(crate) struct ReadBody {
    pub(crate) bytes: Bytes,
    pub(crate) truncated: bool,
    pub(crate) complete: bool,
}
