//! Runnable examples of towline. Each one starts the embedded loopback test server
//! (`towline-testkit`) and needs no setup and no network:
//!
//! - `cargo run --release --example tour`: the layers against scripted server faults, with a
//!   report of what the server did, what the client saw, and how towline classified it.
