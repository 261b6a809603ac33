//! [`Leases`] on PostgreSQL: the `leases` and `nodes` tables (migration 2), on the database's clock.
//!
//! - A lease is taken by an upsert that succeeds only when the row is absent or expired (not even a
//!   process with the holder's node id takes a live lease: two processes given one id by mistake must
//!   not take it from each other in turn); each taking adds one to its epoch.
//! - A fenced write ([`check_fence`]) reads its lease row `FOR SHARE` inside the write's transaction:
//!   the write commits only while the lease is held with its epoch and unexpired, and a node taking the
//!   lease over waits for that row lock, so it starts strictly after the write committed.

use super::{PostgresStore, backend, text};
use async_trait::async_trait;
use std::time::Duration;
use tributary_core::cluster::{ClusterView, Fence, LeaseView, Leases, NodeAnnouncement, NodeView};
use tributary_core::{StoreError, Timestamp};

/// A timestamptz as microseconds since the epoch, in SQL.
const MICROS: &str = "(extract(epoch from {c}) * 1000000)::bigint";

fn micros(column: &str) -> String {
    MICROS.replace("{c}", column)
}

fn ms(ttl: Duration) -> i64 {
    ttl.as_millis().min(i64::MAX as u128) as i64
}

/// Refuses the write of the transaction `tx` unless `fence` still holds (see the module docs).
pub(crate) async fn check_fence(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &super::Sql,
    fence: &Fence,
    op: &'static str,
) -> Result<(), StoreError> {
    let check = tx
        .prepare_cached(&format!(
            "SELECT 1 FROM {} WHERE name = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp() FOR SHARE",
            sql.t("leases")
        ))
        .await
        .map_err(backend(op))?;
    let epoch = fence.epoch.min(i64::MAX as u64) as i64;
    let held = tx
        .query_opt(&check, &[&fence.lease, &fence.holder, &epoch])
        .await
        .map_err(backend(op))?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::LeaseLost {
            lease: fence.lease.clone(),
            holder: fence.holder.clone(),
        }),
    }
}

#[async_trait]
impl Leases for PostgresStore {
    async fn announce(&self, node: &NodeAnnouncement) -> Result<(), StoreError> {
        let id = text("node id", &node.id)?;
        let body = serde_json::to_string(node).unwrap_or_default();
        let client = self.client("announce").await?;
        client
            .execute(
                &format!(
                    "INSERT INTO {} (id, announcement, seen_at) VALUES ($1, $2::text::json, clock_timestamp()) \
                     ON CONFLICT (id) DO UPDATE SET announcement = EXCLUDED.announcement, seen_at = EXCLUDED.seen_at",
                    self.sql.t("nodes")
                ),
                &[&id, &body],
            )
            .await
            .map_err(backend("announce"))?;
        Ok(())
    }

    async fn leave(&self, node: &str) -> Result<(), StoreError> {
        let client = self.client("leave").await?;
        client
            .execute(&format!("DELETE FROM {} WHERE id = $1", self.sql.t("nodes")), &[&node])
            .await
            .map_err(backend("leave"))?;
        Ok(())
    }

