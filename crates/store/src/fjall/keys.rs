//! Keyspaces, key layout and value encodings of the embedded store.
//!
//! All integers in keys are big-endian so that byte order is numeric order. `‖` is concatenation.
//!
//! | keyspace       | key                                          | value                                   |
//! |----------------|----------------------------------------------|-----------------------------------------|
//! | `events`       | seq u64                                      | event record (below)                    |
//! | `ids`          | event id (32 bytes)                          | seq u64 ‖ first observer's observation  |
//! | `observations` | event id (32) ‖ observer                     | observation of any later observer       |
//! | `meta`         | `c` ‖ len(source) u32 ‖ source ‖ partition   | checkpoint position (UTF-8)             |
//! |                | `u` ‖ subscription                           | cursor u64                              |
//! |                | `p` ‖ subscription                           | paused flag, one byte 0 or 1            |
//! |                | `m` ‖ key                                    | [`Log::put_meta`] value (UTF-8)         |
//! |                | `r` ‖ kind ‖ 0x00 ‖ name                     | catalog record: version u64 ‖ live u8 ‖ value (UTF-8) |
//! | `pending`      | subscription ‖ 0x00 ‖ seq u64                | [`Pending`] as JSON                     |
//! | `attempts`     | subscription ‖ 0x00 ‖ seq u64 ‖ attempt u32  | [`AttemptRecord`] as JSON               |
//! | `dead`         | subscription ‖ 0x00 ‖ seq u64                | [`DeadLetter`] as JSON                  |
//! | `rejects`      | source ‖ 0x00 ‖ counter u64                  | [`Reject`] as JSON                      |
//!
//! An observation is `first_seen i64 ‖ last_seen i64 ‖ count u64`; in `ids` it is followed by the
//! observer's name. The observer that delivered an event first is kept in its `ids` entry, which the
//! dedup check reads anyway, so a new event costs two writes (`events`, `ids`) instead of three;
//! `observations` only holds the observers that came later.
//!
//! Names may contain 0x00, so a prefix scan over `name ‖ 0x00` also meets keys of longer names that
//! start with `name ‖ 0x00`; scans keep only keys of the exact expected length, which belong to `name`
//! alone (see [`exact`]).
//!
//! Event record, version 1 (integers little-endian, `str` = u32 length ‖ UTF-8 bytes, `opt<T>` = one
//! byte 0 for absent or 1 followed by `T`):
//! `0x01 ‖ id [32] ‖ ingested_at i64 ‖ source str ‖ kind str ‖ key opt<str> ‖ occurred_at opt<i64> ‖
//! position opt<str> ‖ payload (u32 length ‖ bytes) ‖ data str (its JSON text) ‖ tenant opt<str> ‖
//! retracts opt<[32]>`.
//!
//! [`Log::put_meta`]: tributary_core::Log::put_meta
//! [`Pending`]: tributary_core::store::Pending
//! [`AttemptRecord`]: tributary_core::store::AttemptRecord
//! [`DeadLetter`]: tributary_core::store::DeadLetter
//! [`Reject`]: tributary_core::Reject

use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use serde::{Serialize, de::DeserializeOwned};
use std::sync::Arc;
use tributary_core::catalog::{RecordKind, Version};
use tributary_core::{EventId, Observation, Seq, StoreError, Timestamp};

/// A keyspace that takes plain staged writes (events, ids and observations are staged apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Ks {
    Meta,
    Pending,
    Attempts,
    Dead,
    Rejects,
}

/// The open keyspaces.
pub(crate) struct Tables {
    pub events: Keyspace,
    pub ids: Keyspace,
    pub observations: Keyspace,
    pub meta: Keyspace,
    pub pending: Keyspace,
    pub attempts: Keyspace,
    pub dead: Keyspace,
    pub rejects: Keyspace,
}

/// The memtable size of every keyspace.
pub const MEMTABLE_BYTES: u64 = 16 * 1024 * 1024;

