//! The bench report: JSON and the Markdown recorded in docs/benchmarks.md.

use super::delivery::DeliveryFigure;
use super::ingest::IngestFigure;
use super::latency::LatencyFigure;
use super::memory::MemoryFigure;
use serde::Serialize;
use std::fmt::Write;

/// Every figure of one run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The command that reproduces it.
    pub command: String,
    /// When it ran.
    pub date: String,
    /// CPU cores seen.
    pub cores: usize,
    /// Ingest per batch size.
    pub ingest: Vec<IngestFigure>,
    /// Delivery throughput.
    pub delivery: Option<DeliveryFigure>,
    /// Latency.
    pub latency: Option<LatencyFigure>,
    /// Memory.
    pub memory: Option<MemoryFigure>,
    /// Lightning gossip import.
    #[cfg(feature = "lightning")]
    pub lightning: Option<super::lightning::LightningFigure>,
    /// Each sink next to its plain client.
    pub sinks: Vec<super::sinks::SinkFigure>,
    /// EVM backfill and head-to-webhook latency.
    #[cfg(feature = "evm")]
    pub evm: Option<super::evm::EvmFigure>,
    /// PostgreSQL change capture: backlog, commit-to-delivered latency, big-transaction memory.
    #[cfg(feature = "postgres-source")]
    pub cdc: Option<super::cdc::CdcFigure>,
    /// Several nodes on one PostgreSQL store.
    #[cfg(feature = "postgres")]
    pub cluster: Option<super::cluster::ClusterFigure>,
}

impl Report {
    /// An empty report.
    pub fn new(command: String) -> Self {
        Self {
            command,
            date: tributary_core::Timestamp::now().to_rfc3339(),
            cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            ingest: Vec::new(),
            delivery: None,
            latency: None,
            memory: None,
            #[cfg(feature = "lightning")]
            lightning: None,
            sinks: Vec::new(),
            #[cfg(feature = "evm")]
            evm: None,
            #[cfg(feature = "postgres-source")]
            cdc: None,
            #[cfg(feature = "postgres")]
            cluster: None,
        }
    }

