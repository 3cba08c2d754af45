//! Each token fetch emits one `towline.auth.refresh` event: why it was fetched, how long it
//! took and how it ended, and never a byte of the token.

mod cache_support;
mod capture;

use std::time::Duration;

use http::{Request, Response};
use tokio::time::{advance, sleep};
use tower::{BoxError, service_fn, util::BoxCloneSyncService};
use towline_auth::TokenRefreshLayer;

use cache_support::{Body, call, client, source, token};
use capture::Capture;

/// Accepts every token but `token-3`, which it answers with a 401; echoes the token it got.
fn refusing_token_3() -> cache_support::Upstream {
    BoxCloneSyncService::new(service_fn(|request: Request<Body>| async move {
        let auth = request.headers().get("authorization").cloned();
        let mut response = Response::new(());
        if auth.as_ref().is_some_and(|auth| auth == "Bearer token-3") {
            *response.status_mut() = http::StatusCode::UNAUTHORIZED;
        } else if let Some(auth) = auth {
            response.headers_mut().insert("x-seen", auth);
        }
        Ok::<_, BoxError>(response)
    }))
}

/// The value of `field` in a captured line (`field=value `), quotes removed.
fn field<'a>(line: &'a str, field: &str) -> &'a str {
    let start = line
        .find(&format!("{field}="))
        .unwrap_or_else(|| panic!("no {field} in {line}"))
        + field.len()
        + 1;
    let rest = &line[start..];
    rest[..rest.find(' ').unwrap_or(rest.len())].trim_matches('"')
}

#[tokio::test(start_paused = true)]
async fn each_token_fetch_emits_one_refresh_event_with_its_reason_time_and_outcome() {
    let capture = Capture::default();
    // Global: the only test in this binary, and the fetch runs in a task of its own (see
    // `no_token_bytes_in_tracing_debug_or_errors` for why not `set_default`).
    tracing::subscriber::set_global_default(capture.clone()).unwrap();
    let (source, fetches) = source(|n| async move {
        // A token endpoint that takes 50 ms.
        sleep(Duration::from_millis(50)).await;
        match n {
            2 => Err("token endpoint down".into()),
            _ => token(n, Some(Duration::from_secs(900))),
        }
    });
    let client = client(&TokenRefreshLayer::new(source), refusing_token_3());
    // The first call fetches.
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    // Inside the refresh margin: the call uses token-1, a background refresh fails.
    advance(Duration::from_secs(850)).await;
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    fetches.reach(2).await;
    advance(Duration::from_millis(50)).await;
    tokio::task::yield_now().await;
    // Past the expiry: the call waits for token-3, which the server refuses: token-4.
    advance(Duration::from_secs(60)).await;
    assert_eq!(call(&client).await.unwrap(), "Bearer token-4");
    assert_eq!(fetches.count(), 4);

    let output = capture.0.lock().unwrap().clone();
    let events: Vec<(&str, &str, &str)> = output
        .lines()
        .filter(|line| line.starts_with("INFO towline.auth.refresh "))
        .map(|line| {
            (
                field(line, "towline.auth.reason"),
                field(line, "towline.auth.outcome"),
                field(line, "towline.auth.duration_ms"),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("initial", "ok", "50"),
            ("expiring", "other", "50"),
            ("expired", "ok", "50"),
            ("rejected", "ok", "50"),
        ],
        "{output}"
    );
    for n in 1..=4 {
        let secret = format!("token-{n}");
        assert!(!output.contains(&secret), "{secret} leaked: {output}");
    }
}