impl Tables {
    /// Opens (or creates) every keyspace.
    pub fn open(db: &Database) -> fjall::Result<Self> {
        // 16 MiB memtables (fjall's default is 64 MiB per keyspace): with eight keyspaces the default lets
        // resident memory climb past 400 MB under sustained load; 16 MiB keeps it bounded (see
        // docs/benchmarks.md, memory) at no measurable cost to ingest.
        let options = || KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES);
        let ks = |name: &str| db.keyspace(name, options);
        Ok(Self {
            events: ks("events")?,
            ids: ks("ids")?,
            observations: ks("observations")?,
            meta: ks("meta")?,
            pending: ks("pending")?,
            attempts: ks("attempts")?,
            dead: ks("dead")?,
            rejects: ks("rejects")?,
        })
    }

    /// The handle of one keyspace.
    pub fn get(&self, ks: Ks) -> &Keyspace {
        match ks {
            Ks::Meta => &self.meta,
            Ks::Pending => &self.pending,
            Ks::Attempts => &self.attempts,
            Ks::Dead => &self.dead,
            Ks::Rejects => &self.rejects,
        }
    }
}

/// `name ‖ 0x00 ‖ n` (pending, dead letters, rejects).
pub(crate) fn name_seq(name: &str, n: u64) -> Vec<u8> {
    let mut k = name_prefix(name);
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// `name ‖ 0x00`, the prefix of every key of one subscription or source.
pub(crate) fn name_prefix(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 13);
    k.extend_from_slice(name.as_bytes());
    k.push(0);
    k
}

/// `subscription ‖ 0x00 ‖ seq ‖ attempt`.
pub(crate) fn attempt_key(sub: &str, seq: Seq, attempt: u32) -> Vec<u8> {
    let mut k = name_seq(sub, seq);
    k.extend_from_slice(&attempt.to_be_bytes());
    k
}

/// Whether `key`, found under `prefix`, has exactly `tail` more bytes (so belongs to that name).
pub(crate) fn exact(key: &[u8], prefix: &[u8], tail: usize) -> bool {
    key.len() == prefix.len() + tail
}

/// The trailing big-endian u64 of a key.
pub(crate) fn tail_u64(key: &[u8]) -> Result<u64, StoreError> {
    key.len()
        .checked_sub(8)
        .and_then(|at| key.get(at..))
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| corrupt("key", format!("{} bytes, expected at least 8", key.len())))
}

/// A meta key: a one-byte tag then the name.
pub(crate) fn meta_key(tag: u8, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.push(tag);
    k.extend_from_slice(name.as_bytes());
    k
}

/// A catalog record's key: `r ‖ kind ‖ 0x00 ‖ name` (kind names hold no 0x00, so a kind's records are
/// one contiguous range in name order).
pub(crate) fn catalog_key(kind: RecordKind, name: &str) -> Vec<u8> {
    let mut k = catalog_prefix(kind);
    k.extend_from_slice(name.as_bytes());
    k
}

/// `r ‖ kind ‖ 0x00`.
pub(crate) fn catalog_prefix(kind: RecordKind) -> Vec<u8> {
    let mut k = Vec::with_capacity(32);
    k.push(b'r');
    k.extend_from_slice(kind.as_str().as_bytes());
    k.push(0);
    k
}

/// A catalog value: `version u64 ‖ live u8 ‖ value`; a tombstone (`None`) keeps the version.
pub(crate) fn encode_record(version: Version, value: Option<&str>) -> Vec<u8> {
    let mut v = Vec::with_capacity(9 + value.map_or(0, str::len));
    v.extend_from_slice(&version.to_be_bytes());
    v.push(u8::from(value.is_some()));
    v.extend_from_slice(value.unwrap_or_default().as_bytes());
    v
}

/// Decodes a catalog value into its version and value (`None`: a tombstone).
pub(crate) fn decode_record(v: &[u8]) -> Result<(Version, Option<String>), StoreError> {
    let (version, rest) = v
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("catalog record", format!("{} bytes, expected at least 9", v.len())))?;
    let version = u64::from_be_bytes(*version);
    match rest.split_first() {
        Some((0, _)) => Ok((version, None)),
        Some((1, text)) => Ok((version, Some(utf8("catalog record", text)?))),
        Some((flag, _)) => Err(corrupt("catalog record", format!("live flag {flag}, expected 0 or 1"))),
        None => Err(corrupt("catalog record", "no live flag".into())),
    }
}

