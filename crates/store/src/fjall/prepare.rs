//! Work done by the caller before a write reaches the writer thread: encoding every record.
//!
//! The writer thread is the ingest bottleneck, so everything that needs no store state (encoding
//! events, rejects and delivery records, dropping the caller's values) happens here, in parallel.

use super::keys::{self, Ks};
use super::record;
use std::sync::Arc;
use tributary_core::store::{AppendBatch, DeliveryUpdate};
use tributary_core::{EventId, StoreError, Timestamp};

/// One staged key: a value, or `None` for a removal.
pub(crate) type Op = (Ks, Vec<u8>, Option<Vec<u8>>);

/// An [`AppendBatch`] with its records encoded.
pub(crate) struct PreparedAppend {
    pub source: String,
    pub observer: Arc<str>,
    pub seen_at: Timestamp,
    /// Each event's dedup key ([`EventId::in_source`]) and record; the writer fills in `ingested_at`.
    pub events: Vec<(EventId, Vec<u8>)>,
    /// Each reject as JSON.
    pub rejects: Vec<Vec<u8>>,
    /// The checkpoint's meta key and value.
    pub checkpoint: Option<(Vec<u8>, Vec<u8>)>,
    /// Meta entries put or removed with the batch.
    pub meta: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Encodes a batch.
pub(crate) fn append(batch: AppendBatch) -> Result<PreparedAppend, StoreError> {
    let source = batch.source;
    let events = batch
        .events
        .iter()
        .map(|ev| {
            (
                ev.id.in_source(&source),
                record::encode_event(ev, &source, Timestamp(0)),
            )
        })
        .collect();
    let rejects = batch
        .rejects
        .iter()
        .map(|r| keys::to_json("reject", r))
        .collect::<Result<_, _>>()?;
    let checkpoint = batch.checkpoint.map(|cp| {
        let mut key = keys::checkpoint_prefix(&source);
        key.extend_from_slice(cp.partition.as_bytes());
        (key, cp.position.into_bytes())
    });
    let meta = batch
        .meta
        .into_iter()
        .map(|(k, v)| (keys::meta_key(b'm', &k), v.map(String::into_bytes)))
        .collect();
    Ok(PreparedAppend {
        meta,
        observer: batch.observer.into(),
        seen_at: batch.seen_at,
        events,
        rejects,
        checkpoint,
        source,
    })
}

/// The writes of a delivery update, in order; when two touch one key, the later wins, so removals
/// come before insertions.
pub(crate) fn delivery(sub: &str, u: &DeliveryUpdate) -> Result<Vec<Op>, StoreError> {
    let mut ops = Vec::new();
    if let Some(cursor) = u.cursor {
        let value = cursor.to_be_bytes().to_vec();
        ops.push((Ks::Meta, keys::meta_key(b'u', sub), Some(value)));
    }
    if let Some(paused) = u.paused {
        ops.push((Ks::Meta, keys::meta_key(b'p', sub), Some(vec![u8::from(paused)])));
    }
    for a in &u.attempts {
        let key = keys::attempt_key(sub, a.seq, a.attempt);
        ops.push((Ks::Attempts, key, Some(keys::to_json("attempt", a)?)));
    }
    for seq in &u.pending_remove {
        ops.push((Ks::Pending, keys::name_seq(sub, *seq), None));
    }
    for p in &u.pending_put {
        let value = keys::to_json("pending", p)?;
        ops.push((Ks::Pending, keys::name_seq(sub, p.seq), Some(value)));
    }
    for seq in &u.dead_remove {
        ops.push((Ks::Dead, keys::name_seq(sub, *seq), None));
    }
    for d in &u.dead_letters {
        let value = keys::to_json("dead letter", d)?;
        ops.push((Ks::Dead, keys::name_seq(sub, d.seq), Some(value)));
    }
    Ok(ops)
}

/// The write of a meta value.
pub(crate) fn meta(key: &str, value: &str) -> Vec<Op> {
    let value = value.as_bytes().to_vec();
    vec![(Ks::Meta, keys::meta_key(b'm', key), Some(value))]
}
