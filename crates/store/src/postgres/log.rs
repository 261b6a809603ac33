//! The [`Log`] on PostgreSQL. An append is one transaction that first locks the counter row, so appends
//! are serialised and the dedup check sees every earlier commit.

use super::rows::{EVENT_COLUMNS, decode, event_from, event_json, id_from, json};
use super::{PostgresStore, backend, text};
use crate::REJECTS_KEPT_PER_SOURCE;
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use tokio::sync::watch;
use tributary_core::store::{AppendBatch, AppendItem, AppendOutcome, Checkpoint};
use tributary_core::{EventId, Log, Observation, Reject, Seq, StoreError, StoredEvent, Timestamp};

#[async_trait]
impl Log for PostgresStore {
    async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        let source = text("source", &batch.source)?;
        // Who saw an event comes from outside (a collector's node id): a NUL, which PostgreSQL text cannot
        // hold, is shown as U+FFFD rather than stopping the source.
        let observer_text = batch.observer.replace('\0', "\u{fffd}");
        let observer = observer_text.as_str();
        let t = |name| self.sql.t(name);
        let e = backend("append");
        let mut client = self.client("append").await?;
        let tx = client.transaction().await.map_err(&e)?;
        // The lease first, then the counter: a node taking the lease over waits for this commit.
        if let Some(fence) = &batch.fence {
            super::cluster::check_fence(&tx, &self.sql, fence, "append").await?;
        }
        let lock = tx
            .prepare_cached(&format!("SELECT n FROM {} FOR UPDATE", t("seq")))
            .await
            .map_err(&e)?;
        let mut last: i64 = tx.query_one(&lock, &[]).await.map_err(&e)?.get(0);

