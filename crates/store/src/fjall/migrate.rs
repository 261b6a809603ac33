//! Upgrades of the on-disk layout, run once when a store is opened.
//!
//! **Dedup keys scoped by source** (ADR 0005). Stores written before it keyed `ids` and `observations` by
//! the bare event id, so one id was one event across every source. Now both are keyed by
//! [`EventId::in_source`]. The upgrade walks the log once, in batches: for every event whose `ids` entry
//! is still under its bare id, the entry and its observations move to the scoped key, in one atomic batch
//! per step, so a crash in the middle leaves a store the next open finishes upgrading. The meta flag
//! `m‖store/ids-scoped` marks a store as upgraded (a new store gets it at once).

use super::keys::{self, Tables};
use super::record;
use fjall::{Database, OwnedWriteBatch, PersistMode};
use tributary_core::StoreError;

const SCOPED: &str = "store/ids-scoped";
const STEP: usize = 4096;

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend {
        op: "upgrade the store to per-source dedup keys",
        source: Box::new(e),
    }
}

/// Moves `ids` and `observations` entries to per-source keys, unless the store has them already.
pub(crate) fn scope_ids(db: &Database, tables: &Tables) -> Result<(), StoreError> {
    let flag = keys::meta_key(b'm', SCOPED);
    if tables.meta.get(&flag).map_err(backend)?.is_some() {
        return Ok(());
    }
    let mut moved = 0u64;
    let mut batch = OwnedWriteBatch::with_capacity(db.clone(), STEP).durability(Some(PersistMode::SyncAll));
    let mut staged = 0;
    for kv in tables.events.iter() {
        let (k, v) = kv.into_inner().map_err(backend)?;
        let seq = keys::tail_u64(&k)?;
        let event = match record::decode_event(seq, &v) {
            Ok(e) => e,
            Err(error) => {
                tracing::error!(seq, %error, "an event record cannot be read; its id stays unscoped");
                continue;
            }
        };
        let id = event.event.id;
        let Some(entry) = tables.ids.get(id.0).map_err(backend)? else {
            continue; // moved already (an interrupted upgrade), or never indexed
        };
        if keys::decode_id_entry(&entry)?.seq != seq {
            continue;
        }
        let scoped = id.in_source(&event.source);
        batch.insert(&tables.ids, scoped.0, entry);
        batch.remove(&tables.ids, id.0);
        for g in tables.observations.prefix(id.0) {
            let (ok, ov) = g.into_inner().map_err(backend)?;
            let mut nk = scoped.0.to_vec();
            nk.extend_from_slice(&ok[32..]);
            batch.insert(&tables.observations, nk, ov);
            batch.remove(&tables.observations, ok);
        }
        moved += 1;
        staged += 1;
        if staged >= STEP {
            let next = OwnedWriteBatch::with_capacity(db.clone(), STEP).durability(Some(PersistMode::SyncAll));
            std::mem::replace(&mut batch, next).commit().map_err(backend)?;
            staged = 0;
        }
    }
    batch.insert(&tables.meta, flag, b"1".to_vec());
    batch.commit().map_err(backend)?;
    if moved > 0 {
        tracing::info!(
            events = moved,
            "store upgraded: event ids are now deduplicated per source (ADR 0005)"
        );
    }
    Ok(())
}
