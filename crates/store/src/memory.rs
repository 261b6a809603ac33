//! [`MemoryStore`]: the [`Store`](tributary_core::Store) semantics over plain maps behind one mutex.
//!
//! Nothing survives the process. It is the reference the embedded backend is tested against and a
//! fast store for other crates' tests; [`MemoryStore::poison`] lets them exercise the fail-stop path.
//! Like the embedded store, a delivery update applies its removals before its insertions, and only the
//! newest [`REJECTS_KEPT_PER_SOURCE`] rejects of a source are kept.

use crate::REJECTS_KEPT_PER_SOURCE;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use tokio::sync::watch;
use tributary_core::catalog::{Catalog, Conflict, Entry, Expect, RecordKind, Version, Versioned, next_version};
use tributary_core::store::{
    AppendBatch, AppendItem, AppendOutcome, AttemptRecord, Checkpoint, DeadLetter, DeliveryUpdate, Pending,
    SubscriptionState,
};
use tributary_core::{DeliveryState, EventId, Log, Observation, Reject, Seq, StoreError, StoredEvent, Timestamp};

/// An in-memory store.
pub struct MemoryStore {
    state: Mutex<State>,
    seq_tx: watch::Sender<Seq>,
}

#[derive(Default)]
struct State {
    /// `events[i]` has seq `i + 1`.
    events: Vec<StoredEvent>,
    ids: HashMap<EventId, Seq>,
    observations: BTreeMap<(EventId, String), Observation>,
    /// (source, partition) -> position.
    checkpoints: BTreeMap<(String, String), String>,
    rejects: HashMap<String, VecDeque<Reject>>,
    subscriptions: HashMap<String, Subscription>,
    meta: HashMap<String, String>,
    /// (kind, name) -> (version, value; `None` for a tombstone).
    catalog: BTreeMap<(RecordKind, String), (Version, Option<String>)>,
    poison: Option<String>,
}

#[derive(Default)]
struct Subscription {
    cursor: Seq,
    paused: bool,
    pending: BTreeMap<Seq, Pending>,
    attempts: BTreeMap<(Seq, u32), AttemptRecord>,
    dead: BTreeMap<Seq, DeadLetter>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            seq_tx: watch::channel(0).0,
        }
    }

    /// Makes every later write fail with [`StoreError::Poisoned`], as a failed disk write would.
    pub fn poison(&self, reason: impl Into<String>) {
        let mut state = self.lock();
        if state.poison.is_none() {
            state.poison = Some(reason.into());
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is only changed by code that cannot panic halfway, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, if writes are allowed.
    fn writable(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        let state = self.lock();
        match &state.poison {
            Some(reason) => Err(StoreError::Poisoned(reason.clone())),
            None => Ok(state),
        }
    }
}

#[async_trait]
impl Log for MemoryStore {
    async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        let mut st = self.writable()?;
        let now = Timestamp::now();
        let mut items = Vec::with_capacity(batch.events.len());
        for ev in batch.events {
            let scoped = ev.id.in_source(&batch.source);
            let key = (scoped, batch.observer.clone());
            if let Some(&seq) = st.ids.get(&scoped) {
                let obs = st.observations.entry(key).or_insert(Observation {
                    event_id: ev.id,
                    observer: batch.observer.clone(),
                    first_seen: batch.seen_at,
                    last_seen: batch.seen_at,
                    count: 0,
                });
                obs.last_seen = batch.seen_at;
                obs.count += 1;
                items.push(AppendItem::Duplicate(seq));
                continue;
            }
            let seq = st.events.len() as Seq + 1;
            st.ids.insert(scoped, seq);
            st.observations.insert(
                key,
                Observation {
                    event_id: ev.id,
                    observer: batch.observer.clone(),
                    first_seen: batch.seen_at,
                    last_seen: batch.seen_at,
                    count: 1,
                },
            );
            st.events.push(StoredEvent {
                seq,
                source: batch.source.clone(),
                ingested_at: now,
                event: ev,
            });
            items.push(AppendItem::Accepted(seq));
        }
        let rejects = st.rejects.entry(batch.source.clone()).or_default();
        for reject in batch.rejects {
            rejects.push_back(reject);
            if rejects.len() as u64 > REJECTS_KEPT_PER_SOURCE {
                rejects.pop_front();
            }
        }
        if let Some(cp) = batch.checkpoint {
            st.checkpoints.insert((batch.source, cp.partition), cp.position);
        }
        for (key, value) in batch.meta {
            match value {
                Some(v) => st.meta.insert(key, v),
                None => st.meta.remove(&key),
            };
        }
        let last = st.events.len() as Seq;
        drop(st);
        if items.iter().any(|i| matches!(i, AppendItem::Accepted(_))) {
            self.seq_tx.send_replace(last);
        }
        Ok(AppendOutcome { items })
    }

    async fn read_from(&self, from: Seq, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let st = self.lock();
        let start = (from.max(1) - 1).min(st.events.len() as Seq) as usize;
        Ok(st.events[start..].iter().take(limit).cloned().collect())
    }

    async fn get(&self, source: &str, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        let st = self.lock();
        let seq = st.ids.get(&id.in_source(source)).copied();
        Ok(seq.and_then(|s| st.events.get(s as usize - 1).cloned()))
    }

    async fn get_seq(&self, seq: Seq) -> Result<Option<StoredEvent>, StoreError> {
        let st = self.lock();
        let i = seq.checked_sub(1).map(|i| i as usize);
        Ok(i.and_then(|i| st.events.get(i).cloned()))
    }

    async fn observations(&self, source: &str, id: &EventId) -> Result<Vec<Observation>, StoreError> {
        let st = self.lock();
        let scoped = id.in_source(source);
        let from = (scoped, String::new());
        let found = st.observations.range(from..);
        Ok(found
            .take_while(|((i, _), _)| *i == scoped)
            .map(|(_, o)| o.clone())
            .collect())
    }

    async fn checkpoints(&self, source: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let st = self.lock();
        let found = st.checkpoints.range((source.to_owned(), String::new())..);
        Ok(found
            .take_while(|((s, _), _)| s == source)
            .map(|((_, partition), position)| Checkpoint {
                partition: partition.clone(),
                position: position.clone(),
            })
            .collect())
    }

    async fn rejects(&self, source: &str, limit: usize) -> Result<Vec<Reject>, StoreError> {
        let st = self.lock();
        let Some(all) = st.rejects.get(source) else {
            return Ok(Vec::new());
        };
        let skip = all.len().saturating_sub(limit);
        Ok(all.iter().skip(skip).cloned().collect())
    }

    fn last_seq(&self) -> Seq {
        self.lock().events.len() as Seq
    }

    fn watch_seq(&self) -> watch::Receiver<Seq> {
        self.seq_tx.subscribe()
    }

    async fn meta_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut out: Vec<(String, String)> = self
            .lock()
            .meta
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().meta.get(key).cloned())
    }

    async fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.writable()?.meta.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn poisoned(&self) -> Option<String> {
        self.lock().poison.clone()
    }
}

