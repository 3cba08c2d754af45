//! `RedisTokenSource` against a real redis-server: one token and one fetch for all replicas.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use towline_auth::{Token, TokenFuture, TokenSource};
use towline_redis::{OnFailure, RedisTokenSource};

/// A token endpoint: "token-1", "token-2", ..., each `lifetime` long, answering after `delay`.
#[derive(Clone)]
struct Endpoint {
    fetches: Arc<AtomicUsize>,
    lifetime: Duration,
    delay: Duration,
    rejected: Arc<Mutex<Vec<String>>>,
}

impl Endpoint {
    fn new(lifetime: Duration, delay: Duration) -> Self {
        Endpoint {
            fetches: Arc::default(),
            lifetime,
            delay,
            rejected: Arc::default(),
        }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl TokenSource for Endpoint {
    fn fetch(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Token::new(format!("token-{n}"))?.expires_in(self.lifetime))
        })
    }

    fn rejected(&self, token: &Token) {
        self.rejected
            .lock()
            .unwrap()
            .push(token.secret().to_owned());
    }
}

fn replicas(
    server: &RedisServer,
    endpoint: &Endpoint,
    n: usize,
    policy: OnFailure,
) -> Vec<Arc<RedisTokenSource<Endpoint>>> {
    let prefix = prefix();
    (0..n)
        .map(|_| {
            let source =
                RedisTokenSource::new(endpoint.clone(), redis(server, &prefix), "key", policy);
            Arc::new(source.poll(Duration::from_millis(5)))
        })
        .collect()
}

async fn fetch_all(sources: &[Arc<RedisTokenSource<Endpoint>>]) -> Vec<String> {
    let tasks: Vec<_> = sources
        .iter()
        .map(|source| {
            let source = source.clone();
            tokio::spawn(async move { source.fetch().await.unwrap().secret().to_owned() })
        })
        .collect();
    let mut secrets = Vec::new();
    for task in tasks {
        secrets.push(task.await.unwrap());
    }
    secrets
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_one_token_fetched_once() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let endpoint = Endpoint::new(Duration::from_secs(600), Duration::from_millis(50));
    let sources = replicas(&server, &endpoint, 4, open(4));
    let secrets = fetch_all(&sources).await;
    assert_eq!(endpoint.fetches(), 1, "one fetch under the lease");
    assert!(secrets.iter().all(|s| s == "token-1"), "{secrets:?}");
    // And it keeps its expiry: counted by Redis, carried as a lifetime.
    let token = sources[3].fetch().await.unwrap();
    let left = token.expiry().unwrap() - tokio::time::Instant::now();
    assert!(
        left > Duration::from_secs(590) && left <= Duration::from_secs(600),
        "{left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_token_is_replaced_by_one_replica_for_all() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let endpoint = Endpoint::new(Duration::from_millis(600), Duration::from_millis(20));
    let sources = replicas(&server, &endpoint, 4, open(4));
    fetch_all(&sources).await;
    // Past half its lifetime: due.
    tokio::time::sleep(Duration::from_millis(350)).await;
    fetch_all(&sources).await;
    tokio::time::sleep(Duration::from_millis(40)).await;
    let secrets = fetch_all(&sources).await;
    assert_eq!(endpoint.fetches(), 2, "one replacement for four replicas");
    assert!(secrets.iter().all(|s| s == "token-2"), "{secrets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_drops_the_stored_token_only_if_it_is_the_one_that_failed() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let endpoint = Endpoint::new(Duration::from_secs(600), Duration::ZERO);
    let sources = replicas(&server, &endpoint, 2, OnFailure::Closed);
    let first = sources[0].fetch().await.unwrap();
    // A late 401 for a token already replaced elsewhere changes nothing.
    sources[1].rejected(&Token::new("token-0").unwrap());
    assert_eq!(sources[1].fetch().await.unwrap().secret(), "token-1");
    assert_eq!(endpoint.fetches(), 1);
    // A 401 for the stored token drops it for everyone: one new fetch.
    sources[1].rejected(&first);
    assert_eq!(sources[1].fetch().await.unwrap().secret(), "token-2");
    assert_eq!(sources[0].fetch().await.unwrap().secret(), "token-2");
    assert_eq!(endpoint.fetches(), 2);
    // The replica that still holds the old token, told late, keeps the new one.
    sources[0].rejected(&first);
    assert_eq!(sources[0].fetch().await.unwrap().secret(), "token-2");
    assert_eq!(endpoint.fetches(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_through_the_layer_tells_the_source_which_token_failed() {
    use bytes::Bytes;
    use http_body_util::Empty;
    use tower::{Layer, ServiceExt, service_fn};

    let endpoint = Endpoint::new(Duration::from_secs(600), Duration::ZERO);
    let api = service_fn(|request: http::Request<Empty<Bytes>>| async move {
        let status = if request.headers()["authorization"] == "Bearer token-1" {
            401
        } else {
            200
        };
        Ok::<_, towline_core::BoxError>(http::Response::builder().status(status).body(()).unwrap())
    });
    let client = towline_auth::TokenRefreshLayer::new(endpoint.clone()).layer(api);
    let response = client
        .oneshot(http::Request::new(Empty::new()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(*endpoint.rejected.lock().unwrap(), ["token-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_the_fetch_closed_or_fetches_alone_open() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let endpoint = Endpoint::new(Duration::from_secs(600), Duration::ZERO);
    let closed = replicas(&server, &endpoint, 1, OnFailure::Closed);
    let open = replicas(&server, &endpoint, 1, open(2));
    server.stop();
    let error = closed[0].fetch().await.unwrap_err();
    assert!(
        towline_core::find::<towline_core::StoreUnavailable>(&*error).is_some(),
        "{error}"
    );
    assert_eq!(open[0].fetch().await.unwrap().secret(), "token-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_never_shows_a_token() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let endpoint = Endpoint::new(Duration::from_secs(600), Duration::ZERO);
    let sources = replicas(&server, &endpoint, 1, OnFailure::Closed);
    let token = sources[0].fetch().await.unwrap();
    sources[0].rejected(&token);
    let shown = format!("{:?}", sources[0]);
    assert!(!shown.contains("token-"), "{shown}");
}
