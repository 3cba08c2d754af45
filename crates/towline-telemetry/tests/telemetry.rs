//! The scripted scenario, exported through OpenTelemetry's own SDK with in-memory
//! exporters: a 503, then a 429 with `Retry-After: 1`, then a 200.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use opentelemetry::trace::{SpanKind, TracerProvider as _};
use opentelemetry::{Key, KeyValue, Value};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use towline_retry::{Backoff, RetryLayer, RetryPolicy};
use towline_telemetry::{AttemptSpanLayer, CallSpanLayer, Happening, OtelMetrics, Timeline, names};
use tracing_subscriber::layer::SubscriberExt;

/// The exporters and the timeline one scenario fills.
struct Exported {
    spans: Vec<SpanData>,
    metrics: Vec<ResourceMetrics>,
    timeline: Timeline,
}

/// Runs `scenario` under a subscriber exporting spans and metrics through the SDK.
async fn exported<F: Future<Output = ()>>(scenario: F) -> Exported {
    let span_exporter = InMemorySpanExporter::default();
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(span_exporter.clone())
        .build();
    let metric_exporter = InMemoryMetricExporter::default();
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metric_exporter.clone()).build())
        .build();
    let timeline = Timeline::new();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("test")))
        .with(OtelMetrics::new(
            &opentelemetry::metrics::MeterProvider::meter(&meter_provider, "towline"),
        ))
        .with(timeline.clone());
    let guard = tracing::subscriber::set_default(subscriber);
    scenario.await;
    drop(guard);
    tracer_provider.force_flush().unwrap();
    meter_provider.force_flush().unwrap();
    Exported {
        spans: span_exporter.get_finished_spans().unwrap(),
        metrics: metric_exporter.get_finished_metrics().unwrap(),
        timeline,
    }
}

/// An upstream answering `replies` in order, each a status and headers.
fn upstream(
    replies: Vec<(u16, Vec<(&'static str, &'static str)>)>,
) -> impl Service<Request<String>, Response = Response<String>, Error = BoxError, Future: Send> + Clone
{
    let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
    tower::service_fn(move |_: Request<String>| {
        let (status, headers) = replies.lock().unwrap().pop_front().expect("a reply");
        async move {
            let mut response = Response::builder().status(StatusCode::from_u16(status).unwrap());
            for (name, value) in headers {
                response = response.header(name, value);
            }
            Ok::<_, BoxError>(response.body(String::new()).unwrap())
        }
    })
}

fn retry() -> RetryLayer {
    RetryLayer::with_policy(
        RetryPolicy::new()
            .backoff(Backoff::constant(Duration::from_millis(100)))
            .no_budget(),
    )
}

/// 503, then 429 + `Retry-After: 1`, then 200, under the call and attempt spans.
async fn scripted_call() {
    let client = ServiceBuilder::new()
        .layer(CallSpanLayer::new())
        .layer(retry())
        .layer(AttemptSpanLayer::new())
        .service(upstream(vec![
            (503, vec![]),
            (429, vec![("retry-after", "1")]),
            (200, vec![]),
        ]));
    let request = Request::get("https://user:pw@api.example/v1/items?key=secret")
        .body(String::new())
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == Key::from(key.to_owned()))
        .map(|kv| &kv.value)
}