#[async_trait]
impl DeliveryState for MemoryStore {
    async fn subscription_state(&self, subscription: &str) -> Result<SubscriptionState, StoreError> {
        let st = self.lock();
        Ok(match st.subscriptions.get(subscription) {
            Some(s) => SubscriptionState {
                cursor: s.cursor,
                paused: s.paused,
                pending: s.pending.values().cloned().collect(),
            },
            None => SubscriptionState::default(),
        })
    }

    async fn commit_delivery(&self, subscription: &str, update: DeliveryUpdate) -> Result<(), StoreError> {
        let mut st = self.writable()?;
        if update.is_empty() {
            return Ok(());
        }
        let sub = st.subscriptions.entry(subscription.to_owned()).or_default();
        if let Some(cursor) = update.cursor {
            sub.cursor = cursor;
        }
        if let Some(paused) = update.paused {
            sub.paused = paused;
        }
        for a in update.attempts {
            sub.attempts.insert((a.seq, a.attempt), a);
        }
        for seq in update.pending_remove {
            sub.pending.remove(&seq);
        }
        for p in update.pending_put {
            sub.pending.insert(p.seq, p);
        }
        for seq in update.dead_remove {
            sub.dead.remove(&seq);
        }
        for d in update.dead_letters {
            sub.dead.insert(d.seq, d);
        }
        Ok(())
    }

    async fn attempts(&self, subscription: &str, seq: Seq) -> Result<Vec<AttemptRecord>, StoreError> {
        let st = self.lock();
        let Some(sub) = st.subscriptions.get(subscription) else {
            return Ok(Vec::new());
        };
        let found = sub.attempts.range((seq, 0)..=(seq, u32::MAX));
        Ok(found.map(|(_, a)| a.clone()).collect())
    }

    async fn attempts_from(
        &self,
        subscription: &str,
        from: Seq,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let st = self.lock();
        let Some(sub) = st.subscriptions.get(subscription) else {
            return Ok(Vec::new());
        };
        Ok(sub
            .attempts
            .range((from, 0)..)
            .take(limit)
            .map(|(_, a)| a.clone())
            .collect())
    }

    async fn dead_letters(&self, subscription: &str, from: Seq, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let st = self.lock();
        let Some(sub) = st.subscriptions.get(subscription) else {
            return Ok(Vec::new());
        };
        Ok(sub.dead.range(from..).take(limit).map(|(_, d)| d.clone()).collect())
    }
}

#[async_trait]
impl Catalog for MemoryStore {
    async fn record(&self, kind: RecordKind, name: &str) -> Result<Option<Versioned>, StoreError> {
        let st = self.lock();
        Ok(match st.catalog.get(&(kind, name.to_owned())) {
            Some((version, Some(value))) => Some(Versioned {
                version: *version,
                value: value.clone(),
            }),
            _ => None,
        })
    }

    async fn records(&self, kind: RecordKind, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        let st = self.lock();
        let from = (kind, prefix.to_owned());
        Ok(st
            .catalog
            .range(from..)
            .take_while(|((k, name), _)| *k == kind && name.starts_with(prefix))
            .filter_map(|((_, name), (version, value))| {
                value.as_ref().map(|value| Entry::Ok {
                    name: name.clone(),
                    record: Versioned {
                        version: *version,
                        value: value.clone(),
                    },
                })
            })
            .collect())
    }

    async fn compare_and_set(
        &self,
        kind: RecordKind,
        name: &str,
        expect: Expect,
        value: Option<&str>,
    ) -> Result<Result<Version, Conflict>, StoreError> {
        let mut st = self.writable()?;
        let key = (kind, name.to_owned());
        let stored = st.catalog.get(&key).map(|(v, value)| (*v, value.is_some()));
        let next = match next_version(kind, name, expect, stored, value.is_none()) {
            Ok(next) => next,
            Err(conflict) => return Ok(Err(conflict)),
        };
        st.catalog.insert(key, (next, value.map(str::to_owned)));
        Ok(Ok(next))
    }
}
