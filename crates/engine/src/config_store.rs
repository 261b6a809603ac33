//! `[node] store`: which storage backend a node uses, and the PostgreSQL store's settings.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which storage backend to use: `store = "embedded"` (the default), `store = "memory"`, or
/// `store = { type = "postgres", url = "...", schema = "tributary" }` (docs/scale-out.md).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// fjall under `data_dir` (the default).
    #[default]
    Embedded,
    /// In memory: nothing survives a restart (tests and experiments only).
    Memory,
    /// PostgreSQL, shared by every node pointed at it.
    Postgres(PostgresStore),
}

/// `[node] store = { type = "postgres", ... }`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresStore {
    /// `postgres://user[:password]@host[:port]/database`.
    pub url: String,
    /// The schema holding tributary's tables, created if absent. Default `tributary`.
    #[serde(default = "default_pg_schema")]
    pub schema: String,
    /// Connections each node keeps open. Default 16; 1 to 64.
    #[serde(default = "default_pg_pool_size")]
    pub pool_size: usize,
    /// How long connecting, waiting for a pooled connection, or a statement may take, in milliseconds.
    /// Default 10,000; 100 to 600,000.
    #[serde(default = "default_pg_timeout_ms")]
    pub timeout_ms: u64,
    /// How long a node's lease on a pulling source or a subscription lasts unless renewed, in
    /// milliseconds: the longest a node that died holds its work up. Default 10,000; 1,000 to 600,000.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field(
                "url",
                &tributary_core::url::redacted_url(&self.url, tributary_core::url::LoneUserinfo::User),
            )
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("timeout_ms", &self.timeout_ms)
            .field("lease_ms", &self.lease_ms)
            .finish()
    }
}

impl PostgresStore {
    /// The store's settings.
    pub fn settings(&self) -> tributary_store::PostgresConfig {
        tributary_store::PostgresConfig {
            url: self.url.clone(),
            schema: self.schema.clone(),
            pool_size: self.pool_size,
            timeout: Duration::from_millis(self.timeout_ms),
        }
    }
}

fn default_pg_schema() -> String {
    "tributary".into()
}
fn default_pg_pool_size() -> usize {
    16
}
fn default_pg_timeout_ms() -> u64 {
    10_000
}
fn default_lease_ms() -> u64 {
    10_000
}

/// Every problem of a PostgreSQL store's config, each as `node.store.FIELD: …`.
pub(crate) fn postgres_problems(pg: &PostgresStore) -> Vec<String> {
    let mut out = Vec::new();
    if let Err(problems) = tributary_store::postgres::check_config(&pg.settings()) {
        out.extend(problems.iter().map(|p| format!("node.store.{p}")));
    }
    for (field, value, least, most) in [
        ("timeout_ms", pg.timeout_ms, 100, 600_000),
        ("lease_ms", pg.lease_ms, 1_000, 600_000),
    ] {
        if !(least..=most).contains(&value) {
            out.push(format!("node.store.{field}: expected {least} to {most}, got {value}"));
        }
    }
    out
}

/// The table form of `store`: `{ type = "..." , ... }`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum StoreTable {
    Embedded,
    Memory,
    Postgres(PostgresStore),
}

impl<'de> Deserialize<'de> for StoreKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        const EXPECTED: &str =
            "\"embedded\", \"memory\", or a table { type = \"postgres\", url = \"postgres://user@host/db\" }";
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = StoreKind;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<StoreKind, E> {
                match v {
                    "embedded" => Ok(StoreKind::Embedded),
                    "memory" => Ok(StoreKind::Memory),
                    "postgres" => Err(E::custom(
                        "store = \"postgres\" needs its connection: write store = { type = \"postgres\", url = \"postgres://user@host/db\" }",
                    )),
                    other => Err(E::custom(format!("unknown store {other:?}; expected {EXPECTED}"))),
                }
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, map: M) -> Result<StoreKind, M::Error> {
                let table = StoreTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(match table {
                    StoreTable::Embedded => StoreKind::Embedded,
                    StoreTable::Memory => StoreKind::Memory,
                    StoreTable::Postgres(p) => StoreKind::Postgres(p),
                })
            }
        }
        d.deserialize_any(Visit)
    }
}
