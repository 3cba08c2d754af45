//! Retry above token refresh: one copy of the request per call. The retry layer promises in
//! the request's `CallContext` to send an attempt again after a credentials refresh
//! (`Resend::OnRefresh`); the token-refresh layer then keeps no copy of its own, and after a
//! refresh on a 401 ends the attempt with `CredentialsRefreshed`. These tests pin down that
//! the behaviour is the one the token-refresh layer has alone (one refresh and one resend per
//! attempt, a second 401 is final, a resend is not a retry), and that it holds wherever the
//! request goes: through a `Buffer`, into a spawned task, under a layer that wraps errors,
//! and under tower's own `Retry` with towline's policy.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{BoxError, Layer, ServiceExt, service_fn};
use towline::auth::{Token, TokenRefreshLayer, TokenSource, from_fn};
use towline::core::{Attempts, AuthReason, CallContext, Error, ErrorKind, Replayable, Resend};
use towline::retry::{Backoff, RetryLayer, RetryPolicy};

/// A request body that counts the copies made of it, and allows only `allowed` of them.
#[derive(Clone, Debug)]
struct Counted {
    copies: Arc<AtomicUsize>,
    allowed: usize,
}

impl Replayable for Counted {
    fn replay(&self) -> Option<Self> {
        let made = self.copies.fetch_add(1, Ordering::SeqCst);
        (made < self.allowed).then(|| self.clone())
    }
}

fn request(copies: &Arc<AtomicUsize>, allowed: usize) -> Request<Counted> {
    Request::get("http://api.test/things")
        .body(Counted {
            copies: copies.clone(),
            allowed,
        })
        .unwrap()
}

/// "token-1", "token-2", ...: counts its fetches.
fn source(fetches: Arc<AtomicUsize>) -> impl TokenSource {
    from_fn(move || {
        let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Token::new(format!("token-{n}")) }
    })
}

/// An upstream answering from `script` in turn (then 200), recording each Authorization.
fn upstream(
    script: Vec<u16>,
    seen: Arc<Mutex<Vec<String>>>,
) -> impl tower::Service<
    Request<Counted>,
    Response = Response<Full<Bytes>>,
    Error = BoxError,
    Future = impl Future<Output = Result<Response<Full<Bytes>>, BoxError>> + Send,
> + Clone {
    let script = Arc::new(Mutex::new(script.into_iter()));
    service_fn(move |req: Request<Counted>| {
        let auth = req.headers()["authorization"].to_str().unwrap().to_owned();
        seen.lock().unwrap().push(auth);
        let status = script.lock().unwrap().next().unwrap_or(200);
        async move {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            Ok::<_, BoxError>(response)
        }
    })
}

fn no_backoff(retries: u32) -> RetryLayer {
    RetryLayer::with_policy(
        RetryPolicy::new()
            .max_retries(retries)
            .backoff(Backoff::none())
            .no_budget(),
    )
}

#[tokio::test]
async fn under_retry_the_request_is_copied_once_not_twice() {
    let copies = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let auth = TokenRefreshLayer::new(source(Arc::new(AtomicUsize::new(0))));
    let stack = no_backoff(3).layer(auth.layer(upstream(vec![], seen.clone())));
    let response = stack.oneshot(request(&copies, usize::MAX)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(copies.load(Ordering::SeqCst), 1, "retry's copy only");

    // Alone, or under a retry layer that keeps no copy, the auth layer keeps its own.
    for retries in [None, Some(0)] {
        let copies = Arc::new(AtomicUsize::new(0));
        let auth = TokenRefreshLayer::new(source(Arc::new(AtomicUsize::new(0))));
        let service = auth.layer(upstream(vec![], seen.clone()));
        let response = match retries {
            None => service.oneshot(request(&copies, usize::MAX)).await,
            Some(n) => {
                no_backoff(n)
                    .layer(service)
                    .oneshot(request(&copies, usize::MAX))
                    .await
            }
        }
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(copies.load(Ordering::SeqCst), 1, "{retries:?}: auth's copy");
    }
}

#[tokio::test]
async fn a_401_under_retry_refreshes_once_and_retry_replays_with_the_new_token() {
    let copies = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let auth = TokenRefreshLayer::new(source(fetches.clone()));
    let stack = no_backoff(3).layer(auth.layer(upstream(vec![401], seen.clone())));
    let response = stack.oneshot(request(&copies, usize::MAX)).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "the first token, then one refresh"
    );
    assert_eq!(*seen.lock().unwrap(), ["Bearer token-1", "Bearer token-2"]);
    // A replay is no retry, but two requests were sent: the record says so (issue 19).
    let attempts = Attempts::from_extensions(response.extensions()).unwrap();
    assert_eq!(
        (attempts.count(), attempts.retries(), attempts.replays()),
        (2, 0, 1)
    );
}

