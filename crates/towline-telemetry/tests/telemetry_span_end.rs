//! A call's span ends with the call, also when a token fetch (a task of its own) put its
//! event in it. Alone in its binary: it installs a global subscriber.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use http::{Request, Response, StatusCode};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use towline_telemetry::{CallSpanLayer, Timeline};
use tracing_subscriber::layer::SubscriberExt;

fn upstream(
    replies: Vec<(u16, Vec<(&'static str, &'static str)>)>,
) -> impl Service<Request<String>, Response = Response<String>, Error = BoxError, Future: Send> + Clone
{
    let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
    tower::service_fn(move |_: Request<String>| {
        let (status, _headers) = replies.lock().unwrap().pop_front().expect("a reply");
        async move {
            let response = Response::builder().status(StatusCode::from_u16(status).unwrap());
            Ok::<_, BoxError>(response.body(String::new()).unwrap())
        }
    })
}

/// The token fetch runs in a task of its own and puts its event in the span of the call that
/// waits for it: it must let go of that span before the call hears, or the call's span (and
/// its exported duration) would end when the task is dropped, after the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_a_call_that_waited_for_a_token_ends_its_span_with_the_call() {
    let timeline = Timeline::new();
    let subscriber = tracing_subscriber::registry().with(timeline.clone());
    let _guard = tracing::subscriber::set_global_default(subscriber);
    let mut late = 0;
    for _ in 0..200 {
        // A new layer each time: each call waits for a first fetch.
        let source = towline_auth::from_fn(|| async {
            tokio::task::yield_now().await;
            towline_auth::Token::new("t")
        });
        let client = ServiceBuilder::new()
            .layer(CallSpanLayer::new())
            .layer(towline_auth::TokenRefreshLayer::new(source))
            .service(upstream(vec![(200, vec![])]));
        let request = Request::get("https://api.example/me")
            .body(String::new())
            .unwrap();
        client.oneshot(request).await.unwrap();
        // The call is over: its span has ended, with nothing left holding it.
        if timeline.take().len() != 1 {
            late += 1;
        }
    }
    assert_eq!(late, 0, "calls whose span outlived them");
}
