//! The `nats` sink next to JetStream publishes of the same bodies and headers (`Nats-Msg-Id`), 256
//! awaiting their PubAck at once, on one connection.

use super::{CONCURRENCY, Target};
use async_nats::jetstream;
use bytes::Bytes;
use std::time::{Duration, Instant};

pub(super) struct Nats {
    url: String,
    stream: String,
    js: Option<jetstream::Context>,
}

impl Nats {
    pub(super) fn new() -> Self {
        Self {
            url: std::env::var("TRIBUTARY_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
            stream: format!("tributary-bench-{}", std::process::id()),
            js: None,
        }
    }

    fn js(&self) -> &jetstream::Context {
        self.js.as_ref().expect("prepared")
    }
}

#[async_trait::async_trait]
impl Target for Nats {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn plain_label(&self) -> &'static str {
        "JetStream publish with Nats-Msg-Id, 256 PubAcks awaited at once"
    }

    async fn prepare(&mut self) -> anyhow::Result<()> {
        let connecting = async_nats::connect(self.url.as_str());
        let client = tokio::time::timeout(Duration::from_secs(3), connecting)
            .await
            .map_err(|_| anyhow::anyhow!("no answer from {} within 3 s", self.url))??;
        self.js = Some(jetstream::new(client));
        self.cleanup().await
    }

    fn sink_toml(&self) -> String {
        format!(
            "type = \"nats\"\nurl = {:?}\nstream = \"{s}\"\nsubject = \"{s}.{{kind}}\"",
            self.url,
            s = self.stream
        )
    }

    async fn count(&self, _node: &str) -> anyhow::Result<u64> {
        match self.js().get_stream(&self.stream).await {
            Ok(mut s) => Ok(s.info().await?.state.messages),
            Err(_) => Ok(0),
        }
    }

    async fn plain(&self, bodies: &[Bytes]) -> anyhow::Result<Duration> {
        let name = format!("{}-plain", self.stream);
        let js = self.js();
        js.get_or_create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("{name}.>")],
            ..Default::default()
        })
        .await?;
        let subject = format!("{name}.bench.event");
        let started = Instant::now();
        for (round, chunk) in bodies.chunks(CONCURRENCY).enumerate() {
            let mut acks = Vec::with_capacity(chunk.len());
            for (i, body) in chunk.iter().enumerate() {
                let n = round * CONCURRENCY + i;
                let id = format!("{n:064x}");
                let message = jetstream::message::PublishMessage::build()
                    .message_id(id.as_str())
                    .header("tributary-id", id.as_str())
                    .header("tributary-kind", "bench.event")
                    .header("tributary-source", "bench")
                    .payload(body.clone());
                acks.push(js.send_publish(subject.clone(), message).await?);
            }
            for ack in acks {
                ack.await?;
            }
        }
        let took = started.elapsed();
        js.delete_stream(&name).await?;
        Ok(took)
    }

    async fn cleanup(&self) -> anyhow::Result<()> {
        let _ = self.js().delete_stream(&self.stream).await;
        Ok(())
    }
}
