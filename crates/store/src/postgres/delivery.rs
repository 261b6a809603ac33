//! The [`DeliveryState`] on PostgreSQL: one transaction per update, removals before insertions (as the
//! other backends), and within one update the later of two records with one key wins.

use super::rows::{decode, json};
use super::{PostgresStore, backend, text};
use async_trait::async_trait;
use std::collections::BTreeMap;
use tributary_core::store::{AttemptRecord, DeadLetter, DeliveryUpdate, Pending, SubscriptionState};
use tributary_core::{DeliveryState, Seq, StoreError};

fn seq(n: Seq) -> i64 {
    n.min(i64::MAX as u64) as i64
}

#[async_trait]
impl DeliveryState for PostgresStore {
    async fn subscription_state(&self, subscription: &str) -> Result<SubscriptionState, StoreError> {
        let e = backend("read");
        let client = self.client("read").await?;
        let state = client
            .prepare_cached(&format!(
                "SELECT cursor, paused FROM {} WHERE name = $1",
                self.sql.t("subscriptions")
            ))
            .await
            .map_err(&e)?;
        let pending = client
            .prepare_cached(&format!(
                "SELECT seq, pending::text FROM {} WHERE subscription = $1 ORDER BY seq",
                self.sql.t("pending")
            ))
            .await
            .map_err(&e)?;
        let (cursor, paused) = match client.query_opt(&state, &[&subscription]).await.map_err(&e)? {
            Some(row) => (row.get::<_, i64>(0) as Seq, row.get(1)),
            None => (0, false),
        };
        let rows = client.query(&pending, &[&subscription]).await.map_err(&e)?;
        let pending = rows
            .iter()
            .map(|r| decode::<Pending>("pending", r.get(0), r.get(1)))
            .collect::<Result<_, _>>()?;
        Ok(SubscriptionState {
            cursor,
            paused,
            pending,
        })
    }

