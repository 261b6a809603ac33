//! EVM: backfill logs/s of the `evm` source from a local anvil, next to a plain `eth_getLogs` loop over
//! the same blocks with the same filter in the same run; and head-to-webhook latency at one block per
//! second with `confirmations = 0` over WebSocket (`eth_subscribe newHeads`), next to the plain loopback
//! POST round trip to the same receiver.
//!
//! anvil comes from `./scripts/peers.sh evm` (`~/.cache/tributary/npm`, or `TRIBUTARY_ANVIL`). The chain
//! is made by the bench: the test contract `Spray` (tests/it/evm_contract) emitting 20 Transfer logs per
//! transaction, one transaction per block.

use super::child::ChildNode;
use super::load::{client, pct_ms, progress};
use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tributary_core::Timestamp;
use tributary_sinks::webhook::receiver::{Receiver, Reply};

const ACCOUNT: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
const TRANSFER: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
const BYTECODE: &str = include_str!("../../tests/it/evm_contract/Spray.bin");
/// Logs per block (one transaction of `spray(20)`).
const PER_BLOCK: u64 = 20;
/// The block range of both the source (`max_block_range`) and the plain loop.
const RANGE: u64 = 2000;

/// The EVM figures.
#[derive(Debug, Serialize)]
pub struct EvmFigure {
    /// Logs in the chain.
    pub logs: u64,
    /// Blocks holding them.
    pub blocks: u64,
    /// Logs/s stored by the `evm` source from block 0 (durable, checkpointed).
    pub backfill_per_sec: f64,
    /// Logs/s of the plain `eth_getLogs` loop (reqwest + serde_json, ranges of 2,000 blocks).
    pub plain_per_sec: f64,
    /// Head-to-webhook latency samples (one block per second).
    pub latency_blocks: usize,
    /// How the source learns of new heads in the latency run.
    pub latency_heads: &'static str,
    /// Median: from `evm_mine` returning to the webhook arriving.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Reference: median plain POST round trip to the same receiver.
    pub plain_p50_ms: f64,
    /// Reference: 99th percentile.
    pub plain_p99_ms: f64,
}

fn anvil_path() -> anyhow::Result<PathBuf> {
    let path = match std::env::var_os("TRIBUTARY_ANVIL") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var("HOME").context("HOME is not set")?)
            .join(".cache/tributary/npm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"),
    };
    if !path.exists() {
        bail!(
            "anvil not found at {}: run ./scripts/peers.sh evm (or set TRIBUTARY_ANVIL)",
            path.display()
        );
    }
    Ok(path)
}

