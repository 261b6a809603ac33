//! Decoded `pgoutput` changes into events and rejects: pure, no I/O (the source feeds it, tests too).
//!
//! Rules (docs/sources/postgres.md):
//! - Every row change of a transaction (insert, update, delete, each table of a truncate) has an ordinal,
//!   1 for the first, counted over all tables, outbox rows included.
//! - Table change: kind `pg.<schema>.<table>.<op>`, id = sha256 of `<commit LSN>/<ordinal>` (the LSN as
//!   PostgreSQL writes it, `0/16B3748`), key = the replica identity (primary key) value (several columns:
//!   their values as a JSON array), occurred_at = the commit time, position = `<commit LSN>/<ordinal>`,
//!   data = `{schema, table, op, commit_lsn, xid, new, old, primary_key}` plus `unchanged_toast` (the
//!   columns whose TOASTed value did not change and was not sent) when there are any.
//! - Snapshot row (`snapshot = true`, read before streaming): kind `pg.<schema>.<table>.snapshot`, op
//!   `snapshot`, position `snapshot/<consistent point>/<ordinal>` (the ordinal counted over every table
//!   of the snapshot), id = sha256 of the position, xid 0, occurred_at = when the snapshot was taken.
//! - Outbox row (insert or update of the outbox table): kind `outbox.<kind column>`, id = sha256 of the
//!   UTF-8 text of the id column, key = the key column, tenant = the tenant column ([`NewEvent::tenant`]),
//!   data = the payload column's JSON. Deletes and truncates of the outbox are ignored. A row with a
//!   missing, NULL or invalid column is a [`Reject`] that says which column and why.

use super::config::OutboxConfig;
use super::pgoutput::{Lsn, Message, OldKind, PG_EPOCH_OFFSET_MICROS, Relation, Tuple, Value};
use super::value::{oid, to_json};
use serde_json::{Map, Value as Json, json};
use std::collections::HashMap;
use tributary_core::{EventId, NewEvent, Reject, Timestamp};

/// Longest outbox key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest outbox tenant, in bytes.
pub const MAX_TENANT_BYTES: usize = 128;
/// How much of a bad row a reject keeps.
const EXCERPT: usize = 1024;

/// A column of a cached relation.
#[derive(Clone, Debug)]
struct Col {
    name: String,
    type_oid: u32,
    key: bool,
}

/// Where the outbox columns are in the outbox table's current shape (an error names a missing one).
#[derive(Clone, Debug)]
struct OutboxCols {
    id: Result<usize, String>,
    kind: Result<usize, String>,
    payload: Result<usize, String>,
    key: Option<Result<usize, String>>,
    tenant: Option<Result<usize, String>>,
}

#[derive(Clone, Debug)]
struct Rel {
    schema: String,
    table: String,
    columns: Vec<Col>,
    outbox: Option<OutboxCols>,
    /// `REPLICA IDENTITY FULL` and the primary key not looked up yet.
    full_identity: bool,
}

/// The transaction being read.
#[derive(Clone, Copy, Debug)]
struct Tx {
    xid: u32,
    commit_lsn: Lsn,
    commit_time: Timestamp,
    ordinal: u64,
    /// The rows of a snapshot, not a transaction: inserts are `snapshot` rows.
    snapshot: bool,
}

impl Tx {
    /// `<commit LSN>/<ordinal>`; `snapshot/<consistent point>/<ordinal>` for a snapshot's rows.
    fn position(&self) -> String {
        if self.snapshot {
            format!("snapshot/{}/{}", self.commit_lsn, self.ordinal)
        } else {
            format!("{}/{}", self.commit_lsn, self.ordinal)
        }
    }
}

/// Turns one session's `pgoutput` messages into events, keeping the relations it was told about.
pub struct Changes {
    relations: HashMap<u32, Rel>,
    outbox: Option<(String, String, OutboxConfig)>,
    max_event_bytes: usize,
    tx: Option<Tx>,
}

/// Why a message cannot be applied (a protocol problem: the session is restarted).
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// A change outside a transaction.
    #[error("a {0} change arrived outside a transaction")]
    OutsideTransaction(&'static str),
    /// A change to a relation the server never described.
    #[error("a change to relation {0} arrived before its Relation message")]
    UnknownRelation(u32),
    /// A row does not fit its relation.
    #[error("a row of {table} has {got} columns, its Relation message {expected}")]
    Shape {
        /// `schema.table`.
        table: String,
        /// Columns in the row.
        got: usize,
        /// Columns in the relation.
        expected: usize,
    },
}

