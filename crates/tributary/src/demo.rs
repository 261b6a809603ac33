//! `tributary demo`: a node on a temporary embedded store, a local receiver that verifies every
//! Standard Webhooks signature, the bundled mainnet Lightning gossip imported twice through the
//! `lightning` source's pipeline (every gossip signature verified; the second pass, from another
//! collector, shows deduplication into observations), the graph queried, and a short report.

use crate::gossip;
use crate::node::RunningNode;
use anyhow::{Context, bail};
use serde::Serialize;
use std::time::{Duration, Instant};
use tributary_core::Timestamp;
use tributary_engine::Config;
use tributary_sinks::webhook::receiver::Receiver;
use tributary_sources::lightning::Network;
use tributary_sources::lightning::import::{ImportOptions, import};

/// What the demo measured.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    /// Messages imported (the sample twice, from two collectors).
    pub events_received: usize,
    /// New gossip events stored (verified).
    pub accepted: usize,
    /// Messages recognised as known (an observation added).
    pub duplicates_dropped: usize,
    /// Messages kept as problems (rejects and `ln.problem.*` events).
    pub problems: usize,
    /// Open channels in `GET /v1/lightning/graph` now.
    pub graph_channels: usize,
    /// Nodes in it.
    pub graph_nodes: usize,
    /// Distinct events delivered to the receiver (gossip and problems).
    pub delivered: usize,
    /// Deliveries whose signature verified.
    pub signatures_verified: u64,
    /// Deliveries whose signature did not verify.
    pub signatures_failed: u64,
    /// Median time from the start of the import to delivery, milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub latency_p99_ms: f64,
}

impl DemoReport {
    /// Whether everything checked out.
    pub fn ok(&self) -> bool {
        self.delivered == self.accepted + self.problems
            && self.signatures_failed == 0
            && self.signatures_verified as usize >= self.delivered
    }
}

const ADMIN_KEY: &str = "demo-admin-key";

/// Runs the demo; `json` prints the report as JSON instead of text.
pub async fn run(json_out: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory for the demo store")?;
    let secret = tributary_sinks::generate_secret();
    let receiver = Receiver::start(Some(secret.clone()), true)
        .await
        .context("cannot start the demo receiver")?;
    let config = Config::from_toml(&format!(
        r#"
[node]
data_dir = {data_dir:?}
listen = "127.0.0.1:0"
admin_key = "{ADMIN_KEY}"

[[sources]]
name = "gossip"
type = "lightning"

[[subscriptions]]
name = "demo-hook"
filter = {{ kinds = ["ln.*"] }}
[subscriptions.sink]
type = "webhook"
url = "{url}"
secret = "{secret}"
allow_private_networks = true
"#,
        data_dir = dir.path().join("data").display().to_string(),
        url = receiver.url(),
    ))?;
    if !json_out {
        println!("tributary demo: node on a temporary store in {}", dir.path().display());
        println!("  receiver verifying signatures at {}", receiver.url());
    }
    let running = RunningNode::start(config).await?;
    // The lightning import path, in process: the node's own store handle, so no lock is in the way.
    let input = dir.path().join("cln_gossip_store_sample.hex");
    std::fs::write(&input, gossip::SAMPLE_HEX).context("cannot write the demo gossip file")?;
    let store = running.node.sources["gossip"].store.clone();
    let started = Instant::now();
    let import_at = Timestamp::now();
    let (mut posted, mut accepted, mut duplicates, mut problems) = (0, 0, 0, 0);
    // The same file from two collectors: one event per message, two observations.
    for collector in ["demo-collector-1", "demo-collector-2"] {
        let file = std::fs::File::open(&input).context("cannot read the demo gossip file")?;
        let options = ImportOptions {
            source: "gossip".into(),
            format: None,
            verify: true,
            network: Network::Mainnet,
            collector: Some(collector.into()),
            max_waiting: 100_000,
            keep_waiting: true,
        };
        let summary = import(store.clone(), file, options, |_, _| {}).await?;
        posted += summary.messages as usize;
        accepted += summary.accepted as usize;
        duplicates += summary.duplicates as usize;
        if collector == "demo-collector-1" {
            problems = summary.rejected.values().sum::<u64>() as usize;
        }
    }
    let graph: serde_json::Value = reqwest::Client::new()
        .get(format!("http://{}/v1/lightning/graph", running.addr))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .context("cannot query the demo node's graph")?
        .json()
        .await
        .context("the graph answer is not JSON")?;
    let (channels, nodes) = (
        graph["channels"].as_array().map_or(0, Vec::len),
        graph["nodes"].as_array().map_or(0, Vec::len),
    );
    let messages = gossip::sample_messages();
    let stored = accepted + problems;
    let all_delivered = receiver
        .wait_for(Duration::from_secs(60), |r| {
            let mut ids: Vec<&str> = r
                .iter()
                .filter(|x| (200..300).contains(&x.status))
                .map(|x| x.event_id.as_str())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.len() >= stored
        })
        .await;
    let received = receiver.received();
    let mut latencies: Vec<u64> = Vec::new();
    let mut delivered_ids = std::collections::HashSet::new();
    for r in &received {
        if delivered_ids.insert(r.event_id.clone()) {
            latencies.push(r.at.micros_since(import_at));
        }
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .map(|us| *us as f64 / 1000.0)
            .unwrap_or(0.0)
    };
    let report = DemoReport {
        events_received: posted,
        accepted,
        duplicates_dropped: duplicates,
        problems,
        graph_channels: channels,
        graph_nodes: nodes,
        delivered: delivered_ids.len(),
        signatures_verified: receiver.verified(),
        signatures_failed: receiver.failed(),
        latency_p50_ms: pct(0.5),
        latency_p99_ms: pct(0.99),
    };
    let elapsed = started.elapsed();
    running.stop().await?;
    if json_out {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        println!(
            "  messages imported     {:>6}  ({} real mainnet gossip messages, from two collectors)",
            report.events_received,
            messages.len()
        );
        println!(
            "  stored                {:>6}  (ln.* events, every gossip signature verified)",
            report.accepted
        );
        println!(
            "  problems              {:>6}  (ln.problem.* events, see /v1/lightning/problems)",
            report.problems
        );
        println!(
            "  duplicates            {:>6}  (the second collector: observations, not events)",
            report.duplicates_dropped
        );
        println!(
            "  graph now             {:>6}  channels, {} nodes (GET /v1/lightning/graph)",
            report.graph_channels, report.graph_nodes
        );
        println!(
            "  delivered             {:>6}  (signed webhooks, in {:.2} s)",
            report.delivered,
            elapsed.as_secs_f64()
        );
        println!(
            "  signatures verified   {:>6}  (failed: {})",
            report.signatures_verified, report.signatures_failed
        );
        println!(
            "  import-to-delivery    p50 {:.2} ms, p99 {:.2} ms",
            report.latency_p50_ms, report.latency_p99_ms
        );
        println!();
        println!("next:");
        println!("  ./scripts/test.sh                         run every test against real peers");
        println!("  cp config/tributary.example.toml my.toml  point a subscription at your endpoint");
        println!("  cargo run --release -- run --config my.toml");
        println!("  cargo run --release -- bench --quick      measure ingest and delivery on this machine");
    }
    if !all_delivered || !report.ok() {
        bail!(
            "demo failed: {} of {} events delivered, {} signatures failed",
            report.delivered,
            report.accepted + report.problems,
            report.signatures_failed
        );
    }
    Ok(())
}
