//! The accept loop and one task per connection: read the request, log it, play the reply.

use std::any::Any;
use std::convert::Infallible;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use socket2::SockRef;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinError, JoinSet};
use tokio::time::{Instant, Sleep};

use crate::body::ReplyBody;
use crate::log::{MAX_RECORDED_BODY, RecordedRequest};
use crate::reply::{Fault, Reply};
use crate::routes::{Answer, ReadBody, Shared};

/// How long a connection may take to finish after shutdown was asked for
/// before it is dropped (on the tokio clock).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
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

pub(crate) fn keep_panic(slot: &mut Option<Box<dyn Any + Send>>, done: Result<(), JoinError>) {
    if let Err(e) = done
        && e.is_panic()
        && slot.is_none()
    {
        *slot = Some(e.into_panic());
    }
}

/// Serves one TCP connection until it closes, is reset, or the server stops.
pub(crate) async fn serve_connection(
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

/// Reads a request body, keeping at most MAX_RECORDED_BODY bytes of it.
pub(crate) async fn read_body(mut body: Incoming) -> ReadBody {
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
pub(crate) async fn handle(
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
