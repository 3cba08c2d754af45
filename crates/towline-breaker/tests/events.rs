//! Each transition of a circuit emits one `towline.circuit.state` event (key, from, to, and
//! the break for an opening), never one per call.

mod common;

use std::sync::{Arc, Mutex};

use common::{SECOND, Upstream, breaker, call, layer};
use tokio::time::advance;
use towline_breaker::Settings;
use towline_core::ErrorKind;

const HOST: &str = "api.example";

/// The `towline.circuit.state` events seen, each as its fields `name=value`, in order.
#[derive(Clone, Default)]
struct Transitions(Arc<Mutex<Vec<String>>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() != "message" {
            self.0.push_str(&format!("{}={:?} ", field.name(), value));
        }
    }
}

impl tracing::Subscriber for Transitions {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().name() == "towline.circuit.state" {
            let mut line = format!("{} ", event.metadata().level());
            event.record(&mut Fields(&mut line));
            self.0.lock().unwrap().push(line.trim_end().to_owned());
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test(start_paused = true)]
async fn each_transition_emits_one_state_event_and_calls_emit_none() {
    let transitions = Transitions::default();
    // Global: the only test in this binary (a thread-scoped subscriber can miss callsites
    // that another thread registered first).
    tracing::subscriber::set_global_default(transitions.clone()).unwrap();
    let upstream = Upstream::answering(500);
    let layer = layer(
        Settings::new()
            .consecutive_failures(3)
            .break_duration(2 * SECOND),
    );
    let service = breaker(&layer, upstream.service());
    for _ in 0..3 {
        assert_eq!(call(&service, HOST).await, Ok(500));
    }
    // Open: many refused calls, no event for any of them.
    for _ in 0..10 {
        assert_eq!(call(&service, HOST).await, Err(ErrorKind::CircuitOpen));
    }
    // The break ends: a probe goes and fails, the break doubles.
    advance(2 * SECOND).await;
    assert_eq!(call(&service, HOST).await, Ok(500));
    // The next probe succeeds: closed.
    advance(4 * SECOND).await;
    upstream.set(200);
    assert_eq!(call(&service, HOST).await, Ok(200));
    for _ in 0..10 {
        assert_eq!(call(&service, HOST).await, Ok(200));
    }
    // By hand: forced open, then closed; closing a closed circuit is no transition.
    layer.circuits().force_open(HOST);
    layer.circuits().force_open(HOST);
    layer.circuits().force_closed(HOST);
    layer.circuits().force_closed(HOST);

    let key = r#"towline.circuit.key="api.example""#;
    let seen = transitions.0.lock().unwrap().clone();
    let expected = [
        format!(
            r#"WARN {key} towline.circuit.from="closed" towline.circuit.to="open" towline.circuit.break_ms=2000"#
        ),
        format!(r#"INFO {key} towline.circuit.from="open" towline.circuit.to="half_open""#),
        format!(
            r#"WARN {key} towline.circuit.from="half_open" towline.circuit.to="open" towline.circuit.break_ms=4000"#
        ),
        format!(r#"INFO {key} towline.circuit.from="open" towline.circuit.to="half_open""#),
        format!(r#"INFO {key} towline.circuit.from="half_open" towline.circuit.to="closed""#),
        format!(r#"WARN {key} towline.circuit.from="closed" towline.circuit.to="forced_open""#),
        format!(r#"INFO {key} towline.circuit.from="forced_open" towline.circuit.to="closed""#),
    ];
    assert_eq!(seen, expected);
}