impl Changes {
    /// A fresh session. `outbox`: the outbox table's columns, if one is configured.
    pub fn new(outbox: Option<&OutboxConfig>, max_event_bytes: usize) -> Self {
        let outbox = outbox.and_then(|o| {
            let (schema, table) = super::config::split_table(&o.table).ok()?;
            Some((schema, table, o.clone()))
        });
        Self {
            relations: HashMap::new(),
            outbox,
            max_event_bytes,
            tx: None,
        }
    }

    /// Whether the relation's key columns must come from the catalog: under `REPLICA IDENTITY FULL` the
    /// server flags every column as part of the identity, so its flags do not say which is the primary key.
    pub fn needs_primary_key(&self, oid: u32) -> bool {
        self.relations.get(&oid).is_some_and(|r| r.full_identity)
    }

    /// Sets the relation's primary key columns (from the catalog), by name.
    pub fn set_primary_key(&mut self, oid: u32, columns: &[String]) {
        if let Some(r) = self.relations.get_mut(&oid) {
            for c in &mut r.columns {
                c.key = columns.contains(&c.name);
            }
            r.full_identity = false;
        }
    }

    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    /// A transaction starts: its commit LSN, transaction id and commit time (µs since 2000-01-01).
    pub fn begin(&mut self, commit_lsn: Lsn, xid: u32, commit_time_pg: i64) {
        let commit_time = Timestamp(commit_time_pg.saturating_add(PG_EPOCH_OFFSET_MICROS)).clamped();
        self.tx = Some(Tx {
            xid,
            commit_lsn,
            commit_time,
            ordinal: 0,
            snapshot: false,
        });
    }

    /// A snapshot's rows start: each Insert until [`Changes::commit`] is a `snapshot` row of the slot's
    /// `consistent_point`, taken at `taken_at` (its occurred_at).
    pub fn begin_snapshot(&mut self, consistent_point: Lsn, taken_at: Timestamp) {
        self.tx = Some(Tx {
            xid: 0,
            commit_lsn: consistent_point,
            commit_time: taken_at,
            ordinal: 0,
            snapshot: true,
        });
    }

    /// The open transaction ends; returns its commit LSN.
    pub fn commit(&mut self) -> Option<Lsn> {
        self.tx.take().map(|t| t.commit_lsn)
    }

    /// Applies one message other than Begin and Commit, adding its events and rejects.
    pub fn apply(
        &mut self,
        m: &Message<'_>,
        events: &mut Vec<NewEvent>,
        rejects: &mut Vec<Reject>,
    ) -> Result<(), ChangeError> {
        let max = self.max_event_bytes;
        match m {
            Message::Relation { relation, .. } => {
                self.relation(relation);
                Ok(())
            }
            Message::Insert { relation, new, .. } => {
                let (rel, tx) = self.row_context(*relation, "insert")?;
                check_shape(rel, new)?;
                let op = if tx.snapshot { "snapshot" } else { "insert" };
                row(rel, &tx, op, Some(new), None, max, events, rejects);
                Ok(())
            }
            Message::Update { relation, old, new, .. } => {
                let (rel, tx) = self.row_context(*relation, "update")?;
                check_shape(rel, new)?;
                if let Some((_, t)) = old {
                    check_shape(rel, t)?;
                }
                row(rel, &tx, "update", Some(new), old.as_ref(), max, events, rejects);
                Ok(())
            }
            Message::Delete { relation, old, .. } => {
                let (rel, tx) = self.row_context(*relation, "delete")?;
                check_shape(rel, &old.1)?;
                row(rel, &tx, "delete", None, Some(old), max, events, rejects);
                Ok(())
            }
            Message::Truncate { relations, options, .. } => {
                for oid in relations {
                    let (rel, tx) = self.row_context(*oid, "truncate")?;
                    if rel.outbox.is_some() {
                        continue;
                    }
                    let data = json!({
                        "schema": rel.schema, "table": rel.table, "op": "truncate",
                        "commit_lsn": tx.commit_lsn.to_string(), "xid": tx.xid,
                        "new": null, "old": null, "primary_key": null,
                        "cascade": options & 1 == 1, "restart_identity": options & 2 == 2,
                    });
                    events.push(table_event(rel, &tx, "truncate", None, data));
                }
                Ok(())
            }
            // Type names, origins and logical messages carry no row; stream framing is the caller's.
            _ => Ok(()),
        }
    }

