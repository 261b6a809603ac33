//! Memory: peak RSS of the node while it ingests and delivers 10,000 events/s, next to its idle RSS.

use super::Scale;
use super::child::{ChildNode, KEY};
use super::load::{client, event, progress};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tributary_sinks::webhook::receiver::Receiver;

/// Memory figures.
#[derive(Debug, Serialize)]
pub struct MemoryFigure {
    /// How long the load lasted, seconds.
    pub seconds: f64,
    /// Events/s actually sent (target 10,000).
    pub events_per_sec: f64,
    /// Webhooks the receiver got (all of them, once the node caught up).
    pub delivered: u64,
    /// Peak RSS of the node during the run, MB.
    pub peak_rss_mb: f64,
    /// Reference: RSS of the same node idle just after start, MB.
    pub idle_rss_mb: f64,
}

/// Sends batches of 100 every 10 ms (10,000 events/s) for the configured time.
pub async fn run(scale: &Scale) -> anyhow::Result<MemoryFigure> {
    let receiver = Receiver::start(None, false).await?;
    let node = ChildNode::start(&format!(
        "[[sources]]\nname = \"bench\"\ntype = \"http\"\n\n[[subscriptions]]\nname = \"bench\"\nmax_in_flight = 64\n[subscriptions.sink]\ntype = \"webhook\"\nurl = \"{}\"\nallow_private_networks = true\n",
        receiver.url()
    ))?;
    tokio::time::sleep(Duration::from_millis(300)).await; // let the node settle before the idle reading
    let (idle, _) = node.rss();
    let url = format!("{}/v1/sources/bench/events", node.url);
    let client = client();
    let slots = Arc::new(Semaphore::new(32));
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let started = Instant::now();
    let mut n = 0usize;
    let mut sent = 0usize;
    let pb = progress(scale.memory_for.as_secs(), "10,000 events/s (seconds)");
    while started.elapsed() < scale.memory_for {
        tick.tick().await;
        let batch: Vec<serde_json::Value> = (n..n + 100).map(event).collect();
        n += 100;
        let permit = slots.clone().acquire_owned().await?;
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let _ = client.post(&url).bearer_auth(KEY).json(&batch).send().await;
            drop(permit);
        });
        sent += 100;
        pb.set_position(started.elapsed().as_secs());
    }
    let seconds = started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let deadline = Instant::now() + Duration::from_secs(120);
    while (receiver.total() as usize) < sent && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, peak) = node.rss();
    let mb = |b: u64| b as f64 / 1_048_576.0;
    let fig = MemoryFigure {
        seconds,
        events_per_sec: sent as f64 / seconds,
        delivered: receiver.total(),
        peak_rss_mb: mb(peak),
        idle_rss_mb: mb(idle),
    };
    eprintln!(
        "memory: peak RSS {:.1} MB at {:.0} events/s for {:.0} s (idle {:.1} MB); {} delivered",
        fig.peak_rss_mb, fig.events_per_sec, fig.seconds, fig.idle_rss_mb, fig.delivered
    );
    Ok(fig)
}
