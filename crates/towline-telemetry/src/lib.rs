//! Telemetry by the OpenTelemetry conventions: a span for each call and a client span for
//! each attempt, events for every decision, metrics, and a timeline of a call.
//!
//! - [`CallSpanLayer`] (outermost) and [`AttemptSpanLayer`] (below the retry layer) make the
//!   spans through `tracing`, named and attributed by the OpenTelemetry HTTP client
//!   conventions, so that `tracing-opentelemetry` exports them as they are.
//! - towline's layers emit an event for each decision (INFO; WARN when a circuit opens): a
//!   retry and why, a retry the budget refused, a wait at a gate, a token fetch (never the
//!   token), a circuit's change of state. Their names and fields are in [`names`].
//! - [`OtelMetrics`] (feature `otel`) is a `tracing` layer that records
//!   `http.client.request.duration` per attempt, a duration per call, and counters of those
//!   decisions through the `opentelemetry` API; your SDK exports them.
//! - [`Timeline`] is a `tracing` layer that keeps a compact, printable timeline of each call.
//!
//! Nothing is recorded, and no span is made, unless a subscriber enables `towline` at INFO.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use http::{Request, Response, StatusCode};
//! use tower::{BoxError, ServiceBuilder, ServiceExt};
//! use tracing_subscriber::layer::SubscriberExt;
//! use towline_retry::{Backoff, RetryLayer, RetryPolicy};
//! use towline_telemetry::{AttemptSpanLayer, CallSpanLayer, Happening, Timeline};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let timeline = Timeline::new();
//! let _guard =
//!     tracing::subscriber::set_default(tracing_subscriber::registry().with(timeline.clone()));
//!
//! let answers = std::sync::Arc::new(std::sync::Mutex::new(vec![200, 503]));
//! let client = ServiceBuilder::new()
//!     .layer(CallSpanLayer::new())
//!     .layer(RetryLayer::with_policy(
//!         RetryPolicy::new().backoff(Backoff::constant(Duration::from_millis(100))),
//!     ))
//!     .layer(AttemptSpanLayer::new())
//!     .service_fn(move |_: Request<String>| {
//!         let status = answers.lock().unwrap().pop().unwrap();
//!         async move {
//!             let mut response = Response::new(String::new());
//!             *response.status_mut() = StatusCode::from_u16(status).unwrap();
//!             Ok::<_, BoxError>(response)
//!         }
//!     });
//! let request = Request::get("http://api.example/items").body(String::new()).unwrap();
//! client.oneshot(request).await.unwrap();
//!
//! let call = &timeline.take()[0];
//! assert_eq!(call.outcome, "200");
//! assert!(matches!(call.entries[0].what, Happening::Attempt { number: 1, .. }));
//! println!("{call}");
//! # }
//! ```

mod attempt;
mod call;
mod fields;
mod future;
#[cfg(feature = "otel")]
mod metrics;
pub mod names;
mod outcome;
mod service;
mod timeline;
mod url;

pub use attempt::{AttemptSpan, AttemptSpanLayer};
pub use call::{CallSpan, CallSpanLayer};
pub use future::ResponseFuture;
#[cfg(feature = "otel")]
pub use metrics::OtelMetrics;
pub use service::Spanned;
pub use timeline::{CallTimeline, Entry, Happening, TIMELINE_CALLS, TIMELINE_ENTRIES, Timeline};