    fn relation(&mut self, r: &Relation<'_>) {
        let columns: Vec<Col> = r
            .columns
            .iter()
            .map(|c| Col {
                name: c.name.to_owned(),
                type_oid: c.type_oid,
                key: c.key,
            })
            .collect();
        let outbox = self.outbox.as_ref().and_then(|(schema, table, o)| {
            if schema != r.namespace || table != r.name {
                return None;
            }
            let find = |col: &str, role: &str| {
                columns.iter().position(|c| c.name == col).ok_or_else(|| {
                    format!(
                        "outbox table {schema}.{table} has no column {col:?} (outbox.{role}); add it or fix [sources.outbox]"
                    )
                })
            };
            Some(OutboxCols {
                id: find(&o.id, "id"),
                kind: find(&o.kind, "kind"),
                payload: find(&o.payload, "payload"),
                key: o.key.as_deref().map(|k| find(k, "key")),
                tenant: o.tenant.as_deref().map(|t| find(t, "tenant")),
            })
        });
        self.relations.insert(
            r.oid,
            Rel {
                schema: r.namespace.to_owned(),
                table: r.name.to_owned(),
                columns,
                outbox,
                full_identity: r.replica_identity == b'f',
            },
        );
    }

    /// The relation and the transaction with the ordinal of this change counted.
    fn row_context(&mut self, oid: u32, op: &'static str) -> Result<(&Rel, Tx), ChangeError> {
        let tx = self.tx.as_mut().ok_or(ChangeError::OutsideTransaction(op))?;
        tx.ordinal += 1;
        let tx = *tx;
        let rel = self.relations.get(&oid).ok_or(ChangeError::UnknownRelation(oid))?;
        Ok((rel, tx))
    }
}

