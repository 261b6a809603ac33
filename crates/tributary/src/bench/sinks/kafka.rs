//! The `kafka` sink next to a plain rdkafka producer (the same library and settings: idempotent,
//! `acks = all`, `linger.ms = 5`) sending the same bodies, every one in flight at once, to the same broker:
//! tansu with memory storage, started for the run on a free port (`scripts/peers.sh` installs it).
//!
//! Counted at the node, not in the topic: a delivery counts when the broker acknowledged it (the sink's
//! rule), and tansu's high watermark does not count records (it answered 19,231 after 20,000 records).

use super::Target;
use bytes::Bytes;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use std::time::{Duration, Instant};
use tributary_testkit::kafka::Tansu;

pub(super) struct Kafka {
    broker: Option<Tansu>,
    topic: String,
}

impl Kafka {
    pub(super) fn new() -> Self {
        Self {
            broker: None,
            topic: format!("tributary-bench-{}", std::process::id()),
        }
    }

    fn brokers(&self) -> &str {
        &self.broker.as_ref().expect("prepared").brokers
    }

    async fn create(&self, topic: &str) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", self.brokers()).create()?;
        let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        for result in admin.create_topics([&new], &options).await? {
            result.map_err(|(topic, e)| anyhow::anyhow!("creating topic {topic}: {e}"))?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Target for Kafka {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn plain_label(&self) -> &'static str {
        "rdkafka producer (idempotent, acks=all, linger 5 ms), every record in flight"
    }

    async fn prepare(&mut self) -> anyhow::Result<()> {
        if !tributary_testkit::kafka::installed() {
            anyhow::bail!("tansu is not installed: run ./scripts/peers.sh (cargo install tansu --features dynostore)");
        }
        self.broker = Some(tokio::task::spawn_blocking(Tansu::start).await?);
        // Created beforehand, as for the plain producer: the sink's own creation is not what is timed.
        self.create(&self.topic).await
    }

    fn sink_toml(&self) -> String {
        format!(
            "type = \"kafka\"\nbrokers = {:?}\ntopic = {:?}",
            self.brokers(),
            self.topic
        )
    }

    async fn count(&self, node: &str) -> anyhow::Result<u64> {
        super::delivered_at_node(node).await
    }

    async fn plain(&self, bodies: &[Bytes]) -> anyhow::Result<Duration> {
        let topic = format!("{}-plain", self.topic);
        self.create(&topic).await?;
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "60000")
            .create()?;
        let keys: Vec<String> = (0..bodies.len()).map(|i| format!("k{}", i % 100)).collect();
        // Connected, with its producer id and the topic's metadata, before the clock starts: the sink's
        // figure starts at its first delivery too.
        let warm = FutureRecord::to(&topic).key("warm-up").payload("warm-up");
        producer
            .send(warm, Duration::from_secs(60))
            .await
            .map_err(|(e, _)| anyhow::anyhow!("plain producer: {e}"))?;
        let started = Instant::now();
        let sends: Vec<_> = bodies
            .iter()
            .zip(&keys)
            .map(|(body, key)| {
                let record = FutureRecord::to(&topic).key(key).payload(body.as_ref());
                producer.send(record, Duration::from_secs(60))
            })
            .collect();
        for sent in futures_util::future::join_all(sends).await {
            sent.map_err(|(e, _)| anyhow::anyhow!("plain producer: {e}"))?;
        }
        let took = started.elapsed();
        producer.flush(Duration::from_secs(10))?;
        Ok(took)
    }

    async fn cleanup(&self) -> anyhow::Result<()> {
        // The broker keeps everything in memory and stops with the run.
        Ok(())
    }
}
