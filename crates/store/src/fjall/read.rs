//! Reads: straight from the keyspaces, never through the writer.
//!
//! Every committed group is durable before it becomes visible (see `writer`), so a read never
//! returns a write that a crash could take back.

use super::store::Shared;
use super::writer::backend;
use super::{keys, record};
use fjall::{Guard, UserKey, UserValue};
use tributary_core::catalog::{Entry, RecordKind, Version, Versioned};
use tributary_core::store::{AttemptRecord, Checkpoint, DeadLetter, Pending, SubscriptionState};
use tributary_core::{EventId, Observation, Reject, Seq, StoreError, StoredEvent};

fn kv(g: Guard) -> Result<(UserKey, UserValue), StoreError> {
    g.into_inner().map_err(|e| backend("read", e))
}

impl Shared {
    pub fn read_from(&self, from: Seq, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        if limit == 0 {
            return Ok(out);
        }
        for g in self.tables.events.range(from.max(1).to_be_bytes()..) {
            let (k, v) = kv(g)?;
            out.push(record::decode_event(keys::tail_u64(&k)?, &v)?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    pub fn get(&self, source: &str, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        match self
            .tables
            .ids
            .get(id.in_source(source).0)
            .map_err(|e| backend("read", e))?
        {
            Some(v) => self.get_seq(keys::decode_id_entry(&v)?.seq),
            None => Ok(None),
        }
    }

    pub fn get_seq(&self, seq: Seq) -> Result<Option<StoredEvent>, StoreError> {
        let v = self.tables.events.get(seq.to_be_bytes());
        match v.map_err(|e| backend("read", e))? {
            Some(v) => record::decode_event(seq, &v).map(Some),
            None => Ok(None),
        }
    }

    pub fn observations(&self, source: &str, id: &EventId) -> Result<Vec<Observation>, StoreError> {
        let scoped = id.in_source(source);
        let Some(first) = self.tables.ids.get(scoped.0).map_err(|e| backend("read", e))? else {
            return Ok(Vec::new());
        };
        let first = keys::decode_id_entry(&first)?;
        let mut out = Vec::new();
        for g in self.tables.observations.prefix(scoped.0) {
            let (k, v) = kv(g)?;
            let mut o = keys::observation(&k, &v)?;
            o.event_id = *id;
            out.push(o);
        }
        let (first_seen, last_seen, count) = first.obs;
        let at = out.partition_point(|o| o.observer.as_str() < &*first.observer);
        let observation = Observation {
            event_id: *id,
            observer: first.observer.to_string(),
            first_seen,
            last_seen,
            count,
        };
        out.insert(at, observation);
        Ok(out)
    }

    pub fn checkpoints(&self, source: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let prefix = keys::checkpoint_prefix(source);
        let mut out = Vec::new();
        for g in self.tables.meta.prefix(&prefix) {
            let (k, v) = kv(g)?;
            out.push(Checkpoint {
                partition: keys::utf8("checkpoint", &k[prefix.len()..])?,
                position: keys::utf8("checkpoint", &v)?,
            });
        }
        Ok(out)
    }

    pub fn rejects(&self, source: &str, limit: usize) -> Result<Vec<Reject>, StoreError> {
        let prefix = keys::name_prefix(source);
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for g in self.tables.rejects.prefix(&prefix).rev() {
            let (k, v) = kv(g)?;
            if keys::exact(&k, &prefix, 8) {
                out.push(keys::from_json("reject", &v)?);
                if out.len() >= limit {
                    break;
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    pub fn subscription_state(&self, sub: &str) -> Result<SubscriptionState, StoreError> {
        let meta = |tag| {
            let v = self.tables.meta.get(keys::meta_key(tag, sub));
            v.map_err(|e| backend("read", e))
        };
        let cursor = match meta(b'u')? {
            Some(v) => keys::tail_u64(&v)?,
            None => 0,
        };
        let paused = meta(b'p')?.is_some_and(|v| v.first() == Some(&1));
        let prefix = keys::name_prefix(sub);
        let mut pending = Vec::new();
        for g in self.tables.pending.prefix(&prefix) {
            let (k, v) = kv(g)?;
            if keys::exact(&k, &prefix, 8) {
                pending.push(keys::from_json::<Pending>("pending", &v)?);
            }
        }
        Ok(SubscriptionState {
            cursor,
            paused,
            pending,
        })
    }

    pub fn attempts(&self, sub: &str, seq: Seq) -> Result<Vec<AttemptRecord>, StoreError> {
        let prefix = keys::name_seq(sub, seq);
        let mut out = Vec::new();
        for g in self.tables.attempts.prefix(&prefix) {
            let (k, v) = kv(g)?;
            if keys::exact(&k, &prefix, 4) {
                out.push(keys::from_json("attempt", &v)?);
            }
        }
        Ok(out)
    }

    pub fn attempts_from(&self, sub: &str, from: Seq, limit: usize) -> Result<Vec<AttemptRecord>, StoreError> {
        // Keys: name ‖ 0x00 ‖ seq ‖ attempt.
        scan_named(&self.tables.attempts, sub, from, limit, 12, "attempt")
    }

    pub fn meta_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let start = keys::meta_key(b'm', prefix);
        let mut out = Vec::new();
        for g in self.tables.meta.prefix(&start) {
            let (k, v) = kv(g)?;
            out.push((keys::utf8("meta", &k[1..])?, keys::utf8("meta", &v)?));
        }
        Ok(out)
    }

    pub fn dead_letters(&self, sub: &str, from: Seq, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        // Keys: name ‖ 0x00 ‖ seq.
        scan_named(&self.tables.dead, sub, from, limit, 8, "dead letter")
    }

    /// A catalog record's version and value (`None`: a tombstone), if it was ever written.
    pub fn catalog_entry(&self, kind: RecordKind, name: &str) -> Result<Option<(Version, Option<String>)>, StoreError> {
        let v = self.tables.meta.get(keys::catalog_key(kind, name));
        match v.map_err(|e| backend("read", e))? {
            Some(v) => keys::decode_record(&v).map(Some),
            None => Ok(None),
        }
    }

    /// The live catalog records of `kind` under `prefix`; one that cannot be decoded is `Broken`.
    pub fn records(&self, kind: RecordKind, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        let base = keys::catalog_prefix(kind);
        let mut start = base.clone();
        start.extend_from_slice(prefix.as_bytes());
        let mut out = Vec::new();
        for g in self.tables.meta.prefix(&start) {
            let (k, v) = kv(g)?;
            let name = String::from_utf8_lossy(&k[base.len()..]).into_owned();
            match keys::decode_record(&v) {
                Ok((version, Some(value))) => out.push(Entry::Ok {
                    name,
                    record: Versioned { version, value },
                }),
                Ok((_, None)) => {}
                Err(e) => out.push(Entry::Broken {
                    name,
                    error: e.to_string(),
                }),
            }
        }
        Ok(out)
    }

    pub fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let v = self.tables.meta.get(keys::meta_key(b'm', key));
        match v.map_err(|e| backend("read", e))? {
            Some(v) => keys::utf8("meta", &v).map(Some),
            None => Ok(None),
        }
    }
}

/// Up to `limit` JSON records of one subscription from a keyspace keyed `name ‖ 0x00 ‖ seq ‖ …` (`tail` bytes
/// after the name's prefix), starting at `from`.
fn scan_named<T: serde::de::DeserializeOwned>(
    ks: &fjall::Keyspace,
    sub: &str,
    from: Seq,
    limit: usize,
    tail: usize,
    what: &'static str,
) -> Result<Vec<T>, StoreError> {
    let prefix = keys::name_prefix(sub);
    let start = keys::name_seq(sub, from);
    // `name ‖ 0x01` is the first key after every `name ‖ 0x00 ‖ …`.
    let mut end = prefix.clone();
    if let Some(last) = end.last_mut() {
        *last = 1;
    }
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    for g in ks.range(start..end) {
        let (k, v) = kv(g)?;
        if keys::exact(&k, &prefix, tail) {
            out.push(keys::from_json(what, &v)?);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}