/// One row change as an event (or a reject).
#[allow(clippy::too_many_arguments)]
fn row(
    rel: &Rel,
    tx: &Tx,
    op: &'static str,
    new: Option<&Tuple<'_>>,
    old: Option<&(OldKind, Tuple<'_>)>,
    max_event_bytes: usize,
    events: &mut Vec<NewEvent>,
    rejects: &mut Vec<Reject>,
) {
    let position = tx.position();
    let result = if let Some(cols) = &rel.outbox {
        match new {
            // Clean-up jobs delete outbox rows: not an event.
            None => return,
            Some(row) => outbox_event(rel, cols, tx, row),
        }
    } else {
        Ok(table_row_event(rel, tx, op, new, old))
    };
    let result = result.and_then(|ev| {
            if json_len_exceeds(&ev.data, max_event_bytes) {
                Err(format!(
                    "the event's data is more than {} bytes of JSON (max_event_bytes); raise max_event_bytes or make the row smaller",
                    max_event_bytes
                ))
            } else {
                Ok(ev)
            }
        });
    match result {
        Ok(ev) => events.push(ev),
        Err(reason) => {
            let row = new.or(old.map(|(_, t)| t)).map(|t| row_json(rel, t).0);
            let mut excerpt = row.map(|r| Json::Object(r).to_string()).unwrap_or_default();
            if excerpt.len() > EXCERPT {
                let mut cut = EXCERPT;
                while !excerpt.is_char_boundary(cut) {
                    cut -= 1;
                }
                excerpt.truncate(cut);
            }
            rejects.push(Reject {
                position: format!("{}.{} {op} at {position}", rel.schema, rel.table),
                reason,
                excerpt,
                at: Timestamp::now(),
            });
        }
    }
}

fn check_shape(rel: &Rel, t: &Tuple<'_>) -> Result<(), ChangeError> {
    if t.0.len() != rel.columns.len() {
        return Err(ChangeError::Shape {
            table: format!("{}.{}", rel.schema, rel.table),
            got: t.0.len(),
            expected: rel.columns.len(),
        });
    }
    Ok(())
}

/// A column value in JSON; `None` for an unchanged TOAST value.
fn column_json(col: &Col, v: &Value<'_>) -> Option<Json> {
    match v {
        Value::Null => Some(Json::Null),
        Value::UnchangedToast => None,
        Value::Text(b) => Some(to_json(col.type_oid, &String::from_utf8_lossy(b))),
        Value::Binary(b) => Some(Json::String(hex::encode(b))),
    }
}

/// A row as a JSON object, and the columns whose unchanged TOAST value was not sent.
fn row_json(rel: &Rel, t: &Tuple<'_>) -> (Map<String, Json>, Vec<String>) {
    let mut map = Map::new();
    let mut unchanged = Vec::new();
    for (col, v) in rel.columns.iter().zip(&t.0) {
        match column_json(col, v) {
            Some(j) => {
                map.insert(col.name.clone(), j);
            }
            None => unchanged.push(col.name.clone()),
        }
    }
    (map, unchanged)
}

/// The key columns of a row: `{name: value}` and the event key text.
fn primary_key(rel: &Rel, t: &Tuple<'_>) -> Option<(Map<String, Json>, String)> {
    let mut map = Map::new();
    let mut texts = Vec::new();
    for (col, v) in rel.columns.iter().zip(&t.0) {
        if !col.key {
            continue;
        }
        map.insert(col.name.clone(), column_json(col, v).unwrap_or(Json::Null));
        texts.push(match v {
            Value::Text(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
            Value::Binary(b) => Json::String(hex::encode(b)),
            _ => Json::Null,
        });
    }
    if map.is_empty() {
        return None;
    }
    let key = match texts.as_slice() {
        [Json::String(s)] => s.clone(),
        _ => Json::Array(texts).to_string(),
    };
    Some((map, key))
}

/// `pg.<schema>.<table>.<op>`, with characters a kind cannot hold (in quoted names) as `_`.
fn table_kind(rel: &Rel, op: &str) -> String {
    let clean = |s: &str| -> String {
        let c: String = s
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if c.is_empty() { "_".into() } else { c }
    };
    format!("pg.{}.{}.{op}", clean(&rel.schema), clean(&rel.table))
}

fn table_event(rel: &Rel, tx: &Tx, op: &str, key: Option<String>, data: Json) -> NewEvent {
    let position = tx.position();
    NewEvent {
        id: EventId::sha256(position.as_bytes()),
        kind: table_kind(rel, op),
        key,
        occurred_at: Some(tx.commit_time),
        position: Some(position),
        payload: Vec::new(),
        data,
        tenant: None,
        retracts: None,
    }
}

fn table_row_event(
    rel: &Rel,
    tx: &Tx,
    op: &str,
    new: Option<&Tuple<'_>>,
    old: Option<&(OldKind, Tuple<'_>)>,
) -> NewEvent {
    let mut unchanged = Vec::new();
    let new_json = new.map(|t| {
        let (m, u) = row_json(rel, t);
        unchanged = u;
        Json::Object(m)
    });
    let old_json = old.map(|(kind, t)| {
        let (mut m, _) = row_json(rel, t);
        if *kind == OldKind::Key {
            // Only the key columns are sent; the others read as NULL but are unknown.
            m.retain(|name, _| rel.columns.iter().any(|c| c.key && &c.name == name));
        }
        Json::Object(m)
    });
    let pk = new
        .and_then(|t| primary_key(rel, t))
        .or_else(|| old.and_then(|(_, t)| primary_key(rel, t)));
    let (pk_json, key) = match pk {
        Some((m, k)) => (Json::Object(m), Some(k)),
        None => (Json::Null, None),
    };
    let mut data = json!({
        "schema": rel.schema, "table": rel.table, "op": op,
        "commit_lsn": tx.commit_lsn.to_string(), "xid": tx.xid,
        "new": new_json, "old": old_json, "primary_key": pk_json,
    });
    if !unchanged.is_empty() {
        data["unchanged_toast"] = json!(unchanged);
    }
    table_event(rel, tx, op, key, data)
}

/// The text of an outbox column, or why it cannot be used.
fn outbox_text<'a>(
    rel: &Rel,
    row: &'a Tuple<'_>,
    idx: &Result<usize, String>,
    role: &str,
) -> Result<Option<std::borrow::Cow<'a, str>>, String> {
    let i = idx.clone()?;
    let name = &rel.columns[i].name;
    match row.0[i] {
        Value::Null => Ok(None),
        Value::UnchangedToast => Err(format!(
            "column {name:?} (outbox.{role}) was not sent (an unchanged TOAST value); set REPLICA IDENTITY FULL on the outbox table or do not update its rows"
        )),
        Value::Text(b) => std::str::from_utf8(b)
            .map(|s| Some(std::borrow::Cow::Borrowed(s)))
            .map_err(|_| format!("column {name:?} (outbox.{role}) is not UTF-8 text")),
        Value::Binary(b) => Ok(Some(std::borrow::Cow::Owned(hex::encode(b)))),
    }
}

fn outbox_event(rel: &Rel, cols: &OutboxCols, tx: &Tx, row: &Tuple<'_>) -> Result<NewEvent, String> {
    let col_name = |idx: &Result<usize, String>| idx.as_ref().map(|i| rel.columns[*i].name.clone()).unwrap_or_default();
    let id = outbox_text(rel, row, &cols.id, "id")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            format!(
                "column {:?} (outbox.id) is NULL or empty; every outbox row needs an idempotency key",
                col_name(&cols.id)
            )
        })?;
    let kind = outbox_text(rel, row, &cols.kind, "kind")?
        .ok_or_else(|| format!("column {:?} (outbox.kind) is NULL", col_name(&cols.kind)))?;
    let full_kind = format!("outbox.{kind}");
    if !crate::json_event::valid_kind(&full_kind) {
        return Err(format!(
            "column {:?} (outbox.kind) is {kind:?}; expected dot-separated words of letters, digits, _ or - (for example miner.portfolio_updated), at most {} bytes with the outbox. prefix",
            col_name(&cols.kind),
            crate::json_event::MAX_KIND_BYTES
        ));
    }
    let payload_idx = cols.payload.clone()?;
    let payload_col = &rel.columns[payload_idx];
    let data = match row.0[payload_idx] {
        Value::Null => {
            return Err(format!("column {:?} (outbox.payload) is NULL", payload_col.name));
        }
        Value::UnchangedToast => {
            return Err(format!(
                "column {:?} (outbox.payload) was not sent (an unchanged TOAST value); set REPLICA IDENTITY FULL on the outbox table or do not update its rows",
                payload_col.name
            ));
        }
        Value::Text(b) | Value::Binary(b) => match payload_col.type_oid {
            oid::JSON | oid::JSONB | oid::TEXT | oid::VARCHAR => serde_json::from_slice::<Json>(b)
                .map_err(|e| format!("column {:?} (outbox.payload) is not JSON: {e}", payload_col.name))?,
            other => {
                return Err(format!(
                    "column {:?} (outbox.payload) has type OID {other}; expected json, jsonb or text holding JSON",
                    payload_col.name
                ));
            }
        },
    };
    let key = match &cols.key {
        None => None,
        Some(idx) => match outbox_text(rel, row, idx, "key")? {
            Some(k) if k.len() > MAX_KEY_BYTES => {
                return Err(format!(
                    "column {:?} (outbox.key) is {} bytes long; at most {MAX_KEY_BYTES}",
                    col_name(idx),
                    k.len()
                ));
            }
            k => k.map(|k| k.into_owned()),
        },
    };
    let tenant = match &cols.tenant {
        None => None,
        Some(idx) => match outbox_text(rel, row, idx, "tenant")? {
            Some(t)
                if t.is_empty()
                    || t.len() > MAX_TENANT_BYTES
                    || !t
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.') =>
            {
                return Err(format!(
                    "column {:?} (outbox.tenant) is {t:?}; expected 1 to {MAX_TENANT_BYTES} letters, digits, '-', '_' or '.', or NULL for no tenant",
                    col_name(idx)
                ));
            }
            t => t.map(|t| t.into_owned()),
        },
    };
    Ok(NewEvent {
        id: EventId::sha256(id.as_bytes()),
        kind: full_kind,
        key,
        occurred_at: Some(tx.commit_time),
        position: Some(format!("{}/{}", tx.commit_lsn, tx.ordinal)),
        payload: Vec::new(),
        data,
        tenant,
        retracts: None,
    })
}

/// Whether the compact JSON of `v` is longer than `max` bytes (stops writing once it is).
fn json_len_exceeds(v: &Json, max: usize) -> bool {
    struct Count(usize, usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            if self.0 > self.1 {
                return Err(std::io::Error::other("too long"));
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    serde_json::to_writer(&mut Count(0, max), v).is_err()
}
