//! `tributary bench`: throughput, latency and memory of the release binary, each figure next to a
//! reference measured in the same run (the machines are noisy: read the ratios).
//!
//! Every scenario starts the node as a child process (`tributary run`) on a fresh store, drives it over
//! loopback HTTP from this process, and delivers to an in-process keep-alive receiver.
//!
//! - [`ingest`]: durable events/s through the http source at batch sizes 1, 100 and 1,000 with 10%
//!   duplicates, next to the same requests with `?dry_run=true` (parse and validate, no store).
//! - [`delivery`]: webhooks/s from a backlog, next to a plain HTTP client loop against the same receiver.
//! - [`latency`]: p50/p99 ingest-to-delivery at a steady 1,000 events/s, next to the plain round trip.
//! - [`memory`]: peak RSS of the node while sustaining 10,000 events/s, next to its idle RSS.
//! - [`lightning`](mod@lightning): `tributary import` messages/s of a signed `gossip_store` with and
//!   without verification, next to reading and hashing the same file and to verifying it without storage.
//! - [`sinks`]: a backlog drained into each built-in sink other than the webhook, next to a plain client
//!   of the same library against the same server.
//! - [`cdc`]: the `postgres` source on a private PostgreSQL: capture rows/s from an outbox backlog next to
//!   `pg_recvlogical`, commit-to-delivered latency into a `postgres` sink next to a plain INSERT + COMMIT,
//!   and peak RSS capturing one big transaction next to the idle node.
//! - [`cluster`]: one, two and three nodes on one PostgreSQL schema: ingest events/s and deliveries/s,
//!   next to PostgreSQL's COPY of the same rows and to the embedded store on the same workload.

#[cfg(feature = "postgres-source")]
mod cdc;
mod child;
#[cfg(feature = "postgres")]
mod cluster;
mod delivery;
#[cfg(feature = "evm")]
mod evm;
mod ingest;
mod latency;
#[cfg(feature = "lightning")]
mod lightning;
mod load;
mod memory;
mod report;
mod sinks;

use report::Report;
use std::path::PathBuf;
use std::time::Duration;

/// How big a run.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Events per ingest batch size: (batch, total events).
    pub ingest: [(usize, usize); 3],
    /// Events in the delivery backlog.
    pub delivery_events: usize,
    /// How long the latency run lasts.
    pub latency_for: Duration,
    /// How long the memory run lasts.
    pub memory_for: Duration,
    /// Messages in the Lightning import file.
    pub lightning_messages: usize,
    /// Events in the backlog drained into each sink.
    pub sink_events: usize,
    /// Blocks (of 20 logs each) in the EVM backfill chain.
    pub evm_blocks: u64,
    /// How long the EVM latency run lasts (one block per second).
    pub evm_latency_for: Duration,
    /// Outbox rows in the CDC backlog (transactions of 1,000 rows).
    pub cdc_backlog_rows: usize,
    /// How long the CDC latency run lasts (5,000 rows/s).
    pub cdc_latency_for: Duration,
    /// Rows of the one big transaction of the CDC memory run.
    pub cdc_big_tx_rows: usize,
    /// Events ingested (then delivered to three subscriptions) per cluster run.
    pub cluster_events: usize,
}

impl Scale {
    /// A smoke run of a few seconds (CI).
    pub fn quick() -> Self {
        Self {
            ingest: [(1, 2_000), (100, 20_000), (1_000, 50_000)],
            delivery_events: 5_000,
            latency_for: Duration::from_secs(3),
            memory_for: Duration::from_secs(5),
            lightning_messages: 100_000,
            sink_events: 5_000,
            evm_blocks: 500,
            evm_latency_for: Duration::from_secs(3),
            cdc_backlog_rows: 20_000,
            cdc_latency_for: Duration::from_secs(3),
            cdc_big_tx_rows: 50_000,
            cluster_events: 5_000,
        }
    }

    /// The full run recorded in docs/benchmarks.md (about seven minutes).
    pub fn full() -> Self {
        Self {
            ingest: [(1, 20_000), (100, 300_000), (1_000, 1_000_000)],
            delivery_events: 50_000,
            latency_for: Duration::from_secs(30),
            memory_for: Duration::from_secs(300),
            lightning_messages: 1_000_000,
            sink_events: 200_000,
            evm_blocks: 10_000,
            evm_latency_for: Duration::from_secs(60),
            cdc_backlog_rows: 1_000_000,
            cdc_latency_for: Duration::from_secs(30),
            cdc_big_tx_rows: 1_000_000,
            cluster_events: 100_000,
        }
    }
}

/// Runs every scenario and writes the report.
/// The scenarios, for `--only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Durable ingest throughput.
    Ingest,
    /// Webhook delivery throughput.
    Delivery,
    /// Ingest-to-delivery latency.
    Latency,
    /// Peak memory under sustained load.
    Memory,
    /// Lightning gossip import with and without signature verification.
    #[cfg(feature = "lightning")]
    Lightning,
    /// Each built-in sink but the webhook, next to a plain client of its library.
    Sinks,
    /// EVM log backfill from a local anvil, and head-to-webhook latency.
    #[cfg(feature = "evm")]
    Evm,
    /// PostgreSQL change capture (outbox) on a private server: backlog, latency into a postgres sink, memory.
    #[cfg(feature = "postgres-source")]
    Cdc,
    /// One, two and three nodes on one PostgreSQL store, next to COPY and the embedded store.
    #[cfg(feature = "postgres")]
    Cluster,
}

/// Runs the chosen scenarios (all when `only` is empty) and writes the report.
pub async fn run(quick: bool, only: Vec<Scenario>, out: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
    let scale = if quick { Scale::quick() } else { Scale::full() };
    let wanted = |s: Scenario| only.is_empty() || only.contains(&s);
    let mut command = format!("tributary bench{}", if quick { " --quick" } else { "" });
    for s in &only {
        command.push_str(&format!(" --only {}", format!("{s:?}").to_lowercase()));
    }
    let mut report = Report::new(command);
    if wanted(Scenario::Ingest) {
        report.ingest = ingest::run(&scale).await?;
    }
    if wanted(Scenario::Delivery) {
        report.delivery = Some(delivery::run(&scale).await?);
    }
    if wanted(Scenario::Latency) {
        report.latency = Some(latency::run(&scale).await?);
    }
    if wanted(Scenario::Memory) {
        report.memory = Some(memory::run(&scale).await?);
    }
    #[cfg(feature = "lightning")]
    if wanted(Scenario::Lightning) {
        report.lightning = Some(lightning::run(scale.lightning_messages).await?);
    }
    if wanted(Scenario::Sinks) {
        report.sinks = sinks::run(scale.sink_events).await?;
    }
    #[cfg(feature = "evm")]
    if wanted(Scenario::Evm) {
        report.evm = Some(evm::run(scale.evm_blocks, scale.evm_latency_for).await?);
    }
    #[cfg(feature = "postgres-source")]
    if wanted(Scenario::Cdc) {
        report.cdc = Some(cdc::run(&scale).await?);
    }
    #[cfg(feature = "postgres")]
    if wanted(Scenario::Cluster) {
        report.cluster = Some(cluster::run(scale.cluster_events).await?);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", report.markdown());
    }
    if let Some(path) = out {
        std::fs::write(&path, report.markdown())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}
