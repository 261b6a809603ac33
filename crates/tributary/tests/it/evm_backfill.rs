//! The evm source on anvil, hardhat and ganache: backfill from block 0 of thousands of Transfer logs over many ranges (deep
//! blocks by `eth_getLogs` ranges, the window block by block), SIGKILL during the backfill, restart
//! without gaps or duplicates, live following, and the event shape.

use crate::evm_peer::{Kind, Peer, TRANSFER, TRANSFER_ABI, all_events, assert_same, live_logs};
use std::time::Duration;
use tributary_testkit::{TestNode, wait_until};

const T: Duration = Duration::from_secs(120);
/// anvil's chain id.
pub const ANVIL_CHAIN: u64 = 31337;

pub fn evm_source(name: &str, rpc: &[&str], contract: &str, extra: &str) -> String {
    evm_source_of(ANVIL_CHAIN, name, rpc, contract, extra)
}

/// An `evm` source of chain `chain_id` following the Transfer logs of `contract` from block 0.
pub fn evm_source_of(chain_id: u64, name: &str, rpc: &[&str], contract: &str, extra: &str) -> String {
    let rpc: Vec<String> = rpc.iter().map(|u| format!("{u:?}")).collect();
    format!(
        "[[sources]]\nname = \"{name}\"\ntype = \"evm\"\nchain_id = {chain_id}\nrpc = [{}]\nfrom_block = 0\naddresses = [\"{contract}\"]\ntopics = [[\"{TRANSFER}\"]]\nabi = [\"{TRANSFER_ABI}\"]\nallow_private_networks = true\npoll_interval_ms = 50\n{extra}\n",
        rpc.join(", ")
    )
}

async fn backfill_case(kind: Kind) {
    let anvil = Peer::start(kind).await;
    let chain_id = anvil.chain_id();
    let contract = anvil.deploy().await;
    // 40 blocks of 100 Transfer logs, Approval logs the filter leaves out, then 300 empty blocks (so these
    // are read as deep ranges), then 10 more blocks of Transfers inside the window.
    for i in 0..40 {
        anvil.spray(&contract, 100).await;
        if i % 10 == 0 {
            anvil.approve_all(&contract, 3).await;
        }
    }
    anvil.mine(300).await;
    for _ in 0..10 {
        anvil.spray(&contract, 20).await;
    }
    let chain = anvil.transfer_logs(&contract).await;
    assert_eq!(chain.len(), 4200);
    let config = evm_source_of(
        chain_id,
        "anvil",
        &[&anvil.url],
        &contract,
        "max_block_range = 7\nreorg_depth = 16",
    );
    let mut node = TestNode::start(crate::BIN, &config);
    // SIGKILL as soon as the backfill has stored something.
    assert!(wait_until(T, || async { !all_events(&node, "anvil").await.is_empty() }).await);
    node.kill();
    node.spawn();
    assert!(
        wait_until(T, || async { all_events(&node, "anvil").await.len() >= chain.len() }).await,
        "backfill did not finish"
    );
    let events = all_events(&node, "anvil").await;
    assert_same(&live_logs(&events), &chain, chain_id);
    // Each log was appended once: one observation, seen once (a re-read after the kill would count 2).
    for e in events.iter().step_by(7) {
        let (_, full) = node.get(&format!("/v1/events/{}", e["id"].as_str().unwrap())).await;
        let obs = full["observations"].as_array().unwrap();
        assert_eq!(obs.len(), 1, "{full}");
        assert_eq!(obs[0]["observer"], anvil.url);
        assert_eq!(obs[0]["count"], 1, "log appended twice: {full}");
    }
    // The event shape.
    let first = &events[0];
    assert_eq!(first["kind"], "evm.log");
    assert_eq!(first["key"], contract.to_ascii_lowercase());
    let d = &first["data"];
    assert_eq!(first["position"], format!("{}:{}", d["block_number"], d["log_index"]));
    assert_eq!(d["event"], "Transfer");
    assert_eq!(d["args"]["from"], crate::evm_peer::ACCOUNT);
    // (i + 1) * 1e18 + block number: beyond 2^53, a decimal string.
    assert_eq!(
        d["args"]["value"],
        format!(
            "{}",
            1_000_000_000_000_000_000u128 + d["block_number"].as_u64().unwrap() as u128
        )
    );
    // Restart, then live: new blocks are followed, nothing is read twice.
    assert_eq!(node.terminate(), Some(0));
    node.spawn();
    for _ in 0..5 {
        anvil.spray(&contract, 10).await;
    }
    let chain = anvil.transfer_logs(&contract).await;
    assert!(wait_until(T, || async { all_events(&node, "anvil").await.len() >= chain.len() }).await);
    let events = all_events(&node, "anvil").await;
    assert_eq!(events.len(), chain.len());
    assert_same(&live_logs(&events), &chain, chain_id);
    let (_, sources) = node.get("/v1/sources").await;
    let position = sources["sources"][0]["checkpoints"][0]["position"].as_str().unwrap();
    let cp: serde_json::Value = serde_json::from_str(position).unwrap();
    assert_eq!(cp["next"], anvil.head().await + 1, "{sources}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_sigkill_restart_and_live_on_anvil() {
    backfill_case(Kind::Anvil).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_sigkill_restart_and_live_on_hardhat() {
    backfill_case(Kind::Hardhat).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_sigkill_restart_and_live_on_ganache() {
    backfill_case(Kind::Ganache).await;
}
