//! Ingest: durable events/s through the http source, next to the same requests validated but not stored.

use super::Scale;
use super::child::ChildNode;
use super::load::{bodies, post_all, progress};
use serde::Serialize;
use std::sync::Arc;

/// One batch size's figures.
#[derive(Debug, Serialize)]
pub struct IngestFigure {
    /// Events per request.
    pub batch: usize,
    /// Events sent (10% duplicates).
    pub events: usize,
    /// Durable events/s (202 only after fsync).
    pub durable_per_sec: f64,
    /// Reference: events/s of the same requests with `?dry_run=true` (parsed, validated, hashed, not stored).
    pub dry_run_per_sec: f64,
}

const CONCURRENCY: usize = 16;

/// Runs the three batch sizes.
pub async fn run(scale: &Scale) -> anyhow::Result<Vec<IngestFigure>> {
    let mut out = Vec::new();
    for (batch, total) in scale.ingest {
        let node = ChildNode::start("[[sources]]\nname = \"bench\"\ntype = \"http\"\n")?;
        let bodies = Arc::new(bodies(batch, total));
        let n = bodies.len() as u64;
        let url = format!("{}/v1/sources/bench/events", node.url);
        let pb = progress(n, &format!("dry-run batch {batch}"));
        let dry = post_all(&format!("{url}?dry_run=true"), bodies.clone(), CONCURRENCY, &pb, true).await?;
        pb.finish_and_clear();
        let pb = progress(n, &format!("ingest batch {batch}"));
        let durable = post_all(&url, bodies.clone(), CONCURRENCY, &pb, true).await?;
        pb.finish_and_clear();
        let events = bodies.len() * batch;
        let fig = IngestFigure {
            batch,
            events,
            durable_per_sec: events as f64 / durable.as_secs_f64(),
            dry_run_per_sec: events as f64 / dry.as_secs_f64(),
        };
        eprintln!(
            "ingest batch {batch:>5}: {:>10.0} events/s durable, {:>10.0} events/s dry run",
            fig.durable_per_sec, fig.dry_run_per_sec
        );
        out.push(fig);
    }
    Ok(out)
}