#[tokio::test]
async fn a_second_401_after_the_replay_is_final() {
    let copies = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let auth = TokenRefreshLayer::new(source(fetches.clone()));
    let stack = no_backoff(3).layer(auth.layer(upstream(vec![401; 10], seen.clone())));
    let err = stack
        .oneshot(request(&copies, usize::MAX))
        .await
        .unwrap_err();

    // Two requests were sent: the record is around the final AuthError (issue 19).
    let err = Error::from(err);
    let attempts = err.attempts().unwrap();
    assert_eq!((attempts.count(), attempts.replays()), (2, 1));
    assert_eq!(
        err.to_string(),
        "gave up after 2 attempts: authentication failed: token invalid: 401 Unauthorized"
    );
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_eq!(err.auth_reason(), Some(AuthReason::InvalidToken));
    assert_eq!(seen.lock().unwrap().len(), 2, "one replay, never a loop");
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_replay_is_not_a_retry() {
    // One retry allowed: the replay after the 401 does not use it up, the 503 does.
    let copies = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let auth = TokenRefreshLayer::new(source(Arc::new(AtomicUsize::new(0))));
    let stack = no_backoff(1).layer(auth.layer(upstream(vec![401, 503], seen.clone())));
    let response = stack.oneshot(request(&copies, usize::MAX)).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.lock().unwrap().len(), 3);
    let attempts = Attempts::from_extensions(response.extensions()).unwrap();
    assert_eq!(
        (attempts.count(), attempts.retries(), attempts.replays()),
        (3, 1, 1)
    );
    assert_eq!(attempts.delays(), [Duration::ZERO, Duration::ZERO]);
}

#[tokio::test]
async fn each_retry_gets_its_own_replay() {
    // A server that revokes the previous token when it issues a new one: a 401, a 503, then
    // a 401 again. Each attempt, like each attempt through the token layer alone, may refresh
    // and replay once.
    let copies = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let auth = TokenRefreshLayer::new(source(fetches.clone()));
    let stack = no_backoff(3).layer(auth.layer(upstream(vec![401, 503, 401], seen.clone())));
    let response = stack.oneshot(request(&copies, usize::MAX)).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "Bearer token-1",
            "Bearer token-2",
            "Bearer token-2",
            "Bearer token-3"
        ]
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 3);
    let attempts = Attempts::from_extensions(response.extensions()).unwrap();
    assert_eq!((attempts.retries(), attempts.replays()), (1, 2));
}

#[tokio::test]
async fn a_failing_token_source_under_retry_ends_the_call_without_a_replay() {
    let copies = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let source = from_fn(move || {
        let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            if n == 1 {
                Ok::<Token, BoxError>(Token::new("token-1")?)
            } else {
                Err::<Token, BoxError>("the token endpoint is down".into())
            }
        }
    });
    let auth = TokenRefreshLayer::new(source);
    let stack = no_backoff(3).layer(auth.layer(upstream(vec![401], seen.clone())));
    let err = stack
        .oneshot(request(&copies, usize::MAX))
        .await
        .unwrap_err();

    assert_eq!(
        Error::from(err).auth_reason(),
        Some(AuthReason::SourceFailed)
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "no replay without a new token"
    );
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_401_after_a_retry_still_gets_its_one_replay() {
    let copies = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let auth = TokenRefreshLayer::new(source(Arc::new(AtomicUsize::new(0))));
    let stack = no_backoff(3).layer(auth.layer(upstream(vec![503, 401], seen.clone())));
    let response = stack.oneshot(request(&copies, usize::MAX)).await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        *seen.lock().unwrap(),
        ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    );
}

