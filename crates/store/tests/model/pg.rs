//! A PostgreSQL store in a schema of its own, on the machine's server (`TRIBUTARY_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; `./scripts/peers.sh` starts it). A test that cannot reach
//! it fails with the reason.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tributary_store::{PostgresConfig, PostgresStore};

pub fn url() -> String {
    std::env::var("TRIBUTARY_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A schema name no other test uses; dropped by [`Schema::drop`].
pub struct Schema {
    pub name: String,
}

impl Schema {
    pub async fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "test_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        Self { name }
    }

    pub fn config(&self) -> PostgresConfig {
        PostgresConfig {
            url: url(),
            schema: self.name.clone(),
            pool_size: 8,
            timeout: Duration::from_secs(10),
        }
    }

    pub async fn open(&self) -> PostgresStore {
        PostgresStore::open(&self.config()).await.unwrap_or_else(|e| {
            panic!(
                "cannot open the PostgreSQL store at {} ({e}); start PostgreSQL (./scripts/peers.sh) or set TRIBUTARY_PG_URL",
                url()
            )
        })
    }

    /// Runs SQL on the server directly.
    pub async fn execute(&self, sql: &str) {
        let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", url()));
        let task = tokio::spawn(conn);
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        drop(client);
        let _ = task.await;
    }

    pub async fn drop(self) {
        self.execute(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name))
            .await;
    }
}
