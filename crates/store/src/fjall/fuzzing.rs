//! The store's decoders, exposed for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off by
//! default; nothing else may use it). Each takes the bytes of one stored key or value, as a damaged or
//! doctored data directory could hold them, and must answer an error naming what is corrupt, never panic.
//! The encoders are here too, so that a target can check that whatever decodes encodes back the same.

use super::keys::{self, IdEntry};
use super::record;
use tributary_core::store::{AttemptRecord, DeadLetter, Pending};
use tributary_core::{Observation, Reject, Seq, StoreError, StoredEvent, Timestamp};

/// `(seq, first observer, (first_seen, last_seen, count))` of an `ids` value.
pub type IdValue = (Seq, String, (Timestamp, Timestamp, u64));

/// Decodes an `events` value stored at `seq`.
pub fn decode_event(seq: Seq, v: &[u8]) -> Result<StoredEvent, StoreError> {
    record::decode_event(seq, v)
}

/// Encodes an event record as the writer does.
pub fn encode_event(e: &StoredEvent) -> Vec<u8> {
    record::encode_event(&e.event, &e.source, e.ingested_at)
}

/// Decodes an `ids` value.
pub fn decode_id_entry(v: &[u8]) -> Result<IdValue, StoreError> {
    keys::decode_id_entry(v).map(|e| (e.seq, e.observer.to_string(), e.obs))
}

/// Encodes an `ids` value.
pub fn encode_id_entry((seq, observer, obs): &IdValue) -> Vec<u8> {
    keys::encode_id_entry(&IdEntry {
        seq: *seq,
        observer: observer.as_str().into(),
        obs: *obs,
    })
}

/// Decodes an `observations` entry (its key and value).
pub fn decode_observation(key: &[u8], v: &[u8]) -> Result<Observation, StoreError> {
    keys::observation(key, v)
}

/// Decodes a `pending` value.
pub fn decode_pending(v: &[u8]) -> Result<Pending, StoreError> {
    keys::from_json("pending", v)
}

/// Decodes a `rejects` value.
pub fn decode_reject(v: &[u8]) -> Result<Reject, StoreError> {
    keys::from_json("reject", v)
}

/// Decodes an `attempts` value.
pub fn decode_attempt(v: &[u8]) -> Result<AttemptRecord, StoreError> {
    keys::from_json("attempt", v)
}

/// Decodes a `dead_letters` value.
pub fn decode_dead_letter(v: &[u8]) -> Result<DeadLetter, StoreError> {
    keys::from_json("dead letter", v)
}

/// Encodes a JSON record (pending, reject, attempt, dead letter) as the writer does.
pub fn encode_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    keys::to_json("record", v)
}

/// Decodes a meta value (or a checkpoint position): UTF-8 text.
pub fn decode_meta(v: &[u8]) -> Result<String, StoreError> {
    keys::utf8("meta", v)
}

/// Decodes a catalog record value: its version and value (`None`: a tombstone).
pub fn decode_record(v: &[u8]) -> Result<(u64, Option<String>), StoreError> {
    keys::decode_record(v)
}

/// Encodes a catalog record value as the writer does.
pub fn encode_record(version: u64, value: Option<&str>) -> Vec<u8> {
    keys::encode_record(version, value)
}

/// The sequence number at the end of a key (events, pending, attempts, cursors).
pub fn key_seq(key: &[u8]) -> Result<Seq, StoreError> {
    keys::tail_u64(key)
}
