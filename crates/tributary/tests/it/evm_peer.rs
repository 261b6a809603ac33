//! EVM test peers: anvil (Foundry), hardhat and ganache from npm, installed by `./scripts/peers.sh evm`
//! into `~/.cache/tributary/npm` (or `TRIBUTARY_NPM_DIR`), started on free loopback ports and killed when
//! dropped; a small JSON-RPC client; and the test contract `Spray` (evm_contract/Spray.sol, compiled with
//! npm solc 0.8.37 into evm_contract/Spray.bin).

use serde_json::{Value, json};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The deployer: the first account of the mnemonic anvil and hardhat use (ganache is started with it).
pub const ACCOUNT: &str = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
/// topic 0 of `Transfer(address,address,uint256)`.
pub const TRANSFER: &str = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
/// The ABI entry of Transfer.
pub const TRANSFER_ABI: &str = "event Transfer(address indexed from, address indexed to, uint256 value)";
const BYTECODE: &str = include_str!("evm_contract/Spray.bin");

/// The npm cache directory the peers are installed in.
pub fn npm_dir() -> PathBuf {
    std::env::var_os("TRIBUTARY_NPM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/tributary/npm"))
}

/// Makes sure the npm peers are installed (runs `./scripts/peers.sh evm` when one is missing).
fn ensure_installed(path: &std::path::Path) {
    if path.exists() {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/peers.sh");
    let status = Command::new("bash")
        .args([script, "evm"])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {script} evm: {e}"));
    assert!(
        status.success() && path.exists(),
        "{} is missing and `./scripts/peers.sh evm` did not install it (npm reachable?)",
        path.display()
    );
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Which node implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Foundry's anvil.
    Anvil,
    /// Hardhat network.
    Hardhat,
    /// Ganache.
    Ganache,
}

/// A running dev node.
pub struct Peer {
    child: Option<Child>,
    kind: Kind,
    /// The port it listens on.
    pub port: u16,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    client: reqwest::Client,
}

impl Peer {
    /// Starts a node of `kind` on a free port and waits until it answers `eth_chainId`.
    pub async fn start(kind: Kind) -> Self {
        Self::start_on(kind, free_port()).await
    }

    /// Starts a node of `kind` on `port`.
    pub async fn start_on(kind: Kind, port: u16) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = npm_dir();
        let p = port.to_string();
        let mut cmd = match kind {
            Kind::Anvil => {
                let bin = dir.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
                ensure_installed(&bin);
                let mut c = Command::new(bin);
                c.args(["--host", "127.0.0.1", "--port", &p, "--silent"]);
                c
            }
            Kind::Hardhat => {
                let bin = dir.join("node_modules/.bin/hardhat");
                ensure_installed(&bin);
                // peers.sh makes the directory a Hardhat project (`hardhat node` refuses to run elsewhere).
                ensure_installed(&dir.join("hardhat.config.js"));
                let mut c = Command::new(bin);
                c.args(["node", "--hostname", "127.0.0.1", "--port", &p])
                    .current_dir(&dir);
                c
            }
            Kind::Ganache => {
                let bin = dir.join("node_modules/.bin/ganache");
                ensure_installed(&bin);
                let mut c = Command::new(bin);
                c.args([
                    "--server.host",
                    "127.0.0.1",
                    "--server.port",
                    &p,
                    // The mnemonic of anvil's and hardhat's accounts: the same ACCOUNT everywhere.
                    "--wallet.mnemonic",
                    "test test test test test test test test test test test junk",
                    "--miner.blockGasLimit",
                    "30000000",
                    "--quiet",
                ]);
                c
            }
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {kind:?}: {e}"));
        let mut peer = Self {
            child: Some(child),
            kind,
            port,
            url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if peer.try_rpc("eth_chainId", json!([])).await.is_ok() {
                break;
            }
            if let Some(Ok(Some(status))) = peer.child.as_mut().map(|c| c.try_wait()) {
                panic!("{kind:?} exited at start ({status}); run it by hand to see why");
            }
            assert!(
                Instant::now() < deadline,
                "{kind:?} did not answer on {} within 60 s",
                peer.url
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        peer
    }

    /// Kills the node now (its chain is lost).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The chain id it serves (anvil and hardhat 31337, ganache 1337).
    pub fn chain_id(&self) -> u64 {
        match self.kind {
            Kind::Anvil | Kind::Hardhat => 31337,
            Kind::Ganache => 1337,
        }
    }

    async fn try_rpc(&self, method: &str, params: Value) -> Result<Value, String> {
        let answer: Value = self
            .client
            .post(&self.url)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        match answer.get("error") {
            Some(e) => Err(format!("{method}: {e}")),
            None => Ok(answer["result"].clone()),
        }
    }

    /// A JSON-RPC call; panics on an error answer.
    pub async fn rpc(&self, method: &str, params: Value) -> Value {
        self.try_rpc(method, params).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Sends a transaction from [`ACCOUNT`] and waits for its receipt (polled, with a deadline).
    pub async fn transact(&self, to: Option<&str>, data: &str) -> Value {
        let mut tx = json!({"from": ACCOUNT, "data": data, "gas": "0xf42400"});
        if let Some(to) = to {
            tx["to"] = json!(to);
        }
        let hash = self.rpc("eth_sendTransaction", json!([tx])).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.rpc("eth_getTransactionReceipt", json!([hash])).await;
            if !r.is_null() {
                assert_eq!(r["status"], "0x1", "transaction failed: {r}");
                return r;
            }
            assert!(Instant::now() < deadline, "no receipt for {hash} within 60 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Deploys `Spray`; its address.
    pub async fn deploy(&self) -> String {
        let r = self.transact(None, &format!("0x{}", BYTECODE.trim())).await;
        r["contractAddress"].as_str().expect("contractAddress").to_owned()
    }

    /// `spray(n)`: n Transfer logs in one transaction.
    pub async fn spray(&self, contract: &str, n: u64) -> Value {
        self.transact(Some(contract), &format!("0x8b78b1c9{n:064x}")).await
    }

    /// `approveAll(n)`: n Approval logs (not Transfer).
    pub async fn approve_all(&self, contract: &str, n: u64) -> Value {
        self.transact(Some(contract), &format!("0xb7511c5b{n:064x}")).await
    }

    /// `odd()`: a log with Transfer's topic 0 whose data does not decode.
    pub async fn odd(&self, contract: &str) -> Value {
        self.transact(Some(contract), "0xc12363a2").await
    }

    /// `note("tributary ✓ héllo")`: a Note log with a non-ASCII string.
    pub async fn note(&self, contract: &str) -> Value {
        let text = "0000000000000000000000000000000000000000000000000000000000000020\
            0000000000000000000000000000000000000000000000000000000000000014\
            74726962757461727920e29c932068c3a96c6c6f000000000000000000000000";
        self.transact(Some(contract), &format!("0x1b352c43{text}")).await
    }

    /// Mines `n` empty blocks (each node has its own method).
    pub async fn mine(&self, n: u64) {
        match self.kind {
            Kind::Anvil => self.rpc("anvil_mine", json!([format!("0x{n:x}")])).await,
            // Not `hardhat_mine`: its blocks have a zero parent hash, a chain that does not link up.
            Kind::Hardhat => {
                for _ in 0..n {
                    self.rpc("evm_mine", json!([])).await;
                }
                Value::Null
            }
            Kind::Ganache => self.rpc("evm_mine", json!([{"blocks": n}])).await,
        };
    }

    /// The head's number.
    pub async fn head(&self) -> u64 {
        hex_u64(&self.rpc("eth_blockNumber", json!([])).await)
    }

    /// Every log of `contract` with topic 0 Transfer on the canonical chain.
    pub async fn transfer_logs(&self, contract: &str) -> Vec<Value> {
        let logs = self
            .rpc(
                "eth_getLogs",
                json!([{"fromBlock": "0x0", "toBlock": "latest", "address": contract, "topics": [TRANSFER]}]),
            )
            .await;
        logs.as_array().expect("logs").clone()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A hex quantity.
pub fn hex_u64(v: &Value) -> u64 {
    u64::from_str_radix(v.as_str().expect("hex").trim_start_matches("0x"), 16).expect("hex")
}

/// Every stored event of `source` (paged through `/v1/events`).
pub async fn all_events(node: &tributary_testkit::TestNode, source: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0u64;
    loop {
        let (status, page) = node
            .get(&format!("/v1/events?after={after}&limit=1000&source={source}"))
            .await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().expect("events").clone();
        let next = page["next_after"].as_u64().expect("next_after");
        out.extend(events);
        if next == after || next >= page["last_seq"].as_u64().unwrap_or(0) {
            return out;
        }
        after = next;
    }
}

/// The canonical view of delivered events: logs minus retracted ones, as `(block_hash, log_index) ->
/// data`.
pub fn live_logs(events: &[Value]) -> std::collections::BTreeMap<(String, u64), Value> {
    let mut live = std::collections::BTreeMap::new();
    let mut ids = std::collections::BTreeMap::new();
    for e in events {
        let d = &e["data"];
        let k = (
            d["block_hash"].as_str().unwrap().to_owned(),
            d["log_index"].as_u64().unwrap(),
        );
        match e["kind"].as_str().unwrap() {
            "evm.log" => {
                ids.insert(e["id"].as_str().unwrap().to_owned(), k.clone());
                assert!(live.insert(k, d.clone()).is_none(), "a log delivered twice: {e}");
            }
            "evm.log.removed" => {
                let original = e["retracts"].as_str().expect("retracts");
                let k = ids
                    .get(original)
                    .unwrap_or_else(|| panic!("retraction of an unknown event: {e}"));
                let was = live.remove(k).unwrap_or_else(|| panic!("retracted twice: {e}"));
                assert_eq!(&was, d, "a retraction carries the original's data");
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    live
}

/// The same view of a provider's `eth_getLogs` answer.
pub fn canonical(logs: &[Value]) -> std::collections::BTreeMap<(String, u64), Value> {
    logs.iter()
        .map(|l| {
            (
                (l["blockHash"].as_str().unwrap().to_owned(), hex_u64(&l["logIndex"])),
                l.clone(),
            )
        })
        .collect()
}

/// Whether the delivered view holds exactly the chain's logs (by block hash and log index).
pub fn same_logs(delivered: &std::collections::BTreeMap<(String, u64), Value>, chain: &[Value]) -> bool {
    let chain = canonical(chain);
    chain.len() == delivered.len() && chain.keys().all(|k| delivered.contains_key(k))
}

/// Asserts that the delivered view equals the chain's logs, field by field.
pub fn assert_same(delivered: &std::collections::BTreeMap<(String, u64), Value>, chain: &[Value], chain_id: u64) {
    let chain = canonical(chain);
    let missing: Vec<_> = chain.keys().filter(|k| !delivered.contains_key(*k)).take(5).collect();
    let extra: Vec<_> = delivered.keys().filter(|k| !chain.contains_key(*k)).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "delivered {} logs, chain has {}; missing {missing:?}, extra {extra:?}",
        delivered.len(),
        chain.len()
    );
    for (k, l) in &chain {
        let d = &delivered[k];
        assert_eq!(d["chain_id"], chain_id);
        assert_eq!(d["block_number"], hex_u64(&l["blockNumber"]));
        assert_eq!(d["transaction_hash"], l["transactionHash"]);
        assert_eq!(d["transaction_index"], hex_u64(&l["transactionIndex"]));
        assert_eq!(d["address"], l["address"].as_str().unwrap().to_ascii_lowercase());
        assert_eq!(d["topics"], l["topics"]);
        assert_eq!(d["data"], l["data"]);
    }
}
