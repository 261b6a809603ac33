//! `tributary demo`: a node on a temporary embedded store, a local receiver that verifies every
//! Standard Webhooks signature, the bundled mainnet Lightning gossip ingested over the HTTP source (plus
//! a resend of part of it, to show deduplication), and a short report.

use crate::gossip;
use crate::node::RunningNode;
use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tributary_api::receiver::Receiver;
use tributary_core::Timestamp;
use tributary_engine::Config;

/// What the demo measured.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    /// Events posted (including resent ones).
    pub events_received: usize,
    /// New events stored.
    pub accepted: usize,
    /// Resent events recognised as duplicates.
    pub duplicates_dropped: usize,
    /// Distinct events delivered to the receiver.
    pub delivered: usize,
    /// Deliveries whose signature verified.
    pub signatures_verified: u64,
    /// Deliveries whose signature did not verify.
    pub signatures_failed: u64,
    /// Median ingest-to-delivery latency, milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub latency_p99_ms: f64,
}

impl DemoReport {
    /// Whether everything checked out.
    pub fn ok(&self) -> bool {
        self.delivered == self.accepted
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
type = "http"

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
    let base = format!("http://{}/v1/sources/gossip/events", running.addr);
    let client = reqwest::Client::new();

    let messages = gossip::sample_messages();
    let events: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let t = u16::from_be_bytes([m[0], m[1]]);
            json!({
                "kind": "ln.raw",
                "id": gossip::gossip_id(m).expect("sample messages have a type").to_hex(),
                "key": gossip::type_name(t),
                "data": {"type": t, "type_name": gossip::type_name(t), "raw_hex": hex::encode(m)},
            })
        })
        .collect();
    // Every message once, then the first 25 again: the store must recognise them.
    let mut batches: Vec<&[serde_json::Value]> = events.chunks(25).collect();
    batches.push(&events[..25.min(events.len())]);
    let started = Instant::now();
    let mut sent_at: HashMap<String, Timestamp> = HashMap::new();
    let (mut posted, mut accepted, mut duplicates) = (0, 0, 0);
    for batch in batches {
        let at = Timestamp::now();
        let resp = client
            .post(&base)
            .bearer_auth(ADMIN_KEY)
            .json(&batch)
            .send()
            .await
            .context("cannot post to the demo node")?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        if status.as_u16() != 202 {
            bail!("the demo node answered {status}: {body}");
        }
        posted += batch.len();
        accepted += body["accepted"].as_u64().unwrap_or(0) as usize;
        duplicates += body["duplicates"].as_u64().unwrap_or(0) as usize;
        for e in batch {
            sent_at
                .entry(e["id"].as_str().unwrap_or_default().to_owned())
                .or_insert(at);
        }
    }
    let all_delivered = receiver
        .wait_for(Duration::from_secs(60), |r| {
            let mut ids: Vec<&str> = r
                .iter()
                .filter(|x| (200..300).contains(&x.status))
                .map(|x| x.event_id.as_str())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.len() >= accepted
        })
        .await;
    let received = receiver.received();
    let mut latencies: Vec<u64> = Vec::new();
    let mut delivered_ids = std::collections::HashSet::new();
    for r in &received {
        if delivered_ids.insert(r.event_id.clone())
            && let Some(at) = sent_at.get(&r.event_id)
        {
            latencies.push(r.at.micros_since(*at));
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
            "  events received       {:>6}  ({} real mainnet gossip messages, some repeated in the sample, then 25 sent again)",
            report.events_received,
            messages.len()
        );
        println!("  stored                {:>6}", report.accepted);
        println!("  duplicates dropped    {:>6}", report.duplicates_dropped);
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
            "  ingest-to-delivery    p50 {:.2} ms, p99 {:.2} ms",
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
            report.accepted,
            report.signatures_failed
        );
    }
    Ok(())
}
