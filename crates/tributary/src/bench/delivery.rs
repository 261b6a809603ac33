//! Delivery: signed webhooks/s from a backlog, next to a plain HTTP client loop against the same receiver.

use super::Scale;
use super::child::ChildNode;
use super::load::{bodies, post_all, progress};
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tributary_sinks::webhook::receiver::Receiver;

/// Delivery figures.
#[derive(Debug, Serialize)]
pub struct DeliveryFigure {
    /// Events delivered.
    pub events: usize,
    /// Deliveries in flight (tributary) and client tasks (reference).
    pub concurrency: usize,
    /// Signed webhooks/s delivered by tributary.
    pub webhooks_per_sec: f64,
    /// Reference: requests/s of a plain reqwest loop posting the same body size to the same receiver.
    pub plain_client_per_sec: f64,
}

const CONCURRENCY: usize = 64;

/// Fills a store, restarts the node with a subscription, and times the drain.
pub async fn run(scale: &Scale) -> anyhow::Result<DeliveryFigure> {
    let receiver = Receiver::start(None, false).await?;
    let source = "[[sources]]\nname = \"bench\"\ntype = \"http\"\n";
    // 1. A backlog of distinct events.
    let node = ChildNode::start(source)?;
    let backlog: Vec<Bytes> = bodies(1_000, scale.delivery_events).into_iter().collect();
    let pb = progress(backlog.len() as u64, "filling backlog");
    post_all(
        &format!("{}/v1/sources/bench/events", node.url),
        Arc::new(backlog),
        4,
        &pb,
        true,
    )
    .await?;
    pb.finish_and_clear();
    let dir = node.stop()?;
    // Count only distinct events (the generator repeats 10%).
    let expected = scale.delivery_events - scale.delivery_events / 10;
    // 2. Restart with a subscription and time the drain.
    let sub = format!(
        "{source}\n[[subscriptions]]\nname = \"bench\"\nmax_in_flight = {CONCURRENCY}\n[subscriptions.sink]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"\nallow_private_networks = true\n",
        receiver.url(),
        tributary_sinks::generate_secret()
    );
    let pb = progress(expected as u64, "delivering");
    let node = ChildNode::start_in(dir, &sub)?;
    // Timed from the first delivery to the last, so that the node's start-up is not counted.
    let started = Instant::now();
    let mut first: Option<(Instant, u64)> = None;
    while (receiver.total() as usize) < expected {
        let total = receiver.total();
        if first.is_none() && total > 0 {
            first = Some((Instant::now(), total));
        }
        pb.set_position(total);
        if started.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("delivery bench: only {total} of {expected} delivered after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (t0, before) = first.unwrap_or((started, 0));
    let took = t0.elapsed();
    let expected_timed = expected - before as usize;
    pb.finish_and_clear();
    drop(node);
    // 3. Reference: a plain client loop, same receiver, same concurrency, a body of the same size.
    let sample = format!(
        r#"{{"type":"bench.event","timestamp":"2026-11-22T05:32:28Z","data":{{"id":"{}","seq":1,"source":"bench","key":"k1","occurred_at":null,"ingested_at":"2026-11-22T05:32:28Z","data":{}}}}}"#,
        "ab".repeat(32),
        super::load::event(1)["data"]
    );
    let plain: Vec<Bytes> = (0..expected).map(|_| Bytes::from(sample.clone())).collect();
    let pb = progress(plain.len() as u64, "plain client loop");
    let plain_took = post_all(&receiver.url(), Arc::new(plain), CONCURRENCY, &pb, false).await?;
    pb.finish_and_clear();
    let fig = DeliveryFigure {
        events: expected,
        concurrency: CONCURRENCY,
        webhooks_per_sec: expected_timed as f64 / took.as_secs_f64(),
        plain_client_per_sec: expected as f64 / plain_took.as_secs_f64(),
    };
    eprintln!(
        "delivery: {:.0} webhooks/s, plain client {:.0} requests/s",
        fig.webhooks_per_sec, fig.plain_client_per_sec
    );
    Ok(fig)
}
