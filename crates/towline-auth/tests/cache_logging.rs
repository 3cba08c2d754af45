//! A failed background refresh is logged as a warning, without the token.

mod cache_support;
mod capture;

use std::time::Duration;

use tokio::time::advance;
use towline_auth::TokenRefreshLayer;

use cache_support::{call, client, echo, source, token};
use capture::Capture;

#[tokio::test(start_paused = true)]
async fn a_failed_background_refresh_is_logged_as_a_warning_without_the_token() {
    let capture = Capture::default();
    // Global: the only test in this binary, and the refresh runs in a task of its own.
    tracing::subscriber::set_global_default(capture.clone()).unwrap();
    let (source, fetches) = source(|n| async move {
        match n {
            1 => token(1, Some(Duration::from_secs(900))),
            _ => Err("token endpoint down".into()),
        }
    });
    let client = client(&TokenRefreshLayer::new(source), echo());
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    advance(Duration::from_secs(850)).await;
    assert_eq!(call(&client).await.unwrap(), "Bearer token-1");
    tokio::task::yield_now().await;
    assert_eq!(fetches.count(), 2);
    let output = capture.0.lock().unwrap().clone();
    let warning = output
        .lines()
        .find(|line| line.starts_with("WARN") && line.contains("token fetch failed"))
        .unwrap_or_else(|| panic!("no warning: {output}"));
    assert!(warning.contains("token endpoint down"), "{warning}");
    assert!(warning.contains("retry_in=1s"), "{warning}");
    assert!(!output.contains("token-1"), "the token leaked: {output}");
}
