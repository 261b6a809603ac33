//! Configuration of the `postgres` source.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Largest `max_batch_events`.
pub const MAX_BATCH_EVENTS: usize = 100_000;
/// Default of `max_event_bytes`: 1 MiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;
/// Largest `max_event_bytes`: 16 MiB.
pub const MAX_EVENT_BYTES: usize = 16 << 20;
/// Longest `status_interval_ms` (one minute; PostgreSQL's `wal_sender_timeout` is 60 s by default).
pub const MAX_STATUS_INTERVAL_MS: u64 = 60_000;
/// Longest `reconnect_max_ms` (five minutes).
pub const MAX_RECONNECT_MS: u64 = 300_000;
/// Default of `max_retained_wal_bytes`: 1 GiB.
pub const DEFAULT_MAX_RETAINED_WAL: u64 = 1 << 30;
/// Bounds of `max_retained_wal_bytes`: 1 MiB to 1 TiB.
pub const RETAINED_WAL_BOUNDS: (u64, u64) = (1 << 20, 1 << 40);
/// Bounds of `slot_check_interval_ms`.
pub const SLOT_CHECK_BOUNDS: (u64, u64) = (100, 300_000);
/// Bounds of `slot_stall_after_ms` (one second to one day).
pub const SLOT_STALL_BOUNDS: (u64, u64) = (1_000, 86_400_000);
/// PostgreSQL names are at most this many bytes (NAMEDATALEN - 1).
const MAX_NAME: usize = 63;
/// Most entries of `tables`.
pub const MAX_TABLES: usize = 1000;

/// `[[sources]] type = "postgres"`: change capture over logical replication (`pgoutput`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSourceConfig {
    /// `postgres://user[:password]@host[:port]/database`. The password may instead come from
    /// `password_env` or `password_file`; it is never logged or shown.
    pub url: String,
    /// An environment variable holding the password (used when the URL has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// A file holding the password (trailing newline ignored; used when the URL and `password_env` give none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The logical replication slot (lowercase letters, digits, `_`), created with `pgoutput` if absent.
    pub slot: String,
    /// The publication; created `FOR TABLE` the `tables` if absent, used as it is if it exists.
    pub publication: String,
    /// Tables for a publication created by tributary (`schema.table`, or `table` for `public`).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Existing rows first, consistent with the slot's start: on the first start the slot is created with
    /// an exported snapshot and every table of the publication is read in it before streaming.
    #[serde(default)]
    pub snapshot: bool,
    /// A slot that disappeared after tributary captured from it is an error unless this is `true`; then it
    /// is created again and the possible gap is reported (logged and kept as a reject).
    #[serde(default)]
    pub recreate_slot: bool,
    /// Treat one table as a transactional outbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<OutboxConfig>,
    /// Events per atomic append. A transaction of more changes is appended in pieces of this many (ids are
    /// deterministic, so a piece replayed after a crash adds nothing); smaller ones in one append. Default
    /// 10,000, at most 100,000.
    #[serde(default = "default_batch")]
    pub max_batch_events: usize,
    /// Largest event `data` in bytes (compact JSON); a larger row is a reject. Default 1 MiB, at most 16 MiB.
    #[serde(default = "default_max_event")]
    pub max_event_bytes: usize,
    /// How often the confirmed position is reported to the server, in ms. Default 1,000 (100 to 60,000).
    #[serde(default = "default_status")]
    pub status_interval_ms: u64,
    /// Longest wait between reconnection attempts, in ms (the wait doubles from 100 ms). Default 10,000,
    /// at most 300,000.
    #[serde(default = "default_reconnect")]
    pub reconnect_max_ms: u64,
    /// `/health` shows the source degraded while the slot keeps more WAL than this on the server
    /// (`pg_current_wal_lsn() - restart_lsn`). Default 1 GiB (1 MiB to 1 TiB).
    #[serde(default = "default_retained")]
    pub max_retained_wal_bytes: u64,
    /// How often the slot's state is read, in ms. Default 5,000 (100 to 300,000).
    #[serde(default = "default_slot_check")]
    pub slot_check_interval_ms: u64,
    /// `/health` shows the source stalled when the slot's confirmed position has not moved for this long
    /// while the server has WAL past it, in ms. Default 300,000 (1,000 to 86,400,000).
    #[serde(default = "default_slot_stall")]
    pub slot_stall_after_ms: u64,
}

/// `[sources.outbox]`: the columns of a transactional outbox table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// The outbox table (`schema.table`, or `table` for `public`).
    pub table: String,
    /// The idempotency column: the event id is sha256 of its value's UTF-8 text.
    pub id: String,
    /// The event type column: the event kind is `outbox.<value>`.
    pub kind: String,
    /// The ordering key column (an aggregate or user id). NULL: no key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The JSON payload column (json, jsonb, or text holding JSON): the event's `data`.
    pub payload: String,
    /// The tenant column. NULL: no tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

fn default_batch() -> usize {
    10_000
}
fn default_max_event() -> usize {
    DEFAULT_MAX_EVENT_BYTES
}
fn default_status() -> u64 {
    1000
}
fn default_reconnect() -> u64 {
    10_000
}
fn default_retained() -> u64 {
    DEFAULT_MAX_RETAINED_WAL
}
fn default_slot_check() -> u64 {
    5_000
}
fn default_slot_stall() -> u64 {
    300_000
}

