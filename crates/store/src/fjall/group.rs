//! One commit group: the writes of every request the writer drained, staged in memory.
//!
//! An append is staged in two phases: first every read it needs (known ids, current observations, the
//! reject counter), which may fail; then its writes, which cannot. So a request that fails leaves
//! nothing behind and the rest of the group still commits.
//!
//! Staging is keyed by (keyspace, key), last write wins: a batch must not hold two writes to one key,
//! because they share one engine sequence number and their order would be undefined.

use super::keys::{self, IdEntry, Ks, Obs, Tables};
use super::prepare::{Op, PreparedAppend};
use super::record;
use super::store::Shared;
use super::writer::{Cas, backend};
use crate::REJECTS_KEPT_PER_SOURCE;
use fjall::{Database, OwnedWriteBatch, PersistMode};
use std::collections::HashMap;
use std::sync::Arc;
use tributary_core::catalog::{Conflict, Version, next_version};
use tributary_core::store::{AppendItem, AppendOutcome};
use tributary_core::{EventId, Seq, StoreError, Timestamp};

/// The staged writes of one group.
pub(crate) struct Group {
    /// The sequence number the next new event gets.
    pub next_seq: Seq,
    /// Per source, the counter its next reject gets.
    pub reject_next: HashMap<String, u64>,
    /// Whether the group must be synced before it is answered (it holds an append).
    pub durable: bool,
    events: Vec<(Seq, Vec<u8>)>,
    /// `ids` entries to write: new events, and known events their first observer saw again.
    ids: HashMap<EventId, IdEntry>,
    /// Observations by later observers.
    observations: HashMap<(EventId, Arc<str>), Obs>,
    other: HashMap<(Ks, Vec<u8>), Option<Vec<u8>>>,
}

/// What an append needs to know about one of its events from earlier groups.
#[derive(Default)]
struct Found {
    /// Its `ids` entry, unless this group holds it.
    entry: Option<IdEntry>,
    /// The batch observer's observation, unless this group holds it or it is the first observer.
    obs: Option<Obs>,
}

impl Group {
    pub fn new(next_seq: Seq) -> Self {
        Self {
            next_seq,
            reject_next: HashMap::new(),
            durable: false,
            events: Vec::new(),
            ids: HashMap::new(),
            observations: HashMap::new(),
            other: HashMap::new(),
        }
    }

    /// Stages plain writes (delivery state, meta values).
    pub fn stage_ops(&mut self, ops: Vec<Op>) {
        for (ks, key, value) in ops {
            self.other.insert((ks, key), value);
        }
    }

    /// Stages a catalog change if the record (as this group leaves it, else as committed) is what it
    /// expects; durable, like every catalog change.
    pub fn stage_cas(&mut self, shared: &Shared, cas: Cas) -> Result<Result<Version, Conflict>, StoreError> {
        let key = (Ks::Meta, keys::catalog_key(cas.kind, &cas.name));
        let found = match self.other.get(&key) {
            Some(Some(staged)) => Some(keys::decode_record(staged)?),
            Some(None) => None,
            None => shared.catalog_entry(cas.kind, &cas.name)?,
        };
        let stored = found.map(|(v, value)| (v, value.is_some()));
        let next = match next_version(cas.kind, &cas.name, cas.expect, stored, cas.value.is_none()) {
            Ok(next) => next,
            Err(conflict) => return Ok(Err(conflict)),
        };
        self.other
            .insert(key, Some(keys::encode_record(next, cas.value.as_deref())));
        self.durable = true;
        Ok(Ok(next))
    }

