//! A failed background refresh is logged as a warning, without the token.

mod cache_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::advance;
use towline_auth::TokenRefreshLayer;

use cache_support::{call, client, echo, source, token};

/// A tracing subscriber that writes each event's level and fields into one string.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        span.record(&mut Fields(&mut self.0.lock().unwrap()));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut output = self.0.lock().unwrap();
        output.push_str(&format!("\n{} ", event.metadata().level()));
        event.record(&mut Fields(&mut output));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

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