#[tokio::test]
async fn without_a_copy_to_replay_the_401_ends_as_the_auth_error() {
    // The body allows retry's copy but no second one: retry cannot replay.
    let copies = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let auth = TokenRefreshLayer::new(source(Arc::new(AtomicUsize::new(0))));
    let stack = no_backoff(3).layer(auth.layer(upstream(vec![401], seen.clone())));
    let err = stack.oneshot(request(&copies, 1)).await.unwrap_err();

    assert!(err.is::<towline::core::AuthError>(), "{err}");
    let err = Error::from(err);
    assert_eq!(err.auth_reason(), Some(AuthReason::InvalidToken));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn one_callers_deadline_does_not_cut_the_token_fetch_others_wait_for() {
    use towline::core::{Deadline, DeadlineExceeded};
    use towline::timeout::DeadlineLayer;

    // The token endpoint's own client has a 30 s deadline and takes 2 s to answer.
    let fetches = Arc::new(AtomicUsize::new(0));
    let counted = fetches.clone();
    let token_endpoint =
        DeadlineLayer::new(Duration::from_secs(30)).layer(service_fn(move |_: Request<()>| {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Ok::<_, std::convert::Infallible>(Response::new(format!("token-{n}")))
            }
        }));
    let source = from_fn(move || {
        let endpoint = token_endpoint.clone();
        async move {
            match endpoint.oneshot(Request::new(())).await {
                Ok(response) => Token::new(response.into_body().into_inner())
                    .map_err(|invalid| Box::new(invalid) as BoxError),
                Err(error) => Err(error),
            }
        }
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stack = DeadlineLayer::new(Duration::from_secs(60)).layer(
        no_backoff(3).layer(TokenRefreshLayer::new(source).layer(upstream(vec![], seen.clone()))),
    );

    // A, in a hurry, starts the fetch; B waits for it.
    let copies = Arc::new(AtomicUsize::new(0));
    let mut hurried = request(&copies, usize::MAX);
    Deadline::after(Duration::from_secs(1)).tighten(hurried.extensions_mut());
    let (a, b) = tokio::join!(
        stack.clone().oneshot(hurried),
        stack.clone().oneshot(request(&copies, usize::MAX)),
    );
    // A ends at its own deadline; the fetch it started belongs to the cache and goes on.
    assert!(a.unwrap_err().is::<DeadlineExceeded>());
    assert_eq!(b.unwrap().status(), StatusCode::OK);
    assert_eq!(*seen.lock().unwrap(), ["Bearer token-1"]);
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        1,
        "one fetch, whoever gave up waiting"
    );
}

type Recorded = Arc<Mutex<Vec<(u32, Resend)>>>;

/// The token layer over an upstream that answers 401 and then 200, recording each attempt's
/// Authorization and what its `CallContext` says (attempt, resend promise).
fn auth_over_a_401(
    fetches: &Arc<AtomicUsize>,
    seen: &Arc<Mutex<Vec<String>>>,
    contexts: &Recorded,
) -> tower::util::BoxCloneService<Request<Counted>, Response<Full<Bytes>>, BoxError> {
    let contexts = contexts.clone();
    let inner = upstream(vec![401], seen.clone());
    let recording = service_fn(move |req: Request<Counted>| {
        let context = CallContext::from_extensions(req.extensions())
            .copied()
            .unwrap_or_default();
        contexts
            .lock()
            .unwrap()
            .push((context.attempt(), context.resend()));
        inner.clone().oneshot(req)
    });
    tower::util::BoxCloneService::new(
        TokenRefreshLayer::new(source(fetches.clone())).layer(recording),
    )
}

/// Checks that a call through `stack` (over [`auth_over_a_401`]) made one copy, one refresh and
/// one resend, sent by the retry layer: the promise reached the token layer in the request's
/// context, and its answer came back up.
async fn assert_one_copy_and_one_resend<S>(stack: S)
where
    S: tower::Service<Request<Counted>, Response = Response<Full<Bytes>>>,
    S::Error: std::fmt::Debug,
{
    let copies = Arc::new(AtomicUsize::new(0));
    let response = stack.oneshot(request(&copies, usize::MAX)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        copies.load(Ordering::SeqCst),
        2,
        "retry's copy, and the resend made from it"
    );
}

fn assert_resent_by_retry(
    fetches: &AtomicUsize,
    seen: &Mutex<Vec<String>>,
    contexts: &Mutex<Vec<(u32, Resend)>>,
) {
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "the first token, then one refresh"
    );
    assert_eq!(*seen.lock().unwrap(), ["Bearer token-1", "Bearer token-2"]);
    assert_eq!(
        *contexts.lock().unwrap(),
        [(1, Resend::OnRefresh), (2, Resend::Resent)],
        "the retry layer's promise, then its resend"
    );
}

