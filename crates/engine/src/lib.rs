//! tributary engine: the config, the running node, and the delivery loop.
//!
//! - [`config`]: the TOML config (`[node]`, `[[sources]]`, `[[subscriptions]]`), environment overrides and
//!   validation that reports every problem at once with its path (`config_parse`: unknown fields
//!   stripped and parsed again, "did you mean" for typos).
//! - [`subscription`]: a subscription's config and its delivery worker (cursor over the log, retries,
//!   per-key ordering, circuit breaker, rate limit, dead letters).
//! - [`registry`]: subscriptions at run time (create, change, delete, rotate secrets, test, requeue).
//! - [`metrics`]: every metric name and the helpers that emit them; the Prometheus recorder.
//! - [`source_status`]: live source counters, kept by wrapping the store each source writes to.
//! - [`tenants`]: tenants and their API keys (hashed, revocable), kept in the store.
//! - `http_errors`: how management errors answer over HTTP (the API error shape of [`tributary_plugin`]).
//! - [`node`]: starts the store, the sources and one delivery worker per subscription; shuts them down in
//!   order (sources first, then deliveries drain within a grace period).

pub mod cluster;
pub mod config;
mod config_node;
mod config_parse;
mod config_store;
mod http_errors;
pub mod metrics;
pub mod node;
pub mod registry;
pub mod source_status;
pub mod subscription;
pub mod tenants;

pub use config::{Config, ConfigError, HealthConfig, LimitsConfig, NodeConfig};
pub use node::{Node, NodeError};
pub use registry::{BrokenSubscription, ManageError, Origin, SubscriptionHandle};