#[tokio::test(start_paused = true)]
async fn telemetry_spans_follow_the_http_client_conventions() {
    let exported = exported(scripted_call()).await;
    let attempts: Vec<&SpanData> = exported
        .spans
        .iter()
        .filter(|span| span.span_kind == SpanKind::Client)
        .collect();
    assert_eq!(attempts.len(), 3, "one client span per attempt");
    let call = exported
        .spans
        .iter()
        .find(|span| span.name == names::CALL_SPAN)
        .expect("the call span");
    assert_eq!(call.span_kind, SpanKind::Internal);
    assert_eq!(
        exported.spans.len(),
        4,
        "the call and its three attempts, nothing else"
    );

    let resend: Vec<Option<&Value>> = attempts
        .iter()
        .map(|span| attribute(span, names::RESEND_COUNT))
        .collect();
    assert_eq!(resend, [None, Some(&Value::I64(1)), Some(&Value::I64(2))]);
    let statuses: Vec<Option<&Value>> = attempts
        .iter()
        .map(|span| attribute(span, names::STATUS_CODE))
        .collect();
    assert_eq!(
        statuses,
        [
            Some(&Value::I64(503)),
            Some(&Value::I64(429)),
            Some(&Value::I64(200))
        ]
    );
    let errors: Vec<Option<String>> = attempts
        .iter()
        .map(|span| attribute(span, names::ERROR_TYPE).map(|v| v.as_str().into_owned()))
        .collect();
    assert_eq!(errors, [Some("503".into()), Some("429".into()), None]);
    for span in &attempts {
        assert_eq!(span.name, "GET", "a client span is named by its method");
        assert_eq!(span.parent_span_id, call.span_context.span_id());
        assert_eq!(
            attribute(span, names::METHOD).map(|v| v.as_str().into_owned()),
            Some("GET".into())
        );
        assert_eq!(
            attribute(span, names::SERVER_ADDRESS).map(|v| v.as_str().into_owned()),
            Some("api.example".into())
        );
        assert_eq!(attribute(span, names::SERVER_PORT), Some(&Value::I64(443)));
        assert_eq!(
            attribute(span, names::URL_FULL).map(|v| v.as_str().into_owned()),
            Some("https://REDACTED:REDACTED@api.example/v1/items?key=REDACTED".into())
        );
    }
    assert_eq!(attribute(call, names::ATTEMPTS), Some(&Value::I64(3)));
    assert_eq!(attribute(call, names::STATUS_CODE), Some(&Value::I64(200)));

    // The two retry decisions, as events on the call span, with their reasons and delays.
    let retries: Vec<(String, Option<Value>)> = call
        .events
        .iter()
        .filter(|event| {
            event
                .attributes
                .iter()
                .any(|kv| kv.key.as_str() == names::RETRY_REASON)
        })
        .map(|event| {
            let get = |key: &str| {
                event
                    .attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == key)
                    .map(|kv| kv.value.clone())
            };
            (
                get(names::RETRY_REASON).unwrap().as_str().into_owned(),
                get(names::RETRY_DELAY_MS),
            )
        })
        .collect();
    assert_eq!(
        retries,
        [
            ("503".to_owned(), Some(Value::I64(100))),
            ("429".to_owned(), Some(Value::I64(1000))),
        ],
        "a backoff's delay after the 503, the hinted second after the 429"
    );
}

fn histogram_points(metrics: &[ResourceMetrics], name: &str) -> Vec<(u64, f64, Vec<KeyValue>)> {
    let mut points = Vec::new();
    for resource in metrics {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics().filter(|m| m.name() == name) {
                if let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = metric.data() {
                    for point in histogram.data_points() {
                        points.push((
                            point.count(),
                            point.sum(),
                            point.attributes().cloned().collect(),
                        ));
                    }
                }
            }
        }
    }
    points
}

fn counter_points(metrics: &[ResourceMetrics], name: &str) -> Vec<(u64, Vec<KeyValue>)> {
    let mut points = Vec::new();
    for resource in metrics {
        for scope in resource.scope_metrics() {
            for metric in scope.metrics().filter(|m| m.name() == name) {
                if let AggregatedMetrics::U64(MetricData::Sum(sum)) = metric.data() {
                    for point in sum.data_points() {
                        points.push((point.value(), point.attributes().cloned().collect()));
                    }
                }
            }
        }
    }
    points
}