    /// Stages an append. `committed_rejects` holds the reject counters of earlier groups.
    pub fn stage_append(
        &mut self,
        tables: &Tables,
        committed_rejects: &HashMap<String, u64>,
        a: PreparedAppend,
        now: Timestamp,
    ) -> Result<AppendOutcome, StoreError> {
        // Phase 1: reads only.
        let first_reject = match a.rejects.is_empty() {
            true => 0,
            false => self.reject_base(tables, committed_rejects, &a.source)?,
        };
        let mut found = Vec::with_capacity(a.events.len());
        for (id, _) in &a.events {
            found.push(self.lookup(tables, id, &a.observer)?);
        }
        // Phase 2: writes only.
        let mut items = Vec::with_capacity(a.events.len());
        let seen = a.seen_at;
        for ((id, mut record), found) in a.events.into_iter().zip(found) {
            if let Some(entry) = found.entry {
                self.ids.entry(id).or_insert(entry);
            }
            let Some(entry) = self.ids.get_mut(&id) else {
                let seq = self.next_seq;
                self.next_seq += 1;
                record::set_ingested_at(&mut record, now);
                self.events.push((seq, record));
                let observer = a.observer.clone();
                let entry = IdEntry {
                    seq,
                    observer,
                    obs: (seen, seen, 1),
                };
                self.ids.insert(id, entry);
                items.push(AppendItem::Accepted(seq));
                continue;
            };
            items.push(AppendItem::Duplicate(entry.seq));
            if entry.observer == a.observer {
                entry.obs = (entry.obs.0, seen, entry.obs.2 + 1);
                continue;
            }
            let key = (id, a.observer.clone());
            let before = self.observations.get(&key).copied().or(found.obs);
            let obs = match before {
                Some((first, _, count)) => (first, seen, count + 1),
                None => (seen, seen, 1),
            };
            self.observations.insert(key, obs);
        }
        let mut n = first_reject;
        for reject in a.rejects {
            let key = keys::name_seq(&a.source, n);
            self.other.insert((Ks::Rejects, key), Some(reject));
            if let Some(old) = n.checked_sub(REJECTS_KEPT_PER_SOURCE) {
                let key = keys::name_seq(&a.source, old);
                self.other.insert((Ks::Rejects, key), None);
            }
            n += 1;
        }
        if n != first_reject {
            self.reject_next.insert(a.source, n);
        }
        if let Some((key, value)) = a.checkpoint {
            self.other.insert((Ks::Meta, key), Some(value));
        }
        for (key, value) in a.meta {
            self.other.insert((Ks::Meta, key), value);
        }
        self.durable = true;
        Ok(AppendOutcome { items })
    }

    /// Reads what an event's staging needs from earlier groups.
    fn lookup(&self, tables: &Tables, id: &EventId, observer: &Arc<str>) -> Result<Found, StoreError> {
        let mut found = Found::default();
        let first = match self.ids.get(id) {
            Some(entry) => &entry.observer,
            None => {
                let Some(v) = tables.ids.get(id.0).map_err(|e| backend("read", e))? else {
                    return Ok(found);
                };
                &found.entry.insert(keys::decode_id_entry(&v)?).observer.clone()
            }
        };
        if first != observer && !self.observations.contains_key(&(*id, observer.clone())) {
            let key = keys::observation_key(id, observer);
            let v = tables.observations.get(key).map_err(|e| backend("read", e))?;
            found.obs = v.map(|v| keys::decode_observation(&v)).transpose()?;
        }
        Ok(found)
    }

    /// The counter the next reject of `source` gets.
    fn reject_base(&self, tables: &Tables, committed: &HashMap<String, u64>, source: &str) -> Result<u64, StoreError> {
        if let Some(n) = self.reject_next.get(source).or(committed.get(source)) {
            return Ok(*n);
        }
        let prefix = keys::name_prefix(source);
        for kv in tables.rejects.prefix(&prefix).rev() {
            let key = kv.key().map_err(|e| backend("read", e))?;
            if keys::exact(&key, &prefix, 8) {
                return Ok(keys::tail_u64(&key)? + 1);
            }
        }
        Ok(0)
    }

    /// Whether nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.observations.is_empty() && self.other.is_empty()
    }

    /// The staged writes as one engine batch that syncs (or only flushes) the journal on commit.
    pub fn take_batch(&mut self, db: &Database, tables: &Tables) -> OwnedWriteBatch {
        let mode = match self.durable {
            true => PersistMode::SyncData,
            false => PersistMode::Buffer,
        };
        let size = self.events.len() + self.ids.len() + self.observations.len() + self.other.len();
        let mut batch = OwnedWriteBatch::with_capacity(db.clone(), size).durability(Some(mode));
        for (seq, record) in self.events.drain(..) {
            batch.insert(&tables.events, seq.to_be_bytes(), record);
        }
        for (id, entry) in self.ids.drain() {
            batch.insert(&tables.ids, id.0, keys::encode_id_entry(&entry));
        }
        for ((id, observer), obs) in self.observations.drain() {
            let key = keys::observation_key(&id, &observer);
            batch.insert(&tables.observations, key, keys::encode_observation(obs));
        }
        for ((ks, key), value) in self.other.drain() {
            match value {
                Some(v) => batch.insert(tables.get(ks), key, v),
                None => batch.remove(tables.get(ks), key),
            }
        }
        batch
    }
}