    async fn acquire(&self, lease: &str, node: &str, ttl: Duration) -> Result<Option<u64>, StoreError> {
        let (lease, node) = (text("lease", lease)?, text("node id", node)?);
        let client = self.client("acquire").await?;
        let take = client
            .prepare_cached(&format!(
                "INSERT INTO {} AS l (name, holder, epoch, expires_at) \
                 VALUES ($1, $2, 1, clock_timestamp() + $3::bigint * interval '1 millisecond') \
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at \
                 WHERE l.expires_at <= clock_timestamp() \
                 RETURNING epoch",
                self.sql.t("leases")
            ))
            .await
            .map_err(backend("acquire"))?;
        let row = client
            .query_opt(&take, &[&lease, &node, &ms(ttl)])
            .await
            .map_err(backend("acquire"))?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    async fn renew(&self, node: &str, held: &[Fence], ttl: Duration) -> Result<Vec<String>, StoreError> {
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = held.iter().map(|f| f.lease.as_str()).collect();
        let epochs: Vec<i64> = held.iter().map(|f| f.epoch.min(i64::MAX as u64) as i64).collect();
        let client = self.client("renew").await?;
        let renew = client
            .prepare_cached(&format!(
                "UPDATE {l} SET expires_at = clock_timestamp() + $2::bigint * interval '1 millisecond' \
                 FROM UNNEST($3::text[], $4::bigint[]) AS h(name, epoch) \
                 WHERE {l}.name = h.name AND {l}.epoch = h.epoch AND {l}.holder = $1 AND {l}.expires_at > clock_timestamp() \
                 RETURNING {l}.name",
                l = self.sql.t("leases")
            ))
            .await
            .map_err(backend("renew"))?;
        let rows = client
            .query(&renew, &[&node, &ms(ttl), &names, &epochs])
            .await
            .map_err(backend("renew"))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn release(&self, fence: &Fence) -> Result<(), StoreError> {
        let client = self.client("release").await?;
        let epoch = fence.epoch.min(i64::MAX as u64) as i64;
        client
            .execute(
                &format!(
                    "UPDATE {} SET expires_at = clock_timestamp() WHERE name = $1 AND holder = $2 AND epoch = $3",
                    self.sql.t("leases")
                ),
                &[&fence.lease, &fence.holder, &epoch],
            )
            .await
            .map_err(backend("release"))?;
        Ok(())
    }

    async fn view(&self, ttl: Duration) -> Result<ClusterView, StoreError> {
        let e = backend("cluster view");
        let client = self.client("cluster view").await?;
        let nodes = client
            .query(
                &format!(
                    "SELECT announcement::text, {seen}, seen_at > clock_timestamp() - $1::bigint * interval '1 millisecond' \
                     FROM {} WHERE seen_at > clock_timestamp() - 10 * $1::bigint * interval '1 millisecond' ORDER BY id",
                    self.sql.t("nodes"),
                    seen = micros("seen_at"),
                ),
                &[&ms(ttl)],
            )
            .await
            .map_err(&e)?;
        let leases = client
            .query(
                &format!(
                    "SELECT name, holder, epoch, {expires}, expires_at <= clock_timestamp() FROM {} ORDER BY name",
                    self.sql.t("leases"),
                    expires = micros("expires_at"),
                ),
                &[],
            )
            .await
            .map_err(&e)?;
        let mut view = ClusterView::default();
        for row in nodes {
            let announced: String = row.get(0);
            let node: NodeAnnouncement = serde_json::from_str(&announced).map_err(|err| StoreError::Corrupt {
                what: "nodes",
                detail: format!("an announcement does not parse ({err}): {announced:.200}"),
            })?;
            view.nodes.push(NodeView {
                node,
                seen_at: Timestamp(row.get(1)),
                alive: row.get(2),
            });
        }
        for row in leases {
            view.leases.push(LeaseView {
                name: row.get(0),
                holder: row.get(1),
                epoch: row.get::<_, i64>(2) as u64,
                expires_at: Timestamp(row.get(3)),
                expired: row.get(4),
            });
        }
        Ok(view)
    }

    async fn broadcast(&self, message: &str) -> Result<(), StoreError> {
        if message.len() > tributary_core::cluster::MAX_MESSAGE_BYTES {
            return Err(StoreError::Backend {
                op: "broadcast",
                source: format!(
                    "a message of {} bytes is longer than {} bytes",
                    message.len(),
                    tributary_core::cluster::MAX_MESSAGE_BYTES
                )
                .into(),
            });
        }
        let payload = format!("{}:{}", self.sql.schema, text("message", message)?);
        let client = self.client("broadcast").await?;
        client
            .execute("SELECT pg_notify($1, $2)", &[&super::notify::MESSAGES, &payload])
            .await
            .map_err(backend("broadcast"))?;
        Ok(())
    }

    fn messages(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.seq.messages.subscribe()
    }
}
