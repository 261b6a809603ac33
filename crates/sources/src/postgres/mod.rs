//! The `postgres` source: change capture from PostgreSQL over logical replication with the `pgoutput`
//! plugin, for table changes and transactional outbox tables (docs/sources/postgres.md).
//!
//! - [`pgoutput`]: a pure decoder of the replication messages (protocol 1 and 2's streaming messages).
//! - [`value`]: column text to JSON by type.
//! - [`changes`]: decoded messages into events and rejects (the id, kind, key and data rules).
//! - [`config`]: `[[sources]] type = "postgres"` and `[sources.outbox]`.
//! - `client`: the replication session (protocol 2 with streaming where the server has it).
//! - `spool`: streamed transactions in progress, on disk until they commit.
//! - `connect`, `setup`, `source`: the sessions, the publication and the slot, and the capture loop.
//! - `snapshot`: `snapshot = true`, the existing rows read in the slot's exported snapshot.
//! - `monitor`: the slot's retained WAL, lag and progress, for `/health`, `/v1/sources` and `/metrics`.

pub mod changes;
mod client;
pub mod config;
mod connect;
mod monitor;
pub mod pgoutput;
mod setup;
mod snapshot;
mod source;
mod spool;
#[cfg(test)]
mod tests;
pub mod value;

pub use config::{OutboxConfig, PostgresSourceConfig};
pub use source::PostgresSource;

/// `url` without its password, for logs and views.
pub fn redacted(url: &str) -> String {
    tributary_core::url::redacted_url(url, tributary_core::url::LoneUserinfo::User)
}
