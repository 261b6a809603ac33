//! Durable storage for tributary: the event log, its dedup index and observations, source checkpoints,
//! rejects, and each subscription's delivery state. Every backend implements [`tributary_core::Store`]
//! with the same semantics.
//!
//! - [`fjall`]: [`FjallStore`], the embedded backend (one directory, group commit, fail-stop).
//! - [`memory`]: [`MemoryStore`], everything in a mutex-guarded map; for tests and as the reference.
//! - [`postgres`] (feature `postgres`, on by default): [`PostgresStore`], a shared system of record.
#![deny(missing_docs)]

pub mod fjall;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;

pub use self::fjall::{FjallStore, OpenError};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresConfig, PostgresStore};

/// How many rejects a store keeps per source; older ones are dropped as new ones arrive.
pub const REJECTS_KEPT_PER_SOURCE: u64 = 10_000;
