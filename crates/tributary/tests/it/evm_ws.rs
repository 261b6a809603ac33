//! WebSocket providers: heads by `eth_subscribe newHeads` on anvil, hardhat and ganache (the source polls
//! only every 10 minutes, so every live log it delivers came by the subscription), and a connection cut
//! and restored: the follower reconnects, subscribes again and fills the gap from its checkpoint.

use crate::evm_backfill::evm_source_of;
use crate::evm_peer::{Kind, Peer, all_events, assert_same, live_logs};
use crate::evm_providers::Proxy;
use std::time::Duration;
use tributary_testkit::{TestNode, wait_until};

const T: Duration = Duration::from_secs(120);
/// Polling far slower than the test: only the subscription moves the source along.
const NO_POLLING: &str = "poll_interval_ms = 600000\nreorg_depth = 8";

/// The tests' source of `contract` through `rpc`, polling only every 10 minutes.
fn ws_source(chain_id: u64, rpc: &str, contract: &str) -> String {
    evm_source_of(chain_id, "chain", &[rpc], contract, NO_POLLING).replace("poll_interval_ms = 50\n", "")
}

async fn heads_by_subscription(kind: Kind) {
    let peer = Peer::start(kind).await;
    let chain_id = peer.chain_id();
    let contract = peer.deploy().await;
    for _ in 0..3 {
        peer.spray(&contract, 10).await;
    }
    let ws = format!("ws://127.0.0.1:{}", peer.port);
    let node = TestNode::start(crate::BIN, &ws_source(chain_id, &ws, &contract));
    assert!(wait_until(T, || async { all_events(&node, "chain").await.len() == 30 }).await);
    let view = node.get("/v1/sources/chain").await.1;
    assert_eq!(view["parts"][ws.as_str()]["heads"], "subscription", "{view}");
    // New blocks after the source caught up: each head wakes it.
    for _ in 0..4 {
        peer.spray(&contract, 5).await;
    }
    let chain = peer.transfer_logs(&contract).await;
    assert_eq!(chain.len(), 50);
    let live = wait_until(T, || async { all_events(&node, "chain").await.len() == chain.len() }).await;
    assert!(
        live,
        "{kind:?}: new heads did not reach the source over the subscription"
    );
    assert_same(&live_logs(&all_events(&node, "chain").await), &chain, chain_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anvil_heads_arrive_by_subscription() {
    heads_by_subscription(Kind::Anvil).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hardhat_heads_arrive_by_subscription() {
    heads_by_subscription(Kind::Hardhat).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ganache_heads_arrive_by_subscription() {
    heads_by_subscription(Kind::Ganache).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_is_reopened_and_the_gap_filled() {
    let anvil = Peer::start(Kind::Anvil).await;
    let contract = anvil.deploy().await;
    anvil.spray(&contract, 10).await;
    let mut proxy = Proxy::start(anvil.port).await;
    let ws = format!("ws://127.0.0.1:{}", proxy.port);
    let node = TestNode::start(crate::BIN, &ws_source(31337, &ws, &contract));
    assert!(wait_until(T, || async { all_events(&node, "chain").await.len() == 10 }).await);

    // The connection is cut and blocks are made while it is down.
    proxy.down().await;
    for _ in 0..5 {
        anvil.spray(&contract, 10).await;
    }
    let failing = wait_until(T, || async {
        node.get("/v1/sources/chain").await.1["parts"][ws.as_str()]["errors"].as_u64() >= Some(1)
    })
    .await;
    assert!(failing, "{}", node.get("/v1/sources/chain").await.1);

    // Back up: the follower reconnects on its own (no head could wake it while down), subscribes again,
    // reads the blocks it missed, and follows new heads.
    proxy.up().await;
    let chain = anvil.transfer_logs(&contract).await;
    assert!(wait_until(T, || async { all_events(&node, "chain").await.len() == chain.len() }).await);
    anvil.spray(&contract, 10).await;
    let chain = anvil.transfer_logs(&contract).await;
    assert!(wait_until(T, || async { all_events(&node, "chain").await.len() == chain.len() }).await);
    assert_same(&live_logs(&all_events(&node, "chain").await), &chain, 31337);
    let view = node.get("/v1/sources/chain").await.1;
    assert_eq!(view["parts"][ws.as_str()]["state"], "following", "{view}");
    assert_eq!(view["parts"][ws.as_str()]["heads"], "subscription", "{view}");
}