/// `c ‖ len(source) ‖ source`, the prefix of a source's checkpoints.
pub(crate) fn checkpoint_prefix(source: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(source.len() + 32);
    k.push(b'c');
    k.extend_from_slice(&(source.len() as u32).to_be_bytes());
    k.extend_from_slice(source.as_bytes());
    k
}

/// Observation key: `id ‖ observer`.
pub(crate) fn observation_key(id: &EventId, observer: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + observer.len());
    k.extend_from_slice(&id.0);
    k.extend_from_slice(observer.as_bytes());
    k
}

/// `(first_seen, last_seen, count)`.
pub(crate) type Obs = (Timestamp, Timestamp, u64);

/// Observation value: `first_seen ‖ last_seen ‖ count`.
pub(crate) fn encode_observation((first, last, count): Obs) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    put_observation(&mut v, (first, last, count));
    v
}

fn put_observation(v: &mut Vec<u8>, (first, last, count): Obs) {
    v.extend_from_slice(&first.0.to_be_bytes());
    v.extend_from_slice(&last.0.to_be_bytes());
    v.extend_from_slice(&count.to_be_bytes());
}

/// An `ids` value: where the event is stored, and who delivered it first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct IdEntry {
    pub seq: Seq,
    pub observer: Arc<str>,
    pub obs: Obs,
}

pub(crate) fn encode_id_entry(e: &IdEntry) -> Vec<u8> {
    let mut v = Vec::with_capacity(32 + e.observer.len());
    v.extend_from_slice(&e.seq.to_be_bytes());
    put_observation(&mut v, e.obs);
    v.extend_from_slice(e.observer.as_bytes());
    v
}

pub(crate) fn decode_id_entry(v: &[u8]) -> Result<IdEntry, StoreError> {
    let short = || corrupt("id entry", format!("{} bytes, expected at least 32", v.len()));
    let (seq, rest) = v.split_first_chunk::<8>().ok_or_else(short)?;
    let (obs, observer) = rest.split_first_chunk::<24>().ok_or_else(short)?;
    let observer =
        std::str::from_utf8(observer).map_err(|e| corrupt("id entry", format!("observer is not UTF-8: {e}")))?;
    Ok(IdEntry {
        seq: u64::from_be_bytes(*seq),
        observer: observer.into(),
        obs: decode_observation(obs)?,
    })
}

/// Decodes an observation value into `(first_seen, last_seen, count)`.
pub(crate) fn decode_observation(v: &[u8]) -> Result<Obs, StoreError> {
    let word = |i: usize| -> Option<[u8; 8]> { v.get(i * 8..i * 8 + 8)?.try_into().ok() };
    match (v.len(), word(0), word(1), word(2)) {
        (24, Some(a), Some(b), Some(c)) => Ok((
            Timestamp(i64::from_be_bytes(a)),
            Timestamp(i64::from_be_bytes(b)),
            u64::from_be_bytes(c),
        )),
        _ => Err(corrupt("observation", format!("{} bytes, expected 24", v.len()))),
    }
}

/// Decodes an `observations` entry.
pub(crate) fn observation(key: &[u8], v: &[u8]) -> Result<Observation, StoreError> {
    let (id, observer) = key
        .split_first_chunk::<32>()
        .ok_or_else(|| corrupt("observation", "key shorter than an id".into()))?;
    let observer =
        std::str::from_utf8(observer).map_err(|e| corrupt("observation", format!("observer is not UTF-8: {e}")))?;
    let (first_seen, last_seen, count) = decode_observation(v)?;
    Ok(Observation {
        event_id: EventId(*id),
        observer: observer.to_owned(),
        first_seen,
        last_seen,
        count,
    })
}

/// A small record as JSON.
pub(crate) fn to_json<T: Serialize>(what: &'static str, v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| corrupt(what, format!("cannot encode: {e}")))
}

/// A small record from JSON.
pub(crate) fn from_json<T: DeserializeOwned>(what: &'static str, v: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(v).map_err(|e| corrupt(what, e.to_string()))
}

/// A UTF-8 value.
pub(crate) fn utf8(what: &'static str, v: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(v.to_vec()).map_err(|e| corrupt(what, e.to_string()))
}

pub(crate) fn corrupt(what: &'static str, detail: String) -> StoreError {
    StoreError::Corrupt { what, detail }
}