    async fn commit_delivery(&self, subscription: &str, update: DeliveryUpdate) -> Result<(), StoreError> {
        if update.is_empty() {
            return Ok(());
        }
        let sub = text("subscription", subscription)?;
        let t = |name| self.sql.t(name);
        let e = backend("commit_delivery");
        let mut client = self.client("commit_delivery").await?;
        let tx = client.transaction().await.map_err(&e)?;
        if let Some(fence) = &update.fence {
            super::cluster::check_fence(&tx, &self.sql, fence, "commit_delivery").await?;
        }
        if update.cursor.is_some() || update.paused.is_some() {
            let put = tx
                .prepare_cached(&format!(
                    "INSERT INTO {s} AS s (name, cursor, paused) VALUES ($1, coalesce($2::bigint, 0), coalesce($3::boolean, false)) \
                     ON CONFLICT (name) DO UPDATE SET cursor = coalesce($2::bigint, s.cursor), paused = coalesce($3::boolean, s.paused)",
                    s = t("subscriptions")
                ))
                .await
                .map_err(&e)?;
            let cursor = update.cursor.map(seq);
            tx.execute(&put, &[&sub, &cursor, &update.paused]).await.map_err(&e)?;
        }
        if !update.attempts.is_empty() {
            let latest: BTreeMap<(Seq, u32), &AttemptRecord> =
                update.attempts.iter().map(|a| ((a.seq, a.attempt), a)).collect();
            let seqs: Vec<i64> = latest.keys().map(|(s, _)| seq(*s)).collect();
            let numbers: Vec<i64> = latest.keys().map(|(_, a)| i64::from(*a)).collect();
            let bodies: Vec<String> = latest.values().map(json).collect();
            let put = tx
                .prepare_cached(&format!(
                    "INSERT INTO {} (subscription, seq, attempt, attempt_record) \
                     SELECT $1, u.s, u.a, u.b::json FROM UNNEST($2::bigint[], $3::bigint[], $4::text[]) AS u(s, a, b) \
                     ON CONFLICT (subscription, seq, attempt) DO UPDATE SET attempt_record = EXCLUDED.attempt_record",
                    t("attempts")
                ))
                .await
                .map_err(&e)?;
            tx.execute(&put, &[&sub, &seqs, &numbers, &bodies]).await.map_err(&e)?;
        }
        for (table, column, removed, put) in [
            (
                "pending",
                "pending",
                &update.pending_remove,
                update
                    .pending_put
                    .iter()
                    .map(|p| (p.seq, json(p)))
                    .collect::<BTreeMap<Seq, String>>(),
            ),
            (
                "dead_letters",
                "dead_letter",
                &update.dead_remove,
                update.dead_letters.iter().map(|d| (d.seq, json(d))).collect(),
            ),
        ] {
            if !removed.is_empty() {
                let remove = tx
                    .prepare_cached(&format!(
                        "DELETE FROM {} WHERE subscription = $1 AND seq = ANY($2)",
                        t(table)
                    ))
                    .await
                    .map_err(&e)?;
                let seqs: Vec<i64> = removed.iter().map(|s| seq(*s)).collect();
                tx.execute(&remove, &[&sub, &seqs]).await.map_err(&e)?;
            }
            if !put.is_empty() {
                let insert = tx
                    .prepare_cached(&format!(
                        "INSERT INTO {} (subscription, seq, {column}) \
                         SELECT $1, u.s, u.b::json FROM UNNEST($2::bigint[], $3::text[]) AS u(s, b) \
                         ON CONFLICT (subscription, seq) DO UPDATE SET {column} = EXCLUDED.{column}",
                        t(table)
                    ))
                    .await
                    .map_err(&e)?;
                let seqs: Vec<i64> = put.keys().map(|s| seq(*s)).collect();
                let bodies: Vec<&String> = put.values().collect();
                tx.execute(&insert, &[&sub, &seqs, &bodies]).await.map_err(&e)?;
            }
        }
        tx.commit().await.map_err(&e)
    }

    async fn attempts(&self, subscription: &str, at: Seq) -> Result<Vec<AttemptRecord>, StoreError> {
        let e = backend("read");
        let client = self.client("read").await?;
        let q = client
            .prepare_cached(&format!(
                "SELECT seq, attempt_record::text FROM {} WHERE subscription = $1 AND seq = $2 ORDER BY attempt",
                self.sql.t("attempts")
            ))
            .await
            .map_err(&e)?;
        let rows = client.query(&q, &[&subscription, &seq(at)]).await.map_err(&e)?;
        rows.iter().map(|r| decode("attempts", r.get(0), r.get(1))).collect()
    }

    async fn attempts_from(
        &self,
        subscription: &str,
        from: Seq,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let e = backend("read");
        let client = self.client("read").await?;
        let q = client
            .prepare_cached(&format!(
                "SELECT seq, attempt_record::text FROM {} WHERE subscription = $1 AND seq >= $2 ORDER BY seq, attempt LIMIT $3",
                self.sql.t("attempts")
            ))
            .await
            .map_err(&e)?;
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = client
            .query(&q, &[&subscription, &seq(from), &limit])
            .await
            .map_err(&e)?;
        rows.iter().map(|r| decode("attempts", r.get(0), r.get(1))).collect()
    }

    async fn dead_letters(&self, subscription: &str, from: Seq, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let e = backend("read");
        let client = self.client("read").await?;
        let q = client
            .prepare_cached(&format!(
                "SELECT seq, dead_letter::text FROM {} WHERE subscription = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
                self.sql.t("dead_letters")
            ))
            .await
            .map_err(&e)?;
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = client
            .query(&q, &[&subscription, &seq(from), &limit])
            .await
            .map_err(&e)?;
        rows.iter()
            .map(|r| decode("dead_letters", r.get(0), r.get(1)))
            .collect()
    }
}