#[tokio::test(start_paused = true)]
async fn telemetry_metrics_count_each_attempt_the_call_and_each_retry() {
    let exported = exported(scripted_call()).await;
    let attempts = histogram_points(&exported.metrics, names::CLIENT_REQUEST_DURATION);
    assert_eq!(
        attempts.iter().map(|p| p.0).sum::<u64>(),
        3,
        "three duration points"
    );
    let statuses: Vec<i64> = attempts
        .iter()
        .flat_map(|(_, _, attributes)| {
            attributes
                .iter()
                .filter(|kv| kv.key.as_str() == names::STATUS_CODE)
                .map(|kv| match kv.value {
                    Value::I64(status) => status,
                    _ => panic!("a status is an integer"),
                })
        })
        .collect();
    let mut statuses = statuses;
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 429, 503]);
    for (_, _, attributes) in &attempts {
        assert!(
            attributes
                .iter()
                .all(|kv| kv.key.as_str() != names::URL_FULL),
            "no URL in a metric: bounded cardinality"
        );
    }

    let calls = histogram_points(&exported.metrics, names::CALL_DURATION);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, 1, "one call duration");
    assert!(
        (calls[0].1 - 1.1).abs() < 1e-6,
        "the call took the backoff and the hinted second: {}",
        calls[0].1
    );

    let mut retries: Vec<(u64, String)> = counter_points(&exported.metrics, names::RETRIES)
        .into_iter()
        .map(|(count, attributes)| (count, attributes[0].value.as_str().into_owned()))
        .collect();
    retries.sort();
    assert_eq!(retries, [(1, "429".to_owned()), (1, "503".to_owned())]);
}

#[tokio::test(start_paused = true)]
async fn telemetry_timeline_shows_each_attempt_and_wait() {
    let exported = exported(scripted_call()).await;
    let calls = exported.timeline.take();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.outcome, "200");
    assert_eq!(call.duration, Duration::from_millis(1100));
    let what: Vec<&Happening> = call.entries.iter().map(|entry| &entry.what).collect();
    assert!(matches!(what[0], Happening::Attempt { number: 1, outcome, .. } if outcome == "503"));
    assert!(
        matches!(what[1], Happening::Retry { reason, delay } if reason == "503" && *delay == Duration::from_millis(100))
    );
    assert!(matches!(what[2], Happening::Attempt { number: 2, outcome, .. } if outcome == "429"));
    assert!(
        matches!(what[3], Happening::Retry { reason, delay } if reason == "429" && *delay == Duration::from_secs(1))
    );
    assert!(matches!(what[4], Happening::Attempt { number: 3, outcome, .. } if outcome == "200"));
    assert_eq!(call.entries[4].at, Duration::from_millis(1100));
    let printed = call.to_string();
    assert!(
        printed.starts_with("GET api.example -> 200 in 1100 ms"),
        "{printed}"
    );
}

#[tokio::test(start_paused = true)]
async fn telemetry_exports_no_byte_of_the_token() {
    let secret = "s3cr3t-token-value";
    let fetches = Arc::new(Mutex::new(0));
    let counted = fetches.clone();
    let exported = exported(async move {
        let fetches = counted;
        let source = towline_auth::from_fn(move || {
            let fetches = fetches.clone();
            async move {
                let mut n = fetches.lock().unwrap();
                *n += 1;
                towline_auth::Token::new(format!("{secret}-{n}"))
            }
        });
        let client = ServiceBuilder::new()
            .layer(CallSpanLayer::new())
            .layer(retry())
            .layer(AttemptSpanLayer::new())
            .layer(towline_auth::TokenRefreshLayer::new(source))
            .service(upstream(vec![(401, vec![]), (200, vec![])]));
        let request = Request::get("https://api.example/me")
            .body(String::new())
            .unwrap();
        let response = client.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
    })
    .await;
    assert!(!exported.spans.is_empty());
    let everything = format!("{:?}{:?}", exported.spans, exported.metrics);
    assert!(
        !everything.contains(secret),
        "a token reached the exporters"
    );
    assert_eq!(*fetches.lock().unwrap(), 2, "the 401 made a refresh");
    assert!(
        everything.contains("401"),
        "the refreshed attempt was exported"
    );
}