        // Which ids are known, then a number for each new one, in batch order.
        let scoped: Vec<EventId> = batch.events.iter().map(|ev| ev.id.in_source(source)).collect();
        let mut known: HashMap<EventId, Seq> = HashMap::new();
        if !scoped.is_empty() {
            let ids: Vec<&[u8]> = scoped.iter().map(|s| s.0.as_slice()).collect();
            let find = tx
                .prepare_cached(&format!(
                    "SELECT scoped_id, seq FROM {} WHERE scoped_id = ANY($1)",
                    t("events")
                ))
                .await
                .map_err(&e)?;
            for row in tx.query(&find, &[&ids]).await.map_err(&e)? {
                let seq: i64 = row.get(1);
                known.insert(id_from("events", row.get(0))?, seq as Seq);
            }
        }
        let now = Timestamp::now();
        let mut items = Vec::with_capacity(batch.events.len());
        // Observations of this batch, by scoped id: (event id, times seen).
        let mut seen: BTreeMap<EventId, (EventId, i64)> = BTreeMap::new();
        let (mut seqs, mut ids, mut events, mut payloads) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (ev, scoped) in batch.events.iter().zip(&scoped) {
            seen.entry(*scoped).or_insert((ev.id, 0)).1 += 1;
            if let Some(&seq) = known.get(scoped) {
                items.push(AppendItem::Duplicate(seq));
                continue;
            }
            last += 1;
            known.insert(*scoped, last as Seq);
            items.push(AppendItem::Accepted(last as Seq));
            seqs.push(last);
            ids.push(scoped.0.as_slice());
            events.push(event_json(ev));
            payloads.push(ev.payload.as_slice());
        }
        if !seqs.is_empty() {
            let insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO {} (seq, scoped_id, source, ingested_at, event, payload) \
                     SELECT u.seq, u.id, $3, $4, u.event::json, u.payload \
                     FROM UNNEST($1::bigint[], $2::bytea[], $5::text[], $6::bytea[]) AS u(seq, id, event, payload)",
                    t("events")
                ))
                .await
                .map_err(&e)?;
            tx.execute(&insert, &[&seqs, &ids, &source, &now.0, &events, &payloads])
                .await
                .map_err(&e)?;
            let bump = tx
                .prepare_cached(&format!("UPDATE {} SET n = $1", t("seq")))
                .await
                .map_err(&e)?;
            tx.execute(&bump, &[&last]).await.map_err(&e)?;
            // The other nodes learn of the new events at commit (see `notify`).
            let notify = tx.prepare_cached("SELECT pg_notify($1, $2)").await.map_err(&e)?;
            let payload = format!("{}:{last}", self.sql.schema);
            tx.execute(&notify, &[&super::notify::CHANNEL, &payload])
                .await
                .map_err(&e)?;
        }
        if !seen.is_empty() {
            let scoped_ids: Vec<&[u8]> = seen.keys().map(|s| s.0.as_slice()).collect();
            let event_ids: Vec<&[u8]> = seen.values().map(|(id, _)| id.0.as_slice()).collect();
            let counts: Vec<i64> = seen.values().map(|(_, n)| *n).collect();
            let observe = tx
                .prepare_cached(&format!(
                    "INSERT INTO {o} AS o (scoped_id, observer, event_id, first_seen, last_seen, count) \
                     SELECT u.s, $2, u.e, $3, $3, u.c FROM UNNEST($1::bytea[], $4::bytea[], $5::bigint[]) AS u(s, e, c) \
                     ON CONFLICT (scoped_id, observer) DO UPDATE SET last_seen = EXCLUDED.last_seen, count = o.count + EXCLUDED.count",
                    o = t("observations")
                ))
                .await
                .map_err(&e)?;
            tx.execute(
                &observe,
                &[&scoped_ids, &observer, &batch.seen_at.0, &event_ids, &counts],
            )
            .await
            .map_err(&e)?;
        }
        if !batch.rejects.is_empty() {
            let rejects: Vec<String> = batch.rejects.iter().map(json).collect();
            let add = tx
                .prepare_cached(&format!(
                    "INSERT INTO {r} (source, n, reject) \
                     SELECT $1, coalesce((SELECT max(n) FROM {r} WHERE source = $1), 0) + u.o, u.r::json \
                     FROM UNNEST($2::text[]) WITH ORDINALITY AS u(r, o)",
                    r = t("rejects")
                ))
                .await
                .map_err(&e)?;
            tx.execute(&add, &[&source, &rejects]).await.map_err(&e)?;
            let trim = tx
                .prepare_cached(&format!(
                    "DELETE FROM {r} WHERE source = $1 AND n <= (SELECT max(n) FROM {r} WHERE source = $1) - $2",
                    r = t("rejects")
                ))
                .await
                .map_err(&e)?;
            tx.execute(&trim, &[&source, &(REJECTS_KEPT_PER_SOURCE as i64)])
                .await
                .map_err(&e)?;
        }
        if let Some(cp) = &batch.checkpoint {
            let put = tx
                .prepare_cached(&format!(
                    "INSERT INTO {} (source, partition, position) VALUES ($1, $2, $3) \
                     ON CONFLICT (source, partition) DO UPDATE SET position = EXCLUDED.position",
                    t("checkpoints")
                ))
                .await
                .map_err(&e)?;
            let partition = text("checkpoint partition", &cp.partition)?;
            let position = text("checkpoint position", &cp.position)?;
            tx.execute(&put, &[&source, &partition, &position]).await.map_err(&e)?;
        }
        if !batch.meta.is_empty() {
            // The later of two changes of one key wins.
            let mut changes: BTreeMap<&str, Option<&str>> = BTreeMap::new();
            for (key, value) in &batch.meta {
                changes.insert(text("state entry key", key)?, value.as_deref());
            }
            for (key, value) in changes {
                match value {
                    Some(value) => put_meta(&tx, &self.sql, key, text("state entry", value)?).await?,
                    None => {
                        let delete = tx
                            .prepare_cached(&format!("DELETE FROM {} WHERE key = $1", t("meta")))
                            .await
                            .map_err(&e)?;
                        tx.execute(&delete, &[&key]).await.map_err(&e)?;
                    }
                }
            }
        }
        tx.commit().await.map_err(&e)?;
        // Always: after a commit whose answer was lost, the retry finds only duplicates, and the watchers
        // must still learn of what that commit stored (`committed` only moves forward).
        self.committed(last as Seq);
        Ok(AppendOutcome { items })
    }

    async fn read_from(&self, from: Seq, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let e = backend("read");
        let client = self.client("read").await?;
        let read = client
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM {} WHERE seq >= $1 ORDER BY seq LIMIT $2",
                self.sql.t("events")
            ))
            .await
            .map_err(&e)?;
        let from = from.min(i64::MAX as u64) as i64;
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = client.query(&read, &[&from, &limit]).await.map_err(&e)?;
        rows.iter().map(event_from).collect()
    }

    async fn get(&self, source: &str, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        let e = backend("read");
        let client = self.client("read").await?;
        let get = client
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM {} WHERE scoped_id = $1",
                self.sql.t("events")
            ))
            .await
            .map_err(&e)?;
        let scoped = id.in_source(source);
        let row = client.query_opt(&get, &[&scoped.0.as_slice()]).await.map_err(&e)?;
        row.as_ref().map(event_from).transpose()
    }

    async fn get_seq(&self, seq: Seq) -> Result<Option<StoredEvent>, StoreError> {
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(None);
        };
        let e = backend("read");
        let client = self.client("read").await?;
        let get = client
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM {} WHERE seq = $1",
                self.sql.t("events")
            ))
            .await
            .map_err(&e)?;
        let row = client.query_opt(&get, &[&seq]).await.map_err(&e)?;
        row.as_ref().map(event_from).transpose()
    }

    async fn observations(&self, source: &str, id: &EventId) -> Result<Vec<Observation>, StoreError> {
        let e = backend("read");
        let client = self.client("read").await?;
        let q = client
            .prepare_cached(&format!(
                "SELECT event_id, observer, first_seen, last_seen, count FROM {} WHERE scoped_id = $1 ORDER BY observer",
                self.sql.t("observations")
            ))
            .await
            .map_err(&e)?;
        let scoped = id.in_source(source);
        let rows = client.query(&q, &[&scoped.0.as_slice()]).await.map_err(&e)?;
        rows.iter()
            .map(|r| {
                let count: i64 = r.get(4);
                Ok(Observation {
                    event_id: id_from("observations", r.get(0))?,
                    observer: r.get(1),
                    first_seen: Timestamp(r.get(2)),
                    last_seen: Timestamp(r.get(3)),
                    count: count as u64,
                })
            })
            .collect()
    }

    async fn checkpoints(&self, source: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let e = backend("read");
        let client = self.client("read").await?;
        let q = client
            .prepare_cached(&format!(
                "SELECT partition, position FROM {} WHERE source = $1 ORDER BY partition",
                self.sql.t("checkpoints")
            ))
            .await
            .map_err(&e)?;
        let rows = client.query(&q, &[&source]).await.map_err(&e)?;
        Ok(rows
            .iter()
            .map(|r| Checkpoint {
                partition: r.get(0),
                position: r.get(1),
            })
            .collect())
    }

    async fn rejects(&self, source: &str, limit: usize) -> Result<Vec<Reject>, StoreError> {
        let e = backend("read");
        let client = self.client("read").await?;
        let q = client
            .prepare_cached(&format!(
                "SELECT n, reject::text FROM (SELECT n, reject FROM {} WHERE source = $1 ORDER BY n DESC LIMIT $2) newest ORDER BY n",
                self.sql.t("rejects")
            ))
            .await
            .map_err(&e)?;
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = client.query(&q, &[&source, &limit]).await.map_err(&e)?;
        rows.iter().map(|r| decode("rejects", r.get(0), r.get(1))).collect()
    }

    fn last_seq(&self) -> Seq {
        self.seq.last.load(Ordering::Acquire)
    }

    fn watch_seq(&self) -> watch::Receiver<Seq> {
        self.seq.tx.subscribe()
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let e = backend("read");
        let client = self.client("read").await?;
        let q = client
            .prepare_cached(&format!("SELECT value FROM {} WHERE key = $1", self.sql.t("meta")))
            .await
            .map_err(&e)?;
        Ok(client.query_opt(&q, &[&key]).await.map_err(&e)?.map(|r| r.get(0)))
    }

    async fn meta_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let e = backend("read");
        let client = self.client("read").await?;
        let q = client
            .prepare_cached(&format!(
                "SELECT key, value FROM {} WHERE starts_with(key, $1) ORDER BY key",
                self.sql.t("meta")
            ))
            .await
            .map_err(&e)?;
        let rows = client.query(&q, &[&prefix]).await.map_err(&e)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let client = self.client("put_meta").await?;
        put_meta(
            &client,
            &self.sql,
            text("state entry key", key)?,
            text("state entry", value)?,
        )
        .await
    }

    fn leases(&self) -> Option<&dyn tributary_core::cluster::Leases> {
        Some(self)
    }

    fn poisoned(&self) -> Option<String> {
        // A failed transaction leaves nothing behind: there is nothing to poison.
        None
    }

    async fn check(&self) -> Result<(), String> {
        let ping = async {
            let client = self.client("check").await.map_err(|e| e.to_string())?;
            client
                .execute("SELECT 1", &[])
                .await
                .map_err(|e| format!("PostgreSQL store {}: {}", self.shown, super::schema::describe(&e)))
        };
        match tokio::time::timeout(std::time::Duration::from_secs(3), ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("PostgreSQL store {}: no answer within 3 s", self.shown)),
        }
    }
}

/// Upserts one state entry, in a transaction or on its own.
async fn put_meta(
    client: &impl deadpool_postgres::GenericClient,
    sql: &super::Sql,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    let e = backend("put_meta");
    client
        .execute(
            &format!(
                "INSERT INTO {} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                sql.t("meta")
            ),
            &[&key, &value],
        )
        .await
        .map_err(e)?;
    Ok(())
}
