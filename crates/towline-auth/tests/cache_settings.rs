//! The token cache's fetch timeout: a hung token endpoint is given up on, once, and the
//! next call fetches again; no duration setting panics.

mod cache_support;

use std::time::Duration;

use tokio::time::{Instant, advance};
use tower::BoxError;
use towline_auth::TokenRefreshLayer;
use towline_core::{AuthReason, Error};

use cache_support::{call, client, echo, source, token};

const S: Duration = Duration::from_secs(1);

#[tokio::test(start_paused = true)]
async fn a_hung_fetch_ends_at_fetch_timeout_and_the_next_call_fetches_again() {
    // Fetch 1 never answers; the others do.
    let (source, fetches) = source(|n| async move {
        if n == 1 {
            std::future::pending::<()>().await;
        }
        token(n, None)
    });
    let layer = TokenRefreshLayer::builder(source)
        .fetch_timeout(5 * S)
        .build();
    let client = client(&layer, echo());
    let start = Instant::now();
    let error = Error::from(call(&client).await.unwrap_err());
    assert_eq!(Instant::now() - start, 5 * S, "ended by the fetch timeout");
    assert_eq!(error.auth_reason(), Some(AuthReason::SourceFailed));
    assert!(error.find::<tokio::time::error::Elapsed>().is_some());
    // The message of every link of the chain, then the debug form.
    let mut text = format!("{error:?}");
    let mut link: Option<&dyn std::error::Error> = Some(&error);
    while let Some(error) = link {
        text.push_str(&format!(" / {error}"));
        link = error.source();
    }
    assert!(
        text.contains("the token fetch took longer than 5s"),
        "{text}"
    );
    assert!(!text.contains("token-"), "{text}");
    assert_eq!(fetches.count(), 1);
    assert_eq!(call(&client).await.unwrap(), "Bearer token-2");
    assert_eq!(fetches.count(), 2, "the next call fetched again");
}

#[tokio::test(start_paused = true)]
async fn the_default_fetch_timeout_ends_a_hung_fetch_after_30_s() {
    let (source, fetches) = source(|_| std::future::pending::<Result<_, BoxError>>());
    let client = client(&TokenRefreshLayer::new(source), echo());
    let start = Instant::now();
    let error = call(&client).await.unwrap_err();
    assert_eq!(Instant::now() - start, 30 * S);
    assert_eq!(
        Error::from(error).auth_reason(),
        Some(AuthReason::SourceFailed)
    );
    assert_eq!(fetches.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn fetch_timeout_duration_max_does_not_panic() {
    let (source, fetches) = source(|n| async move {
        tokio::time::sleep(3600 * S).await;
        token(n, Some(Duration::from_secs(u64::MAX)))
    });
    let layer = TokenRefreshLayer::builder(source)
        .fetch_timeout(Duration::MAX)
        .refresh_margin(Duration::MAX)
        .build();
    let client = client(&layer, echo());
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    advance(86_400 * S).await;
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    assert_eq!(fetches.count(), 1);
}
