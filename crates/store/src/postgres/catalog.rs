//! The [`Catalog`] on PostgreSQL. A compare-and-set holds a transaction-scoped advisory lock on its
//! record's name while it reads the version and writes, so two nodes changing one record are serialised
//! even when the record does not exist yet (a row lock needs a row).

use super::{PostgresStore, backend, text};
use async_trait::async_trait;
use tributary_core::StoreError;
use tributary_core::catalog::{Catalog, Conflict, Entry, Expect, RecordKind, Version, Versioned, next_version};

#[async_trait]
impl Catalog for PostgresStore {
    async fn record(&self, kind: RecordKind, name: &str) -> Result<Option<Versioned>, StoreError> {
        let e = backend("read");
        let client = self.client("read").await?;
        let q = client
            .prepare_cached(&format!(
                "SELECT version, value FROM {} WHERE kind = $1 AND name = $2 AND value IS NOT NULL",
                self.sql.t("catalog")
            ))
            .await
            .map_err(&e)?;
        let row = client.query_opt(&q, &[&kind.as_str(), &name]).await.map_err(&e)?;
        Ok(row.map(|r| Versioned {
            version: r.get::<_, i64>(0) as Version,
            value: r.get(1),
        }))
    }

    async fn records(&self, kind: RecordKind, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        let e = backend("read");
        let client = self.client("read").await?;
        let q = client
            .prepare_cached(&format!(
                "SELECT name, version, value FROM {} WHERE kind = $1 AND starts_with(name, $2) AND value IS NOT NULL ORDER BY name",
                self.sql.t("catalog")
            ))
            .await
            .map_err(&e)?;
        let rows = client.query(&q, &[&kind.as_str(), &prefix]).await.map_err(&e)?;
        Ok(rows
            .iter()
            .map(|r| Entry::Ok {
                name: r.get(0),
                record: Versioned {
                    version: r.get::<_, i64>(1) as Version,
                    value: r.get(2),
                },
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
        let name = text("catalog name", name)?;
        let value = value.map(|v| text("catalog value", v)).transpose()?;
        let t = self.sql.t("catalog");
        let e = backend("compare_and_set");
        let mut client = self.client("compare_and_set").await?;
        let tx = client.transaction().await.map_err(&e)?;
        let lock = format!("tributary catalog {}/{name}", kind.as_str());
        tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&lock])
            .await
            .map_err(&e)?;
        let read = tx
            .prepare_cached(&format!(
                "SELECT version, value IS NOT NULL FROM {t} WHERE kind = $1 AND name = $2"
            ))
            .await
            .map_err(&e)?;
        let stored = tx
            .query_opt(&read, &[&kind.as_str(), &name])
            .await
            .map_err(&e)?
            .map(|r| (r.get::<_, i64>(0) as Version, r.get::<_, bool>(1)));
        let next = match next_version(kind, name, expect, stored, value.is_none()) {
            Ok(next) => next,
            // Dropping the transaction rolls it back.
            Err(conflict) => return Ok(Err(conflict)),
        };
        let write = tx
            .prepare_cached(&format!(
                "INSERT INTO {t} (kind, name, version, value) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (kind, name) DO UPDATE SET version = EXCLUDED.version, value = EXCLUDED.value"
            ))
            .await
            .map_err(&e)?;
        tx.execute(&write, &[&kind.as_str(), &name, &(next as i64), &value])
            .await
            .map_err(&e)?;
        tx.commit().await.map_err(&e)?;
        Ok(Ok(next))
    }
}
