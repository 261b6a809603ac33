//! Updates waiting for their channel's announcement, kept in the store's meta entries across a
//! restart, so that a restart does not turn them into `unknown_channel` problems.
//!
//! ```text
//! lightning/{source}/waiting/{n:06}   a JSON array of at most CHUNK WaitingRecords, oldest first ("" = none)
//! ```
//!
//! Written at shutdown (at most `max_waiting_updates` records: the queue's bound), read back and emptied
//! at start. A node that is killed (SIGKILL, power loss) does not write them: the updates waiting then
//! are lost, as they were before they were kept (collectors send current updates again).

use crate::lightning::pipeline::WaitingRecord;
use tributary_core::{SourceContext, SourceError};

/// Records per meta entry.
pub(crate) const CHUNK: usize = 2000;

fn prefix(source: &str) -> String {
    format!("lightning/{source}/waiting/")
}

fn store_err(cx: &SourceContext) -> impl Fn(tributary_core::StoreError) -> SourceError + '_ {
    super::task::store_err(cx)
}

/// Keeps `records` (oldest first) for the next start.
pub(crate) async fn persist(cx: &SourceContext, records: &[WaitingRecord]) -> Result<(), SourceError> {
    let prefix = prefix(&cx.name);
    for (n, chunk) in records.chunks(CHUNK).enumerate() {
        let text = serde_json::to_string(chunk).expect("waiting records serialize");
        cx.store
            .put_meta(&format!("{prefix}{n:06}"), &text)
            .await
            .map_err(store_err(cx))?;
    }
    Ok(())
}

/// Reads back what [`persist`] kept, oldest first, and empties the entries.
pub(crate) async fn load(cx: &SourceContext) -> Result<Vec<WaitingRecord>, SourceError> {
    let prefix = prefix(&cx.name);
    let mut records = Vec::new();
    for (key, text) in cx.store.meta_prefix(&prefix).await.map_err(store_err(cx))? {
        if text.is_empty() {
            continue;
        }
        match serde_json::from_str::<Vec<WaitingRecord>>(&text) {
            Ok(r) => records.extend(r),
            Err(error) => {
                tracing::warn!(source = %cx.name, %key, %error, "kept waiting updates cannot be read back; they are dropped")
            }
        }
        cx.store.put_meta(&key, "").await.map_err(store_err(cx))?;
    }
    Ok(records)
}
