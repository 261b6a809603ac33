//! Subscriptions: a filter, a sink, a retry policy and an ordering mode, reading the log from their own
//! durable cursor like a consumer group.
//!
//! - [`config`]: `[[subscriptions]]` and its validation.
//! - [`policy`]: the retry schedule (with jitter and `Retry-After`), the circuit breaker and the rate limit.
//! - [`worker`]: the delivery loop of one subscription.
//! - [`status`]: live counters shown by the API.

pub mod config;
pub mod policy;
pub mod status;
pub mod worker;

pub use config::{Ordering, SubscriptionConfig};
pub use status::SubscriptionStatus;
pub use worker::{Control, Worker, message_id};