    /// The Markdown tables.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "Run `{}` on {} cores, {}.\n", self.command, self.cores, self.date);
        if !self.ingest.is_empty() {
            let _ = writeln!(
                s,
                "| ingest (http source, 10% duplicates) | durable events/s | reference: dry run events/s | ratio |"
            );
            let _ = writeln!(s, "|---|---:|---:|---:|");
        }
        for f in &self.ingest {
            let _ = writeln!(
                s,
                "| batch {} ({} events) | {:.0} | {:.0} | {:.2} |",
                f.batch,
                f.events,
                f.durable_per_sec,
                f.dry_run_per_sec,
                f.durable_per_sec / f.dry_run_per_sec
            );
        }
        if let Some(d) = &self.delivery {
            let _ = writeln!(
                s,
                "\n| delivery ({} events, {} in flight) | webhooks/s | reference: plain client requests/s | ratio |",
                d.events, d.concurrency
            );
            let _ = writeln!(s, "|---|---:|---:|---:|");
            let _ = writeln!(
                s,
                "| signed webhooks from a backlog | {:.0} | {:.0} | {:.2} |",
                d.webhooks_per_sec,
                d.plain_client_per_sec,
                d.webhooks_per_sec / d.plain_client_per_sec
            );
        }
        if let Some(l) = &self.latency {
            let _ = writeln!(
                s,
                "\n| latency at 1,000 events/s ({} events) | p50 ms | p99 ms |",
                l.events
            );
            let _ = writeln!(s, "|---|---:|---:|");
            let _ = writeln!(s, "| ingest to delivery | {:.2} | {:.2} |", l.p50_ms, l.p99_ms);
            let _ = writeln!(
                s,
                "| reference: plain POST round trip | {:.2} | {:.2} |",
                l.plain_p50_ms, l.plain_p99_ms
            );
        }
        if let Some(m) = &self.memory {
            let _ = writeln!(
                s,
                "\n| memory | peak RSS MB | reference: idle RSS MB | events/s | seconds | delivered |"
            );
            let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|");
            let _ = writeln!(
                s,
                "| ingest + delivery | {:.1} | {:.1} | {:.0} | {:.0} | {} |",
                m.peak_rss_mb, m.idle_rss_mb, m.events_per_sec, m.seconds, m.delivered
            );
        }
        #[cfg(feature = "lightning")]
        if let Some(l) = &self.lightning {
            let _ = writeln!(
                s,
                "\n| lightning import ({} messages, gossip_store) | messages/s | reference | ratio |",
                l.messages
            );
            let _ = writeln!(s, "|---|---:|---:|---:|");
            let _ = writeln!(
                s,
                "| without verification | {:.0} | read + hash ids: {:.0} | {:.2} |",
                l.import_no_verify_per_sec,
                l.read_hash_per_sec,
                l.import_no_verify_per_sec / l.read_hash_per_sec
            );
            let _ = writeln!(
                s,
                "| with verification | {:.0} | verify_batch only, all cores: {:.0} | {:.2} |",
                l.import_verify_per_sec,
                l.verify_only_per_sec,
                l.import_verify_per_sec / l.verify_only_per_sec
            );
        }
        if !self.sinks.is_empty() {
            let _ = writeln!(
                s,
                "\n| sink (backlog of {} events, {} in flight) | events/s | reference: plain client events/s | ratio |",
                self.sinks[0].events,
                super::sinks::CONCURRENCY
            );
            let _ = writeln!(s, "|---|---:|---:|---:|");
            for f in &self.sinks {
                match &f.skipped {
                    Some(why) => {
                        let _ = writeln!(s, "| {} | skipped: {why} | | |", f.sink);
                    }
                    None => {
                        let _ = writeln!(
                            s,
                            "| {} | {:.0} | {}: {:.0} | {:.2} |",
                            f.sink,
                            f.sink_per_sec,
                            f.plain,
                            f.plain_per_sec,
                            f.sink_per_sec / f.plain_per_sec
                        );
                    }
                }
            }
        }
        #[cfg(feature = "evm")]
        if let Some(e) = &self.evm {
            let _ = writeln!(
                s,
                "\n| evm (anvil, {} logs in {} blocks) | figure | reference | ratio |",
                e.logs, e.blocks
            );
            let _ = writeln!(s, "|---|---:|---:|---:|");
            let _ = writeln!(
                s,
                "| backfill from block 0, logs/s | {:.0} | plain eth_getLogs loop, 2,000-block ranges: {:.0} | {:.2} |",
                e.backfill_per_sec,
                e.plain_per_sec,
                e.backfill_per_sec / e.plain_per_sec
            );
            let _ = writeln!(
                s,
                "| head-to-webhook p50 / p99, ms ({} blocks, one per second, {}) | {:.2} / {:.2} | plain POST round trip: {:.2} / {:.2} | |",
                e.latency_blocks, e.latency_heads, e.p50_ms, e.p99_ms, e.plain_p50_ms, e.plain_p99_ms
            );
        }
        #[cfg(feature = "postgres-source")]
        if let Some(c) = &self.cdc {
            let met = |ok: bool| if ok { "met" } else { "**not met**" };
            let ratio = c.capture_per_sec / c.pg_recvlogical_per_sec;
            let _ = writeln!(
                s,
                "\n| cdc (private PostgreSQL {}, outbox table) | figure | reference | ratio | target |",
                c.server_version
            );
            let _ = writeln!(s, "|---|---:|---:|---:|---|");
            let _ = writeln!(
                s,
                "| backlog of {} rows in {} transactions, rows/s stored | {:.0} | pg_recvlogical, pgoutput, to a file: {:.0} | {:.2} | ≥ 0.70 of pg_recvlogical: {} |",
                c.backlog_rows,
                c.backlog_transactions,
                c.capture_per_sec,
                c.pg_recvlogical_per_sec,
                ratio,
                met(ratio >= 0.7)
            );
            match (&c.latency, &c.latency_skipped) {
                (Some(l), _) => {
                    let _ = writeln!(
                        s,
                        "| commit-to-delivered p50 / p99, ms ({} rows at {:.0} rows/s, 50 per transaction, into a postgres sink) | {:.2} / {:.2} | one-row INSERT + COMMIT round trip: {:.2} / {:.2} | | p99 < 50 ms: {} |",
                        l.rows,
                        l.rows_per_sec,
                        l.p50_ms,
                        l.p99_ms,
                        l.plain_p50_ms,
                        l.plain_p99_ms,
                        met(l.p99_ms < 50.0)
                    );
                }
                (None, why) => {
                    let _ = writeln!(
                        s,
                        "| commit-to-delivered latency | skipped: {} | | | p99 < 50 ms |",
                        why.as_deref().unwrap_or("not run")
                    );
                }
            }
            let _ = writeln!(
                s,
                "| peak RSS capturing one transaction of {} rows ({:.1} s to store), MB | {:.1} | idle RSS: {:.1} | | < 300 MB: {} |",
                c.big_tx_rows,
                c.big_tx_seconds,
                c.peak_rss_mb,
                c.idle_rss_mb,
                met(c.peak_rss_mb < 300.0)
            );
        }
        #[cfg(feature = "postgres")]
        if let Some(c) = &self.cluster {
            let _ = writeln!(
                s,
                "\n| cluster (PostgreSQL {}, {} events, batches of 100; the nodes share this machine's {} cores) | ingest events/s | deliveries/s (3 subscriptions) | nodes delivering |",
                c.server_version, c.events, self.cores
            );
            let _ = writeln!(s, "|---|---:|---:|---:|");
            for r in &c.runs {
                let _ = writeln!(
                    s,
                    "| {} store, {} node{} | {:.0} | {:.0} | {} |",
                    r.store,
                    r.nodes,
                    if r.nodes == 1 { "" } else { "s" },
                    r.ingest_per_sec,
                    r.deliveries_per_sec,
                    r.delivering_nodes
                );
            }
            let _ = writeln!(
                s,
                "| reference: one COPY of the same rows into a table shaped like `events` | {:.0} rows/s | | |",
                c.copy_rows_per_sec
            );
        }
        s
    }
}