#[tokio::test(start_paused = true)]
async fn telemetry_marks_an_attempt_dropped_unfinished_as_cancelled() {
    let exported = exported(async {
        let hangs = tower::service_fn(|_: Request<String>| async {
            std::future::pending::<Result<Response<String>, BoxError>>().await
        });
        let client = ServiceBuilder::new()
            .layer(CallSpanLayer::new())
            .layer(AttemptSpanLayer::new())
            .service(hangs);
        let call = client.oneshot(
            Request::get("http://api.example/")
                .body(String::new())
                .unwrap(),
        );
        let gave_up = tokio::time::timeout(Duration::from_secs(1), call).await;
        assert!(gave_up.is_err());
    })
    .await;
    assert_eq!(exported.spans.len(), 2);
    for span in &exported.spans {
        assert_eq!(
            attribute(span, names::ERROR_TYPE).map(|v| v.as_str().into_owned()),
            Some("cancelled".into()),
            "{}",
            span.name
        );
    }
}

#[tokio::test(start_paused = true)]
async fn telemetry_shows_a_call_held_at_a_closed_gate() {
    let exported = exported(async {
        let client = ServiceBuilder::new()
            .layer(CallSpanLayer::new())
            .layer(AttemptSpanLayer::new())
            .layer(towline_ratelimit::RateLimitLayer::new().spread(Duration::ZERO))
            .service(upstream(vec![
                (429, vec![("retry-after", "2")]),
                (200, vec![]),
            ]));
        let request = || {
            Request::get("http://api.example/")
                .body(String::new())
                .unwrap()
        };
        let first = client.clone().oneshot(request()).await.unwrap();
        assert_eq!(first.status(), 429);
        let second = client.oneshot(request()).await.unwrap();
        assert_eq!(second.status(), 200);
    })
    .await;
    let calls = exported.timeline.take();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[1].entries[0].what,
        Happening::GateWait {
            reason: "closed".into(),
            wait: Duration::from_secs(2)
        }
    );
    let waits = counter_points(&exported.metrics, names::GATE_WAITS);
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0].0, 1);
    assert_eq!(waits[0].1[0].value.as_str(), "closed");
}

/// The events on every exported span that carry `key`, each as its attributes.
fn events_with(spans: &[SpanData], key: &str) -> Vec<Vec<KeyValue>> {
    spans
        .iter()
        .flat_map(|span| span.events.iter())
        .filter(|event| event.attributes.iter().any(|kv| kv.key.as_str() == key))
        .map(|event| event.attributes.clone())
        .collect()
}

