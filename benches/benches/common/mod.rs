//! What the `layers` bench and the `instructions` example share, so that both measure the
//! same calls: the request, the upstream, the retry policy users write for tower's `Retry`,
//! and the loopback server.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, Uri};
use http_body_util::Full;

/// The per-attempt (head) timeout of every timeout case.
pub(crate) const HEAD: Duration = Duration::from_secs(10);
/// The whole-call budget of every deadline case.
pub(crate) const BUDGET: Duration = Duration::from_secs(30);

/// A GET with two headers and an empty body.
pub(crate) fn request() -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::GET)
        .uri("https://api.example/v1/items")
        .header("accept", "application/json")
        .header("user-agent", "towline-bench")
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

/// The GET every loopback case sends to `url` (the server from [`server_thread`]).
pub(crate) fn loopback_request(url: &Uri) -> Request<Full<Bytes>> {
    Request::get(url.clone())
        .header("accept", "application/json")
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

/// An upstream that answers at once.
pub(crate) async fn answer(
    _request: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::new())))
}

/// The policy users write for tower's `Retry`: 5xx and errors, 3 retries, the request copied
/// per call.
#[derive(Clone)]
pub(crate) struct TowerFiveXx {
    retries_left: u32,
}

impl<B, E> tower::retry::Policy<Request<Full<Bytes>>, Response<B>, E> for TowerFiveXx {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _request: &mut Request<Full<Bytes>>,
        result: &mut Result<Response<B>, E>,
    ) -> Option<Self::Future> {
        let failed = match result {
            Ok(response) => response.status().is_server_error(),
            Err(_) => true,
        };
        if failed && self.retries_left > 0 {
            self.retries_left -= 1;
            Some(std::future::ready(()))
        } else {
            None
        }
    }

    fn clone_request(&mut self, request: &Request<Full<Bytes>>) -> Option<Request<Full<Bytes>>> {
        let mut copy = Request::new(request.body().clone());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.headers_mut() = request.headers().clone();
        Some(copy)
    }
}

/// tower's `Retry` with [`TowerFiveXx`].
pub(crate) fn tower_retry() -> tower::retry::RetryLayer<TowerFiveXx> {
    tower::retry::RetryLayer::new(TowerFiveXx { retries_left: 3 })
}

/// The type [`towline_stack`] builds.
pub(crate) type TowlineStack<S> = towline_timeout::WithDeadline<
    towline_retry::Retry<
        towline_ratelimit::RateLimit<
            towline_auth::TokenRefresh<
                towline_redirect::NoRedirect<
                    towline_timeout::Timeout<towline_envelope::ErrorBody<S>>,
                >,
            >,
        >,
    >,
>;

/// tower's `Retry` ([`TowerFiveXx`]) over tower's `Timeout` ([`HEAD`]) over `inner`.
pub(crate) fn tower_pair<S>(
    inner: S,
) -> tower::retry::Retry<TowerFiveXx, tower::timeout::Timeout<S>> {
    tower::ServiceBuilder::new()
        .layer(tower_retry())
        .layer(tower::timeout::TimeoutLayer::new(HEAD))
        .service(inner)
}

/// towline's whole standard stack over `inner`, outermost first: Deadline ([`BUDGET`]) >
/// Retry (standard policy, seeded) > RateLimit > Auth (`auth`) > NoRedirect > Timeout
/// ([`HEAD`]) > ErrorBody.
pub(crate) fn towline_stack<S>(inner: S, auth: towline_auth::TokenRefreshLayer) -> TowlineStack<S> {
    tower::ServiceBuilder::new()
        .layer(towline_timeout::DeadlineLayer::new(BUDGET))
        .layer(towline_retry::RetryLayer::with_policy(
            towline_retry::RetryPolicy::new().seed(7),
        ))
        .layer(towline_ratelimit::RateLimitLayer::new())
        .layer(auth)
        .layer(towline_redirect::NoRedirectLayer::new())
        .layer(towline_timeout::TimeoutLayer::new(HEAD))
        .layer(towline_envelope::ErrorBodyLayer::new())
        .service(inner)
}

/// [`TowerFiveXx`] with tower's default `TpsBudget` (towline's standard budget), used as
/// tower's docs show: a success deposits, a retry withdraws.
#[derive(Clone)]
pub(crate) struct TowerFiveXxBudget {
    policy: TowerFiveXx,
    budget: std::sync::Arc<tower::retry::budget::TpsBudget>,
}

impl<B, E> tower::retry::Policy<Request<Full<Bytes>>, Response<B>, E> for TowerFiveXxBudget {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        request: &mut Request<Full<Bytes>>,
        result: &mut Result<Response<B>, E>,
    ) -> Option<Self::Future> {
        use tower::retry::budget::Budget;
        let retry = self.policy.retry(request, result)?;
        if self.budget.withdraw() {
            Some(retry)
        } else {
            None
        }
    }

    fn clone_request(&mut self, request: &Request<Full<Bytes>>) -> Option<Request<Full<Bytes>>> {
        use tower::retry::budget::Budget;
        // Every call counts toward the budget; tower's `Retry` clones each call's request once.
        self.budget.deposit();
        <TowerFiveXx as tower::retry::Policy<_, Response<B>, E>>::clone_request(
            &mut self.policy,
            request,
        )
    }
}

/// tower's `Retry` with [`TowerFiveXxBudget`].
pub(crate) fn tower_retry_budget() -> tower::retry::RetryLayer<TowerFiveXxBudget> {
    tower::retry::RetryLayer::new(TowerFiveXxBudget {
        policy: TowerFiveXx { retries_left: 3 },
        budget: std::sync::Arc::default(),
    })
}

/// Starts the testkit server on a thread of its own, as a real server would be: the client's
/// figures then hold the client's work only, and a round trip crosses threads, as in the
/// issue's setup (with the server on the client's thread, its work was counted in every figure
/// and a round trip was faster than any across threads).
/// Returns the URL to call; the server lives until the process ends.
pub(crate) fn server_thread() -> Uri {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the server's runtime");
        rt.block_on(async {
            let server = towline_testkit::TestServer::start().await;
            server.route("/items", towline_testkit::Reply::ok().body("[]"));
            // Hundreds of thousands of calls: an unbounded request log would grow the heap
            // (page faults) under the later cases and tilt the comparison.
            server.set_log_limit(1_000);
            sender
                .send(server.url("/items"))
                .expect("the bench waits for the URL");
            std::future::pending::<()>().await;
        });
    });
    receiver.recv().expect("the server thread starts")
}
