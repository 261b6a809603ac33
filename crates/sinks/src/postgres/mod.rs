//! The `postgres` sink: each event becomes one row of a PostgreSQL table, exactly once, and the user's
//! optional statement runs in the same transaction for each row actually inserted.
//!
//! - [`config`]: `[subscriptions.sink] type = "postgres"`: `url`, `table`, `statement`, `timeout`,
//!   `pool_size`, `batch_size`.
//! - `schema`: the table's columns; created if absent, checked if present (`healthcheck`).
//! - `write`: one batch = one transaction: `INSERT … SELECT FROM UNNEST(…) ON CONFLICT (id) DO NOTHING
//!   RETURNING id`, then the statement for each returned row in its own savepoint (a failing statement
//!   rejects its row, whose insert is undone, and not the others). A row's data error makes the batch go
//!   row by row, each in a savepoint.
//! - `sink`: the pool, the layout check, and the [`Coalescer`](crate::batch::Coalescer) that turns the
//!   worker's concurrent deliveries into batches.
//!
//! Invariant: a row and its statement's effects commit together or not at all, and a row already present
//! (a retry, a replay, a restart after a crash) is neither written nor its statement run again.

pub mod config;
mod schema;
mod sink;
mod write;

pub use config::PostgresConfig;
pub use sink::PostgresSink;
