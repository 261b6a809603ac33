//! The `redis` sink next to pipelined `XADD`s of the same fields on one connection.

use super::{CONCURRENCY, Target};
use bytes::Bytes;
use redis::AsyncCommands;
use std::time::{Duration, Instant};

pub(super) struct Redis {
    url: String,
    stream: String,
    conn: Option<redis::aio::MultiplexedConnection>,
}

impl Redis {
    pub(super) fn new() -> Self {
        let url = std::env::var("TRIBUTARY_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        Self {
            url,
            stream: format!("tributary-bench-{}", std::process::id()),
            conn: None,
        }
    }

    fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.conn.clone().expect("prepared")
    }
}

#[async_trait::async_trait]
impl Target for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn plain_label(&self) -> &'static str {
        "pipelined XADD, 256 per round trip"
    }

    async fn prepare(&mut self) -> anyhow::Result<()> {
        let client = redis::Client::open(self.url.as_str())?;
        let conn = tokio::time::timeout(Duration::from_secs(3), client.get_multiplexed_async_connection())
            .await
            .map_err(|_| anyhow::anyhow!("no answer from {} within 3 s", self.url))??;
        self.conn = Some(conn);
        self.cleanup().await
    }

    fn sink_toml(&self) -> String {
        // Markers live a minute: the bench leaves nothing behind for long.
        format!(
            "type = \"redis\"\nurl = {:?}\nstream = {:?}\ndedup_ttl = \"1m\"",
            self.url, self.stream
        )
    }

    async fn count(&self, _node: &str) -> anyhow::Result<u64> {
        Ok(self.conn().xlen(&self.stream).await?)
    }

    async fn plain(&self, bodies: &[Bytes]) -> anyhow::Result<Duration> {
        let mut conn = self.conn();
        let stream = format!("{}-plain", self.stream);
        let started = Instant::now();
        for (round, chunk) in bodies.chunks(CONCURRENCY).enumerate() {
            let mut pipe = redis::pipe();
            for (i, body) in chunk.iter().enumerate() {
                let seq = round * CONCURRENCY + i;
                pipe.cmd("XADD")
                    .arg(&stream)
                    .arg("*")
                    .arg("id")
                    .arg(format!("{seq:064x}"))
                    .arg("kind")
                    .arg("bench.event")
                    .arg("source")
                    .arg("bench")
                    .arg("key")
                    .arg(format!("k{}", seq % 100))
                    .arg("seq")
                    .arg(seq)
                    .arg("payload")
                    .arg(body.as_ref())
                    .ignore();
            }
            let () = pipe.query_async(&mut conn).await?;
        }
        let took = started.elapsed();
        let () = conn.del(&stream).await?;
        Ok(took)
    }

    async fn cleanup(&self) -> anyhow::Result<()> {
        let () = self.conn().del(&self.stream).await?;
        Ok(())
    }
}