#[tokio::test]
async fn the_resend_promise_crosses_a_buffer() {
    let (fetches, seen, contexts) = Default::default();
    let auth = auth_over_a_401(&fetches, &seen, &contexts);
    let stack = no_backoff(3).layer(tower::buffer::Buffer::new(auth, 8));
    assert_one_copy_and_one_resend(stack).await;
    assert_resent_by_retry(&fetches, &seen, &contexts);
}

#[tokio::test]
async fn the_resend_promise_crosses_a_spawned_call() {
    let (fetches, seen, contexts) = Default::default();
    let auth = auth_over_a_401(&fetches, &seen, &contexts);
    let spawning = service_fn(move |req: Request<Counted>| {
        let auth = auth.clone();
        async move { tokio::spawn(auth.oneshot(req)).await.unwrap() }
    });
    let stack = no_backoff(3).layer(spawning);
    assert_one_copy_and_one_resend(stack).await;
    assert_resent_by_retry(&fetches, &seen, &contexts);
}

#[tokio::test]
async fn a_layer_that_wraps_errors_in_between_keeps_the_resend() {
    #[derive(Debug)]
    struct Wrapped(BoxError);
    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("wrapped by a layer in between")
        }
    }
    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.0)
        }
    }
    let (fetches, seen, contexts) = Default::default();
    let auth = auth_over_a_401(&fetches, &seen, &contexts)
        .map_err(|error: BoxError| Box::new(Wrapped(error)) as BoxError);
    let stack = no_backoff(3).layer(auth);
    assert_one_copy_and_one_resend(stack).await;
    assert_resent_by_retry(&fetches, &seen, &contexts);
}

#[tokio::test]
async fn tower_retry_with_towline_policy_resends_after_a_refresh() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let fetches = Arc::new(AtomicUsize::new(0));
    // The first attempt is tower's original request, with no promise on it: the token layer
    // keeps its own copy there. A retry goes out under the policy's promise.
    let auth = TokenRefreshLayer::new(source(fetches.clone()))
        .layer(upstream(vec![503, 401], seen.clone()));
    let stack = tower::retry::RetryLayer::new(no_backoff(3).tower_policy()).layer(auth);
    let copies = Arc::new(AtomicUsize::new(0));
    let response = stack.oneshot(request(&copies, usize::MAX)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "the first token, then one refresh"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    );
    let attempts = Attempts::from_extensions(response.extensions()).unwrap();
    assert_eq!(
        (attempts.count(), attempts.retries(), attempts.replays()),
        (3, 1, 1)
    );
}