fn value_of(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

#[tokio::test(start_paused = true)]
async fn telemetry_a_token_refresh_exports_its_event_and_counter_and_no_byte_of_the_token() {
    let secret = "Zq9-unguessable-token";
    let exported = exported(async move {
        let fetches = Arc::new(Mutex::new(0));
        let source = towline_auth::from_fn(move || {
            let fetches = fetches.clone();
            async move {
                let n = {
                    let mut n = fetches.lock().unwrap();
                    *n += 1;
                    *n
                };
                // A token endpoint that takes 40 ms.
                tokio::time::sleep(Duration::from_millis(40)).await;
                towline_auth::Token::new(format!("{secret}-{n}"))
            }
        });
        let client = ServiceBuilder::new()
            .layer(CallSpanLayer::new())
            .layer(retry())
            .layer(AttemptSpanLayer::new())
            .layer(towline_auth::TokenRefreshLayer::new(source))
            .service(upstream(vec![(401, vec![]), (200, vec![])]));
        let request = Request::get("https://api.example/me")
            .body(String::new())
            .unwrap();
        let response = client.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
    })
    .await;

    // One event per fetch: the first token, then the one after the 401.
    let events: Vec<(Option<String>, Option<String>)> =
        events_with(&exported.spans, names::AUTH_REFRESH_REASON)
            .iter()
            .map(|attributes| {
                (
                    value_of(attributes, names::AUTH_REFRESH_REASON),
                    value_of(attributes, names::AUTH_REFRESH_OUTCOME),
                )
            })
            .collect();
    assert_eq!(
        events,
        [
            (Some("initial".into()), Some("ok".into())),
            (Some("rejected".into()), Some("ok".into())),
        ]
    );
    for attributes in events_with(&exported.spans, names::AUTH_REFRESH_REASON) {
        let duration = attributes
            .iter()
            .find(|kv| kv.key.as_str() == names::AUTH_REFRESH_DURATION_MS)
            .map(|kv| kv.value.clone());
        assert_eq!(duration, Some(Value::I64(40)));
    }

    let mut refreshes: Vec<(u64, Option<String>, Option<String>)> =
        counter_points(&exported.metrics, names::AUTH_REFRESHES)
            .into_iter()
            .map(|(count, attributes)| {
                (
                    count,
                    value_of(&attributes, names::AUTH_REFRESH_REASON),
                    value_of(&attributes, names::AUTH_REFRESH_OUTCOME),
                )
            })
            .collect();
    refreshes.sort();
    assert_eq!(
        refreshes,
        [
            (1, Some("initial".into()), Some("ok".into())),
            (1, Some("rejected".into()), Some("ok".into())),
        ]
    );

    let calls = exported.timeline.take();
    assert_eq!(calls.len(), 1);
    let refreshes: Vec<&Happening> = calls[0]
        .entries
        .iter()
        .map(|entry| &entry.what)
        .filter(|what| matches!(what, Happening::TokenRefresh { .. }))
        .collect();
    assert_eq!(
        refreshes,
        [
            &Happening::TokenRefresh {
                reason: "initial".into(),
                outcome: "ok".into(),
                took: Duration::from_millis(40),
            },
            &Happening::TokenRefresh {
                reason: "rejected".into(),
                outcome: "ok".into(),
                took: Duration::from_millis(40),
            },
        ]
    );

    // Span attributes, span events and metrics, the timeline printed and debugged.
    let everything = format!(
        "{:?}{:?}{}{:?}",
        exported.spans, exported.metrics, calls[0], calls[0]
    );
    assert!(everything.contains("rejected"), "the refresh was exported");
    assert!(
        !everything.contains(secret),
        "a token reached the exporters: {everything}"
    );
}

#[tokio::test(start_paused = true)]
async fn telemetry_a_circuit_opening_shows_one_state_event() {
    let exported = exported(async {
        let breaker = towline_breaker::CircuitBreakerLayer::with_settings(
            towline_breaker::Settings::new().consecutive_failures(2),
        )
        .unwrap();
        let client = ServiceBuilder::new()
            .layer(CallSpanLayer::new())
            .layer(breaker)
            .layer(AttemptSpanLayer::new())
            .service(upstream(vec![(500, vec![]), (500, vec![])]));
        let request = || {
            Request::get("http://api.example/")
                .body(String::new())
                .unwrap()
        };
        for _ in 0..2 {
            let response = client.clone().oneshot(request()).await.unwrap();
            assert_eq!(response.status(), 500);
        }
        // Open: refused at once, not sent, and no further event.
        for _ in 0..3 {
            assert!(client.clone().oneshot(request()).await.is_err());
        }
    })
    .await;

    let events = events_with(&exported.spans, names::CIRCUIT_TO);
    assert_eq!(events.len(), 1, "one transition, one event: {events:?}");
    assert_eq!(
        (
            value_of(&events[0], names::CIRCUIT_KEY),
            value_of(&events[0], names::CIRCUIT_FROM),
            value_of(&events[0], names::CIRCUIT_TO),
        ),
        (
            Some("api.example".into()),
            Some("closed".into()),
            Some("open".into())
        )
    );
    assert!(
        events[0]
            .iter()
            .any(|kv| kv.key.as_str() == names::CIRCUIT_BREAK_MS && kv.value == Value::I64(5000))
    );

    let transitions = counter_points(&exported.metrics, names::CIRCUIT_TRANSITIONS);
    assert_eq!(transitions.len(), 1);
    assert_eq!(transitions[0].0, 1);
    assert_eq!(
        (
            value_of(&transitions[0].1, names::CIRCUIT_FROM),
            value_of(&transitions[0].1, names::CIRCUIT_TO),
        ),
        (Some("closed".into()), Some("open".into()))
    );

    let calls = exported.timeline.take();
    assert_eq!(calls.len(), 5);
    let changes: Vec<(usize, &Happening)> = calls
        .iter()
        .enumerate()
        .flat_map(|(n, call)| call.entries.iter().map(move |entry| (n, &entry.what)))
        .filter(|(_, what)| matches!(what, Happening::CircuitChange { .. }))
        .collect();
    assert_eq!(
        changes,
        [(
            1,
            &Happening::CircuitChange {
                from: "closed".into(),
                to: "open".into(),
                break_for: Some(Duration::from_secs(5)),
            }
        )],
        "in the timeline of the call whose failure opened it"
    );
    assert!(
        calls[1]
            .to_string()
            .contains("circuit closed -> open for 5000 ms")
    );
}

#[tokio::test(start_paused = true)]
async fn telemetry_a_hedge_shows_its_event_counter_and_timeline_entry() {
    let exported = exported(async {
        // The first copy answers after 2 s, the hedge at once.
        let sent = Arc::new(Mutex::new(0u32));
        let upstream = tower::service_fn({
            let sent = sent.clone();
            move |_: Request<String>| {
                let nth = {
                    let mut sent = sent.lock().unwrap();
                    *sent += 1;
                    *sent
                };
                async move {
                    if nth == 1 {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    Ok::<_, BoxError>(Response::new(String::new()))
                }
            }
        });
        let client = ServiceBuilder::new()
            .layer(CallSpanLayer::new())
            .layer(towline_retry::HedgeLayer::after(Duration::from_millis(50)))
            .layer(AttemptSpanLayer::new())
            .service(upstream);
        let request = Request::get("http://api.example/items")
            .body(String::new())
            .unwrap();
        let response = client.oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(*sent.lock().unwrap(), 2, "the first copy and the hedge");
    })
    .await;

    let events = events_with(&exported.spans, names::HEDGE_DELAY_MS);
    assert_eq!(events.len(), 1, "one hedge, one event: {events:?}");
    assert!(
        events[0]
            .iter()
            .any(|kv| kv.key.as_str() == names::HEDGE_DELAY_MS && kv.value == Value::I64(50))
    );
    assert_eq!(
        value_of(&events[0], names::METHOD).as_deref(),
        Some("GET"),
        "{events:?}"
    );
    assert!(
        events[0]
            .iter()
            .any(|kv| kv.key.as_str() == names::RESEND_COUNT && kv.value == Value::I64(1))
    );

    let hedges = counter_points(&exported.metrics, names::HEDGES);
    assert_eq!(hedges.len(), 1);
    assert_eq!(hedges[0].0, 1);

    let calls = exported.timeline.take();
    assert_eq!(calls.len(), 1);
    let hedge = calls[0]
        .entries
        .iter()
        .find(|entry| matches!(entry.what, Happening::Hedge { .. }))
        .expect("the hedge is in the timeline");
    assert_eq!(
        (hedge.at, &hedge.what),
        (
            Duration::from_millis(50),
            &Happening::Hedge {
                after: Duration::from_millis(50)
            }
        )
    );
    assert!(
        calls[0]
            .to_string()
            .contains("hedge sent, the first attempt slow for 50 ms"),
        "{}",
        calls[0]
    );
}