/// anvil on a free loopback port, killed when dropped.
struct Anvil {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Anvil {
    async fn start(extra: &[&str]) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(anvil_path()?)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--silent"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start anvil")?;
        let anvil = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: client(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while anvil.call("eth_chainId", json!([])).await.is_err() {
            if Instant::now() > deadline {
                bail!("anvil did not answer on {} within 30 s", anvil.url);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(anvil)
    }

    async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let answer: Value = self.http.post(&self.url).json(&body).send().await?.json().await?;
        match answer.get("error") {
            Some(e) => bail!("anvil: {method}: {e}"),
            None => Ok(answer["result"].clone()),
        }
    }

    /// Deploys `Spray`; its address.
    async fn deploy(&self) -> anyhow::Result<String> {
        let tx = json!({"from": ACCOUNT, "data": format!("0x{}", BYTECODE.trim()), "gas": "0xf42400"});
        let hash = self.call("eth_sendTransaction", json!([tx])).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let receipt = self.call("eth_getTransactionReceipt", json!([hash])).await?;
            if let Some(address) = receipt["contractAddress"].as_str() {
                return Ok(address.to_owned());
            }
            if Instant::now() > deadline {
                bail!("anvil: no receipt of the deployment within 30 s: {receipt}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn spray(contract: &str, n: u64) -> Value {
        json!({"from": ACCOUNT, "to": contract, "data": format!("0x8b78b1c9{n:064x}"), "gas": "0xf42400"})
    }

    async fn head(&self) -> anyhow::Result<u64> {
        hex(&self.call("eth_blockNumber", json!([])).await?)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex(v: &Value) -> anyhow::Result<u64> {
    let s = v.as_str().context("expected a hex quantity")?;
    Ok(u64::from_str_radix(s.trim_start_matches("0x"), 16)?)
}

fn source_toml(url: &str, contract: &str, extra: &str) -> String {
    format!(
        "[[sources]]\nname = \"chain\"\ntype = \"evm\"\nchain_id = 31337\nrpc = [\"{url}\"]\n\
         addresses = [\"{contract}\"]\ntopics = [[\"{TRANSFER}\"]]\n\
         abi = [\"event Transfer(address indexed from, address indexed to, uint256 value)\"]\n\
         max_block_range = {RANGE}\nallow_private_networks = true\n{extra}\n"
    )
}

/// Runs both parts: backfill over `blocks` blocks, then latency for `latency_for`.
pub async fn run(blocks: u64, latency_for: Duration) -> anyhow::Result<EvmFigure> {
    let anvil = Anvil::start(&[]).await?;
    let contract = anvil.deploy().await?;
    let pb = progress(blocks, "anvil: making blocks");
    // One transaction per block, mined on command: anvil 1.7's automining stops under a sustained stream
    // of transactions (they stay pending), and batches with explicit nonces leave some queued forever.
    anvil.call("evm_setAutomine", json!([false])).await?;
    let first = anvil.head().await?;
    for made in 0..blocks {
        anvil
            .call("eth_sendTransaction", json!([Anvil::spray(&contract, PER_BLOCK)]))
            .await?;
        anvil.call("evm_mine", json!([])).await?;
        if made % 100 == 0 {
            pb.set_position(made);
        }
    }
    let sent = blocks;
    pb.finish_and_clear();
    let head = anvil.head().await?;
    let (blocks, logs) = (head - first, sent * PER_BLOCK);

    // The plain loop: eth_getLogs over ranges of RANGE blocks, answers parsed into JSON values.
    let started = Instant::now();
    let mut counted = 0u64;
    let mut from = 0;
    while from <= head {
        let to = (from + RANGE - 1).min(head);
        let filter = json!({"fromBlock": format!("0x{from:x}"), "toBlock": format!("0x{to:x}"),
            "address": contract, "topics": [TRANSFER]});
        counted += anvil
            .call("eth_getLogs", json!([filter]))
            .await?
            .as_array()
            .map_or(0, |a| a.len()) as u64;
        from = to + 1;
    }
    let plain_secs = started.elapsed().as_secs_f64();
    if counted != logs {
        bail!("the plain loop read {counted} logs, the chain holds {logs}");
    }

    // The source, from block 0 until every log is stored.
    let started = Instant::now();
    let node = ChildNode::start(&source_toml(
        &anvil.url,
        &contract,
        "from_block = 0\npoll_interval_ms = 100",
    ))?;
    let http = client();
    let pb = progress(logs, "evm source: backfill");
    loop {
        let stored = stored(&http, &node).await?;
        pb.set_position(stored);
        if stored >= logs {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("the evm source stored {stored} of {logs} logs in 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let source_secs = started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    drop(node);
    drop(anvil);
    let (latency, samples, heads) = latency(latency_for).await?;
    let plain = plain_round_trips(latency_for).await?;
    let fig = EvmFigure {
        logs,
        blocks,
        backfill_per_sec: logs as f64 / source_secs,
        plain_per_sec: logs as f64 / plain_secs,
        latency_blocks: samples,
        latency_heads: heads,
        p50_ms: pct_ms(&latency, 0.5),
        p99_ms: pct_ms(&latency, 0.99),
        plain_p50_ms: pct_ms(&plain, 0.5),
        plain_p99_ms: pct_ms(&plain, 0.99),
    };
    eprintln!(
        "evm backfill: {:.0} logs/s (plain eth_getLogs loop {:.0}); head-to-webhook p50 {:.2} ms, p99 {:.2} ms",
        fig.backfill_per_sec, fig.plain_per_sec, fig.p50_ms, fig.p99_ms
    );
    Ok(fig)
}

async fn stored(http: &reqwest::Client, node: &ChildNode) -> anyhow::Result<u64> {
    let v: Value = (http.get(format!("{}/v1/sources/chain", node.url)))
        .bearer_auth(super::child::KEY)
        .send()
        .await?
        .json()
        .await?;
    Ok(v["status"]["stored"].as_u64().unwrap_or(0))
}

/// One block per second on an anvil that mines only when told: the time from `evm_mine` returning to
/// the block's log arriving at the webhook receiver. Microseconds, sorted.
async fn latency(dur: Duration) -> anyhow::Result<(Vec<u64>, usize, &'static str)> {
    let anvil = Anvil::start(&[]).await?;
    let contract = anvil.deploy().await?;
    anvil.call("evm_setAutomine", json!([false])).await?;
    let receiver = Receiver::start(None, false).await?;
    let arrivals: Arc<Mutex<HashMap<String, Timestamp>>> = Arc::default();
    let a = arrivals.clone();
    receiver.respond_with(move |r| {
        a.lock().expect("arrivals").entry(r.event_id.clone()).or_insert(r.at);
        Reply::ok()
    });
    // anvil serves WebSocket on its HTTP port: heads arrive by `eth_subscribe newHeads`.
    let (url, heads, extra) = (anvil.url.replacen("http://", "ws://", 1), HEADS, "");
    let body = format!(
        "{}\n[[subscriptions]]\nname = \"hook\"\n[subscriptions.sink]\ntype = \"webhook\"\nurl = \"{}\"\nallow_private_networks = true\n",
        source_toml(&url, &contract, &format!("from_block = \"latest\"\n{extra}")),
        receiver.url()
    );
    let node = ChildNode::start(&body)?;
    // Let the source start at the current head.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut mined: Vec<(String, Timestamp)> = Vec::new();
    let pb = progress(dur.as_secs(), "evm: one block per second");
    let started = Instant::now();
    while started.elapsed() < dur {
        anvil
            .call("eth_sendTransaction", json!([Anvil::spray(&contract, 1)]))
            .await?;
        anvil.call("evm_mine", json!([])).await?;
        let at = Timestamp::now();
        // The id of the block's one log (log index 0), as the source derives it.
        let block = anvil.call("eth_getBlockByNumber", json!(["latest", false])).await?;
        let hash: [u8; 32] = hex::decode(block["hash"].as_str().context("block hash")?.trim_start_matches("0x"))?
            .try_into()
            .map_err(|_| anyhow::anyhow!("a block hash of other than 32 bytes"))?;
        mined.push((tributary_sources::evm::event::log_id(31337, &hash, 0).to_string(), at));
        pb.set_position(started.elapsed().as_secs());
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    pb.finish_and_clear();
    let deadline = Instant::now() + Duration::from_secs(10);
    while arrivals.lock().expect("arrivals").len() < mined.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(node);
    let arrivals = arrivals.lock().expect("arrivals").clone();
    let mut lat: Vec<u64> = (mined.iter())
        .filter_map(|(id, at)| arrivals.get(id).map(|got| got.micros_since(*at)))
        .collect();
    if lat.len() < mined.len() {
        bail!("{} of {} blocks' logs reached the webhook", lat.len(), mined.len());
    }
    lat.sort_unstable();
    Ok((lat, mined.len(), heads))
}

/// How the latency run's source learns of new heads.
const HEADS: &str = "WebSocket newHeads subscription (polling every 1 s as the fallback)";

/// The reference: one plain POST per second to a receiver, round trip in microseconds, sorted.
async fn plain_round_trips(dur: Duration) -> anyhow::Result<Vec<u64>> {
    let receiver = Receiver::start(None, false).await?;
    receiver.respond_with(|_| Reply::ok());
    let http = client();
    let mut rt = Vec::new();
    let n = dur.as_secs().max(1) * 10;
    for i in 0..n {
        let at = Instant::now();
        http.post(receiver.url()).json(&json!({"n": i})).send().await?;
        rt.push(at.elapsed().as_micros() as u64);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rt.sort_unstable();
    Ok(rt)
}
