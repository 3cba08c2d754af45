//! Rate-limit gates, quotas and tokens shared by every replica of a service, through Redis
//! (or Valkey).
//!
//! Quotas and tokens belong to an API key, not to a process: eight replicas with in-memory
//! stores send eight times the quota, ignore a lock another replica was told about, and fetch
//! eight tokens. This crate keeps that state in Redis, with
//! [redis-rs](https://docs.rs/redis)'s reconnecting connection:
//!
//! - [`RedisStore`], a [`GateStore`](towline_ratelimit::GateStore) for
//!   [`RateLimitLayer::store`](towline_ratelimit::RateLimitLayer::store): one gate per key
//!   (a 429 seen by any replica holds all of them; closing only extends) and one quota per key
//!   (a sliding-window log in one atomic script: never more than `calls` per `per` in any
//!   window, across replicas), all timed by the Redis server's clock;
//! - [`RedisTokenSource`], a [`TokenSource`](towline_auth::TokenSource) wrapper: one token per
//!   key for all replicas, fetched by one replica at a time under a lease, dropped on a 401
//!   only if it is the token that failed;
//! - [`OnFailure`]: every Redis operation is bounded by a time limit; then a store either
//!   fails open (local state, the quota divided by the number of replicas) or fails closed
//!   ([`StoreUnavailable`](towline_core::StoreUnavailable)), and shares again once Redis
//!   answers.
//!
//! Every key starts with a prefix ([`Redis::prefix`]) and carries a TTL.
//!
//! **What stays per process.** Retry budgets and circuit-breaker state are not shared, as
//! Envoy, Finagle and gRPC keep them: a budget bounds the extra load *this* process adds
//! (its own retries against its own calls, decided on every call, where a network round trip
//! would cost more than the decision), and a breaker reacts to what *this* process sees of
//! the server (its own path, its own connections); sharing them would let one replica's bad
//! network spend everyone's budget or open everyone's breaker, and would put Redis on the
//! path of every failure.
//!
//! Tests start their own `redis-server` (`towline_testkit::RedisServer`), and skip with a
//! message where it is not installed (but fail under `CI`).

mod connection;
mod lease;
mod listing;
mod mirror;
mod policy;
mod scripts;
mod store;
mod token;

pub use connection::{DEFAULT_OP_TIMEOUT, DEFAULT_PREFIX, Redis};
pub use lease::{Leasing, MAX_PERMITS};
pub use policy::OnFailure;
pub use store::RedisStore;
pub use token::{DEFAULT_LEASE, DEFAULT_POLL, RedisTokenSource};
