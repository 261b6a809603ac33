//! The `postgres` sink next to batched `INSERT … SELECT FROM UNNEST … ON CONFLICT (id) DO NOTHING` of the
//! same rows, 256 per transaction, from as many connections as the sink's pool.

use super::{CONCURRENCY, Target};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections of the plain client: the sink's default `pool_size`.
const CONNECTIONS: usize = 4;

pub(super) struct Postgres {
    url: String,
    schema: String,
    client: Option<tokio_postgres::Client>,
}

impl Postgres {
    pub(super) fn new() -> Self {
        Self {
            url: std::env::var("TRIBUTARY_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
            schema: format!("tributary_bench_{}", std::process::id()),
            client: None,
        }
    }

    async fn connect(&self) -> anyhow::Result<tokio_postgres::Client> {
        let connecting = tokio_postgres::connect(&self.url, tokio_postgres::NoTls);
        let (client, connection) = tokio::time::timeout(Duration::from_secs(3), connecting)
            .await
            .map_err(|_| anyhow::anyhow!("no answer from {} within 3 s", self.url))??;
        tokio::spawn(connection);
        Ok(client)
    }

    fn client(&self) -> &tokio_postgres::Client {
        self.client.as_ref().expect("prepared")
    }
}

const INSERT: &str = "INSERT INTO {table} (id, seq, kind, source, key, occurred_at, ingested_at, data, payload, retracts) \
     SELECT id, seq, kind, source, key, now(), now(), data::jsonb, payload, NULL \
     FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[]) \
     AS r(id, seq, kind, source, key, data, payload) ON CONFLICT (id) DO NOTHING";

#[async_trait::async_trait]
impl Target for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn plain_label(&self) -> &'static str {
        "UNNEST insert, 256 rows per transaction, 4 connections"
    }

    async fn prepare(&mut self) -> anyhow::Result<()> {
        let client = self.connect().await?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {s} CASCADE; CREATE SCHEMA {s}; \
                 CREATE TABLE {s}.plain (id text PRIMARY KEY, seq bigint NOT NULL, kind text NOT NULL, source text NOT NULL, \
                 key text, occurred_at timestamptz, ingested_at timestamptz NOT NULL, data jsonb NOT NULL, payload bytea NOT NULL, retracts text)",
                s = self.schema
            ))
            .await?;
        self.client = Some(client);
        Ok(())
    }

    fn sink_toml(&self) -> String {
        format!(
            "type = \"postgres\"\nurl = {:?}\ntable = \"{}.inbox\"",
            self.url, self.schema
        )
    }

    async fn count(&self, _node: &str) -> anyhow::Result<u64> {
        let sql = format!("SELECT count(*) FROM {}.inbox", self.schema);
        match self.client().query_one(&sql, &[]).await {
            Ok(row) => Ok(row.get::<_, i64>(0) as u64),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    async fn plain(&self, bodies: &[Bytes]) -> anyhow::Result<Duration> {
        let table = format!("{}.plain", self.schema);
        let sql = INSERT.replace("{table}", &table);
        let chunks: Arc<Vec<Vec<(usize, Bytes)>>> = Arc::new(
            bodies
                .iter()
                .cloned()
                .enumerate()
                .collect::<Vec<_>>()
                .chunks(CONCURRENCY)
                .map(<[_]>::to_vec)
                .collect(),
        );
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..CONNECTIONS {
            let mut client = self.connect().await?;
            let (chunks, next, sql) = (chunks.clone(), next.clone(), sql.clone());
            tasks.push(tokio::spawn(async move {
                let insert = client.prepare(&sql).await?;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(chunk) = chunks.get(i) else {
                        return Ok::<(), anyhow::Error>(());
                    };
                    let ids: Vec<String> = chunk.iter().map(|(n, _)| format!("{n:064x}")).collect();
                    let seqs: Vec<i64> = chunk.iter().map(|(n, _)| *n as i64).collect();
                    let kinds = vec!["bench.event"; chunk.len()];
                    let sources = vec!["bench"; chunk.len()];
                    let keys: Vec<String> = chunk.iter().map(|(n, _)| format!("k{}", n % 100)).collect();
                    let data: Vec<String> = chunk
                        .iter()
                        .map(|(n, _)| super::super::load::event(*n)["data"].to_string())
                        .collect();
                    let payloads: Vec<&[u8]> = chunk.iter().map(|(_, b)| b.as_ref()).collect();
                    let tx = client.transaction().await?;
                    tx.execute(&insert, &[&ids, &seqs, &kinds, &sources, &keys, &data, &payloads])
                        .await?;
                    tx.commit().await?;
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        Ok(started.elapsed())
    }

    async fn cleanup(&self) -> anyhow::Result<()> {
        self.client()
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
            .await?;
        Ok(())
    }
}
