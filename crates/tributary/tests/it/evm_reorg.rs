//! Reorganisations on real dev nodes: anvil's `anvil_reorg`, and `evm_snapshot`/`evm_revert` on hardhat
//! and ganache. After each, the delivered logs minus the retracted ones equal `eth_getLogs` of the
//! canonical chain, every retraction names a delivered log and carries its data, and the source goes on
//! following the new chain.

use crate::evm_backfill::evm_source_of;
use crate::evm_peer::{ACCOUNT, Kind, Peer, all_events, assert_same, live_logs, same_logs};
use serde_json::{Value, json};
use std::time::Duration;
use tributary_testkit::{TestNode, wait_until};

const T: Duration = Duration::from_secs(120);

/// The node with one source over `peer`, once it delivered every Transfer log of `contract`.
async fn follow(peer: &Peer, contract: &str) -> TestNode {
    let config = evm_source_of(peer.chain_id(), "chain", &[&peer.url], contract, "reorg_depth = 16");
    let node = TestNode::start(crate::BIN, &config);
    caught_up(&node, peer, contract).await;
    node
}

/// Waits until the delivered view (logs minus retractions) equals the chain's Transfer logs.
async fn caught_up(node: &TestNode, peer: &Peer, contract: &str) {
    let ok = wait_until(T, || async {
        let chain = peer.transfer_logs(contract).await;
        same_logs(&live_logs(&all_events(node, "chain").await), &chain)
    })
    .await;
    let (events, chain) = (all_events(node, "chain").await, peer.transfer_logs(contract).await);
    assert!(
        ok,
        "the delivered logs did not reach the chain's: {} events, {} chain logs",
        events.len(),
        chain.len()
    );
    let chain = peer.transfer_logs(contract).await;
    assert_same(&live_logs(&all_events(node, "chain").await), &chain, peer.chain_id());
}

fn count(events: &[Value], kind: &str) -> usize {
    events.iter().filter(|e| e["kind"] == kind).count()
}

/// Every retraction retracts a delivered `evm.log` and repeats its data, key and position.
fn check_retractions(events: &[Value]) {
    let logs: std::collections::BTreeMap<&str, &Value> = events
        .iter()
        .filter(|e| e["kind"] == "evm.log")
        .map(|e| (e["id"].as_str().unwrap(), e))
        .collect();
    for r in events.iter().filter(|e| e["kind"] == "evm.log.removed") {
        let original = logs
            .get(r["retracts"].as_str().expect("retracts"))
            .unwrap_or_else(|| panic!("a retraction of no delivered log: {r}"));
        assert_eq!(r["data"], original["data"]);
        assert_eq!(r["key"], original["key"]);
        assert_eq!(r["position"], original["position"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anvil_reorg_retracts_the_dropped_logs_and_follows_the_new_chain() {
    let anvil = Peer::start(Kind::Anvil).await;
    let contract = anvil.deploy().await;
    for _ in 0..20 {
        anvil.spray(&contract, 10).await;
    }
    let node = follow(&anvil, &contract).await;
    assert_eq!(count(&all_events(&node, "chain").await, "evm.log"), 200);

    // Replace the last 5 blocks (50 logs) with 5 blocks holding two spray(3) transactions.
    let spray3 = json!({"from": ACCOUNT, "to": contract, "data": format!("0x8b78b1c9{:064x}", 3), "gas": "0xf42400"});
    anvil
        .rpc("anvil_reorg", json!([5, [[spray3.clone(), 0], [spray3, 3]]]))
        .await;
    caught_up(&node, &anvil, &contract).await;
    let events = all_events(&node, "chain").await;
    assert_eq!(
        count(&events, "evm.log.removed"),
        50,
        "the 5 dropped blocks held 50 logs"
    );
    assert_eq!(count(&events, "evm.log"), 206);
    check_retractions(&events);

    // The new chain is followed on.
    anvil.spray(&contract, 4).await;
    caught_up(&node, &anvil, &contract).await;
    // A second reorganisation, of one block that holds logs of the new chain.
    anvil.rpc("anvil_reorg", json!([1, []])).await;
    caught_up(&node, &anvil, &contract).await;
    let events = all_events(&node, "chain").await;
    assert_eq!(count(&events, "evm.log.removed"), 54);
    check_retractions(&events);
}

/// `evm_snapshot`, blocks the node delivers, `evm_revert`, then a longer chain of other blocks.
async fn snapshot_revert_case(kind: Kind) {
    let peer = Peer::start(kind).await;
    let contract = peer.deploy().await;
    for _ in 0..5 {
        peer.spray(&contract, 10).await;
    }
    let node = follow(&peer, &contract).await;
    let snapshot = peer.rpc("evm_snapshot", json!([])).await;
    for _ in 0..4 {
        peer.spray(&contract, 10).await;
    }
    caught_up(&node, &peer, &contract).await;
    assert_eq!(count(&all_events(&node, "chain").await, "evm.log"), 90);

    assert_eq!(peer.rpc("evm_revert", json!([snapshot])).await, json!(true));
    for _ in 0..6 {
        peer.spray(&contract, 2).await;
    }
    caught_up(&node, &peer, &contract).await;
    let events = all_events(&node, "chain").await;
    assert_eq!(
        count(&events, "evm.log.removed"),
        40,
        "{kind:?}: the 4 reverted blocks held 40 logs"
    );
    assert_eq!(count(&events, "evm.log"), 102);
    check_retractions(&events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardhat_snapshot_revert_retracts_the_reverted_logs() {
    snapshot_revert_case(Kind::Hardhat).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ganache_snapshot_revert_retracts_the_reverted_logs() {
    snapshot_revert_case(Kind::Ganache).await;
}
