//! Updates waiting for their channel's announcement, kept in the store's meta entries so that a restart
//! does not turn them into `unknown_channel` problems.
//!
//! ```text
//! lightning/{source}/waiting/{serial:016x}   one WaitingRecord as JSON
//! ```
//!
//! An entry is written when its update starts waiting and removed when it is released or dropped, in the
//! same atomic write as the batch and checkpoint that caused it ([`Output::into_batches`]): what is kept
//! always matches the source's position, whatever way the node stopped (a SIGKILL or power loss
//! included). At most `max_waiting_updates` entries exist: the queue's bound.
//!
//! [`Output::into_batches`]: crate::lightning::pipeline::Output::into_batches

use crate::lightning::pipeline::{WaitingRecord, waiting_prefix};
use tributary_core::store::AppendBatch;
use tributary_core::{SourceContext, SourceError, Timestamp};

/// Reads back the kept updates, oldest first, with their serials. An entry that cannot be read is
/// reported and removed.
pub(crate) async fn load(cx: &SourceContext) -> Result<Vec<(u64, WaitingRecord)>, SourceError> {
    let prefix = waiting_prefix(&cx.name);
    let store_err = super::task::store_err(cx);
    let mut records = Vec::new();
    let mut unreadable = Vec::new();
    for (key, text) in cx.store.meta_prefix(&prefix).await.map_err(&store_err)? {
        let serial = u64::from_str_radix(&key[prefix.len()..], 16).ok();
        match (serial, serde_json::from_str::<WaitingRecord>(&text)) {
            (Some(serial), Ok(record)) => records.push((serial, record)),
            (_, Err(error)) => {
                tracing::warn!(source = %cx.name, %key, %error, "a kept waiting update cannot be read back; it is dropped");
                unreadable.push((key, None));
            }
            (None, Ok(_)) => {
                tracing::warn!(source = %cx.name, %key, "a kept waiting update has no serial in its key; it is dropped");
                unreadable.push((key, None));
            }
        }
    }
    if !unreadable.is_empty() {
        let batch = AppendBatch {
            source: cx.name.clone(),
            observer: cx.name.clone(),
            seen_at: Timestamp::now(),
            meta: unreadable,
            ..AppendBatch::default()
        };
        cx.store.append(batch).await.map_err(&store_err)?;
    }
    Ok(records)
}
