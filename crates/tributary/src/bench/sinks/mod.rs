//! Sinks: drain one backlog into each sink built in (Redis streams, NATS JetStream, PostgreSQL, Kafka),
//! next to a plain client of the same library writing bodies of the same shape to the same server in the
//! same run. Each server is the machine's own (the test peers; `scripts/peers.sh` starts them); a sink
//! whose server does not answer is reported as skipped with the reason, the others still run.

#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;

use super::child::ChildNode;
use super::load::{bodies, post_all, progress};
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Deliveries in flight per subscription (the largest `max_in_flight`), and the plain clients'
/// concurrency or pipeline depth.
pub const CONCURRENCY: usize = 256;

/// One sink's figures.
#[derive(Debug, Serialize)]
pub struct SinkFigure {
    /// The sink type (`redis`).
    pub sink: &'static str,
    /// Events drained.
    pub events: usize,
    /// Events/s written by tributary from the backlog.
    pub sink_per_sec: f64,
    /// Events/s of the plain client.
    pub plain_per_sec: f64,
    /// What the plain client does.
    pub plain: &'static str,
    /// Why the sink was not measured (its server did not answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// A destination under test.
#[async_trait::async_trait]
pub(super) trait Target: Send + Sync {
    /// The sink type.
    fn name(&self) -> &'static str;
    /// What the plain client does, for the report.
    fn plain_label(&self) -> &'static str;
    /// Connects and empties the destination; `Err` when the server does not answer (skipped).
    async fn prepare(&mut self) -> anyhow::Result<()>;
    /// The `[subscriptions.sink]` table's keys.
    fn sink_toml(&self) -> String;
    /// Events in the destination written by tributary; `node` is the subscription's URL on the node, for
    /// a destination that cannot count what it holds ([`delivered_at_node`]).
    async fn count(&self, node: &str) -> anyhow::Result<u64>;
    /// Writes `bodies` with the plain client (to a destination of its own); the time it took.
    async fn plain(&self, bodies: &[Bytes]) -> anyhow::Result<Duration>;
    /// Removes what the run wrote.
    async fn cleanup(&self) -> anyhow::Result<()>;
}

fn targets() -> Vec<Box<dyn Target>> {
    vec![
        #[cfg(feature = "redis")]
        Box::new(redis::Redis::new()),
        #[cfg(feature = "postgres")]
        Box::new(postgres::Postgres::new()),
        #[cfg(feature = "nats")]
        Box::new(nats::Nats::new()),
        #[cfg(feature = "kafka")]
        Box::new(kafka::Kafka::new()),
    ]
}

/// A standard-format body (the webhook body) for event `n`, as the sinks write it.
fn standard_body(n: usize) -> Bytes {
    Bytes::from(format!(
        r#"{{"type":"bench.event","timestamp":"2026-11-22T05:32:28Z","data":{{"id":"{:064x}","seq":{n},"source":"bench","key":"k{}","occurred_at":null,"ingested_at":"2026-11-22T05:32:28Z","data":{}}}}}"#,
        n,
        n % 100,
        super::load::event(n)["data"]
    ))
}

/// Fills one backlog, then drains it into each sink and runs each plain client.
pub async fn run(events: usize) -> anyhow::Result<Vec<SinkFigure>> {
    let source = "[[sources]]\nname = \"bench\"\ntype = \"http\"\n";
    let node = ChildNode::start(source)?;
    let backlog: Vec<Bytes> = bodies(1_000, events);
    let pb = progress(events as u64, "filling backlog");
    post_all(
        &format!("{}/v1/sources/bench/events", node.url),
        Arc::new(backlog),
        4,
        &pb,
        true,
    )
    .await?;
    pb.finish_and_clear();
    let mut dir = node.stop()?;
    // Only distinct events are stored (the generator repeats 10%).
    let expected = events - events / 10;
    let plain_bodies: Vec<Bytes> = (0..expected).map(standard_body).collect();
    let mut figures = Vec::new();
    for mut target in targets() {
        let name = target.name();
        if let Err(e) = target.prepare().await {
            eprintln!("sinks: {name} skipped: {e}");
            figures.push(SinkFigure {
                sink: name,
                events: expected,
                sink_per_sec: 0.0,
                plain_per_sec: 0.0,
                plain: target.plain_label(),
                skipped: Some(format!("{e:#}")),
            });
            continue;
        }
        let sub = format!(
            "{source}\n[[subscriptions]]\nname = \"bench-{name}\"\nmax_in_flight = {CONCURRENCY}\n[subscriptions.sink]\n{}\n",
            target.sink_toml()
        );
        let node = ChildNode::start_in(dir, &sub)?;
        let took = drain(target.as_ref(), &node.url, expected as u64).await;
        dir = node.stop()?;
        let (timed, took) = took?;
        let pb = progress(1, &format!("{name}: plain client"));
        let plain_took = target.plain(&plain_bodies).await?;
        pb.finish_and_clear();
        target.cleanup().await?;
        let fig = SinkFigure {
            sink: name,
            events: expected,
            sink_per_sec: timed as f64 / took.as_secs_f64(),
            plain_per_sec: expected as f64 / plain_took.as_secs_f64(),
            plain: target.plain_label(),
            skipped: None,
        };
        eprintln!(
            "sinks: {name} {:.0} events/s, plain client {:.0} events/s ({:.2})",
            fig.sink_per_sec,
            fig.plain_per_sec,
            fig.sink_per_sec / fig.plain_per_sec
        );
        figures.push(fig);
    }
    Ok(figures)
}

/// Events the node delivered to the subscription at `subscription` (its `events_delivered`): each
/// counted once the destination acknowledged it.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
async fn delivered_at_node(subscription: &str) -> anyhow::Result<u64> {
    let view: serde_json::Value = reqwest::Client::new()
        .get(subscription)
        .bearer_auth(super::child::KEY)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(view["status"]["events_delivered"].as_u64().unwrap_or(0))
}

/// Waits until `expected` events are in the destination; the events counted and the time from the first
/// one seen to the last (the node's start-up is not counted).
async fn drain(target: &dyn Target, node: &str, expected: u64) -> anyhow::Result<(u64, Duration)> {
    let pb = progress(expected, &format!("{}: delivering", target.name()));
    let started = Instant::now();
    let mut first: Option<(Instant, u64)> = None;
    let subscription = format!("{node}/v1/subscriptions/bench-{}", target.name());
    loop {
        let n = target.count(&subscription).await?;
        pb.set_position(n);
        if first.is_none() && n > 0 {
            first = Some((Instant::now(), n));
        }
        if n >= expected {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            anyhow::bail!(
                "{} bench: only {n} of {expected} written after 15 minutes",
                target.name()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pb.finish_and_clear();
    let (t0, before) = first.unwrap_or((started, 0));
    Ok((expected - before, t0.elapsed()))
}
