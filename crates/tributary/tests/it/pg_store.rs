//! The PostgreSQL store for the tests that run the binary on it: a schema of its own on the machine's
//! server (`TRIBUTARY_PG_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`; `./scripts/peers.sh`
//! starts it), dropped afterwards. A test that cannot reach the server fails with the reason.

use std::sync::atomic::{AtomicU32, Ordering};

pub fn url() -> String {
    std::env::var("TRIBUTARY_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A schema name no other test uses.
pub struct Schema {
    pub name: String,
}

impl Schema {
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Self {
            name: format!(
                "it_{}_{}_{nanos}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    /// The `[node]` lines that put a node on this schema, as `node_id` with leases of `lease_ms`.
    pub fn node_lines_as(&self, node_id: &str, lease_ms: u64) -> String {
        format!(
            "node_id = {node_id:?}\nstore = {{ type = \"postgres\", url = {:?}, schema = {:?}, lease_ms = {lease_ms} }}",
            url(),
            self.name
        )
    }

    /// The `[node]` lines that put one node on this schema (leases of two seconds, so that a restart
    /// after a crash takes its work back within two seconds).
    pub fn node_lines(&self) -> String {
        self.node_lines_as("solo", 2000)
    }

    /// Runs SQL on the server.
    pub async fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        let (client, conn) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot connect to {} ({e}); start PostgreSQL (./scripts/peers.sh)",
                    url()
                )
            });
        let task = tokio::spawn(conn);
        let rows = client.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        drop(client);
        let _ = task.await;
        rows
    }

    pub async fn drop(self) {
        self.query(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name))
            .await;
    }
}
