//! Upgrades of the on-disk layout, run once when a store is opened.
//!
//! **Dedup keys scoped by source** (ADR 0005). Stores written before it keyed `ids` and `observations` by
//! the bare event id, so one id was one event across every source. Now both are keyed by
//! [`EventId::in_source`]. The upgrade walks the log once, in batches: for every event whose `ids` entry
//! is still under its bare id, the entry and its observations move to the scoped key, in one atomic batch
//! per step, so a crash in the middle leaves a store the next open finishes upgrading. The meta flag
//! `m‖store/ids-scoped` marks a store as upgraded (a new store gets it at once).
//!
//! **The catalog** (ADR 0006). Stores written before it kept tenants, API keys, API subscriptions, their
//! deletion marks, generated sink secrets and idempotent answers as meta values under string prefixes
//! (`tenant/NAME`, `api-key/ID`, `api-subscription/NAME`, `deleted-subscription/NAME`,
//! `subscription/NAME/secret`, `idempotency/BUCKET/CALLER`), an empty value meaning deleted. The upgrade
//! moves each into a catalog record at version 1 (an empty value is left out) in one atomic batch, with
//! the flag `m‖store/catalog`.

use super::keys::{self, Tables};
use super::record;
use fjall::{Database, OwnedWriteBatch, PersistMode};
use tributary_core::StoreError;
use tributary_core::catalog::RecordKind;

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

const CATALOG: &str = "store/catalog";

/// The catalog record a legacy meta key became, if it is one.
pub(crate) fn legacy_record(key: &str) -> Option<(RecordKind, &str)> {
    let prefixed = [
        ("tenant/", RecordKind::Tenant),
        ("api-key/", RecordKind::ApiKey),
        ("api-subscription/", RecordKind::Subscription),
        ("deleted-subscription/", RecordKind::DeletedSubscription),
        ("idempotency/", RecordKind::Idempotency),
    ];
    for (prefix, kind) in prefixed {
        if let Some(name) = key.strip_prefix(prefix) {
            return Some((kind, name));
        }
    }
    let name = key.strip_prefix("subscription/")?.strip_suffix("/secret")?;
    Some((RecordKind::SinkSecret, name))
}

/// Moves the legacy catalog meta values into catalog records, unless the store has done so already.
pub(crate) fn catalog(db: &Database, tables: &Tables) -> Result<(), StoreError> {
    let backend = |e| StoreError::Backend {
        op: "upgrade the store to the catalog",
        source: Box::new(e),
    };
    let flag = keys::meta_key(b'm', CATALOG);
    if tables.meta.get(&flag).map_err(backend)?.is_some() {
        return Ok(());
    }
    let mut batch = OwnedWriteBatch::with_capacity(db.clone(), 64).durability(Some(PersistMode::SyncAll));
    let mut moved = 0u64;
    for g in tables.meta.prefix([b'm']) {
        let (k, v) = g.into_inner().map_err(backend)?;
        let Ok(key) = std::str::from_utf8(&k[1..]) else {
            continue;
        };
        let Some((kind, name)) = legacy_record(key) else {
            continue;
        };
        if !v.is_empty() {
            let value = String::from_utf8_lossy(&v);
            batch.insert(
                &tables.meta,
                keys::catalog_key(kind, name),
                keys::encode_record(1, Some(&value)),
            );
            moved += 1;
        }
        batch.remove(&tables.meta, k.to_vec());
    }
    batch.insert(&tables.meta, flag, b"1".to_vec());
    batch.commit().map_err(backend)?;
    if moved > 0 {
        tracing::info!(
            records = moved,
            "store upgraded: tenants, keys, subscriptions, secrets and idempotent answers are catalog records (ADR 0006)"
        );
    }
    Ok(())
}