impl std::fmt::Debug for PostgresSourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSourceConfig")
            .field("url", &super::redacted(&self.url))
            .field("slot", &self.slot)
            .field("publication", &self.publication)
            .field("tables", &self.tables)
            .field("outbox", &self.outbox)
            .finish_non_exhaustive()
    }
}

/// A table name split into schema and table (`public` when no schema is given), or why it is not one.
pub fn split_table(table: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = table.split('.').collect();
    let (schema, name) = match parts.as_slice() {
        [name] => ("public", *name),
        [schema, name] => (*schema, *name),
        _ => return Err(format!("{table:?}: expected table or schema.table")),
    };
    for part in [schema, name] {
        check_identifier(part).map_err(|e| format!("{table:?}: {e}"))?;
    }
    Ok((schema.to_owned(), name.to_owned()))
}

/// A plain SQL identifier (a letter or `_`, then letters, digits, `_` or `$`), at most 63 bytes.
pub fn check_identifier(part: &str) -> Result<(), String> {
    let mut chars = part.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
        return Err(format!(
            "{part:?} is not a plain identifier: expected a letter or _ then letters, digits, _ or $"
        ));
    }
    if part.len() > MAX_NAME {
        return Err(format!("{part:?} is longer than {MAX_NAME} bytes"));
    }
    Ok(())
}

fn check_slot_name(s: &str) -> Result<(), String> {
    if s.is_empty()
        || s.len() > MAX_NAME
        || !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "{s:?}: expected 1 to {MAX_NAME} lowercase letters, digits or _ (PostgreSQL's rule for slot names)"
        ));
    }
    Ok(())
}

impl PostgresSourceConfig {
    /// Problems with this config, as (field, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut e: Vec<(String, String)> = Vec::new();
        if let Err(m) = super::connect::parse_url(&self.url) {
            e.push(("url".into(), m));
        }
        if let Err(m) = check_slot_name(&self.slot) {
            e.push(("slot".into(), m));
        }
        if let Err(m) = check_slot_name(&self.publication) {
            e.push(("publication".into(), m));
        }
        if self.tables.len() > MAX_TABLES {
            e.push((
                "tables".into(),
                format!("at most {MAX_TABLES} tables, got {}", self.tables.len()),
            ));
        }
        for (i, t) in self.tables.iter().enumerate() {
            if let Err(m) = split_table(t) {
                e.push((format!("tables[{i}]"), m));
            }
        }
        if let Some(v) = &self.password_env
            && v.is_empty()
        {
            e.push((
                "password_env".into(),
                "expected the name of an environment variable".into(),
            ));
        }
        if let Some(o) = &self.outbox {
            if let Err(m) = split_table(&o.table) {
                e.push(("outbox.table".into(), m));
            }
            let cols = [
                ("outbox.id", Some(&o.id)),
                ("outbox.kind", Some(&o.kind)),
                ("outbox.payload", Some(&o.payload)),
                ("outbox.key", o.key.as_ref()),
                ("outbox.tenant", o.tenant.as_ref()),
            ];
            for (field, col) in cols {
                if let Some(col) = col
                    && col.is_empty()
                {
                    e.push((field.into(), "expected a column name".into()));
                }
            }
        }
        if !(1..=MAX_BATCH_EVENTS).contains(&self.max_batch_events) {
            e.push((
                "max_batch_events".into(),
                format!("expected 1 to {MAX_BATCH_EVENTS}, got {}", self.max_batch_events),
            ));
        }
        if !(1..=MAX_EVENT_BYTES).contains(&self.max_event_bytes) {
            e.push((
                "max_event_bytes".into(),
                format!("expected 1 to {MAX_EVENT_BYTES} (16 MiB), got {}", self.max_event_bytes),
            ));
        }
        if !(100..=MAX_STATUS_INTERVAL_MS).contains(&self.status_interval_ms) {
            e.push((
                "status_interval_ms".into(),
                format!(
                    "expected 100 to {MAX_STATUS_INTERVAL_MS}, got {}",
                    self.status_interval_ms
                ),
            ));
        }
        let bounded = |field: &str, v: u64, (lo, hi): (u64, u64), e: &mut Vec<(String, String)>| {
            if !(lo..=hi).contains(&v) {
                e.push((field.into(), format!("expected {lo} to {hi}, got {v}")));
            }
        };
        bounded(
            "max_retained_wal_bytes",
            self.max_retained_wal_bytes,
            RETAINED_WAL_BOUNDS,
            &mut e,
        );
        bounded(
            "slot_check_interval_ms",
            self.slot_check_interval_ms,
            SLOT_CHECK_BOUNDS,
            &mut e,
        );
        bounded(
            "slot_stall_after_ms",
            self.slot_stall_after_ms,
            SLOT_STALL_BOUNDS,
            &mut e,
        );
        if !(100..=MAX_RECONNECT_MS).contains(&self.reconnect_max_ms) {
            e.push((
                "reconnect_max_ms".into(),
                format!("expected 100 to {MAX_RECONNECT_MS}, got {}", self.reconnect_max_ms),
            ));
        }
        e
    }
}
