//! ABI decoding cross-checked with PyPI's eth-abi (`scripts/evm_abi_check.py`): every Transfer, Approval
//! and Note log of the test contract on anvil, decoded by the source into `event` and `args`, equals what
//! eth-abi decodes from the same topics and data (integers beyond 2^53 as decimal strings, a non-ASCII
//! string, addresses in lowercase hex).

use crate::evm_peer::{Kind, Peer, TRANSFER_ABI, all_events};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use tributary_testkit::{TestNode, wait_until};

const APPROVAL_ABI: &str = "event Approval(address indexed owner, address indexed spender, uint256 value)";
const NOTE_ABI: &str = "event Note(string text)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoded_args_equal_eth_abi_decoding() {
    let python = tributary_testkit::kafka::python();
    let anvil = Peer::start(Kind::Anvil).await;
    let contract = anvil.deploy().await;
    for _ in 0..3 {
        anvil.spray(&contract, 20).await;
        anvil.approve_all(&contract, 5).await;
        anvil.note(&contract).await;
    }
    let config = format!(
        "[[sources]]\nname = \"anvil\"\ntype = \"evm\"\nchain_id = 31337\nrpc = [\"{}\"]\nfrom_block = 0\n\
         addresses = [\"{contract}\"]\nabi = [\"{TRANSFER_ABI}\", \"{APPROVAL_ABI}\", \"{NOTE_ABI}\"]\n\
         allow_private_networks = true\npoll_interval_ms = 50\n",
        anvil.url
    );
    let node = TestNode::start(crate::BIN, &config);
    assert!(
        wait_until(Duration::from_secs(120), || async {
            all_events(&node, "anvil").await.len() == 78
        })
        .await
    );
    let data: Vec<Value> = all_events(&node, "anvil")
        .await
        .into_iter()
        .map(|e| e["data"].clone())
        .collect();
    assert!(data.iter().all(|d| d.get("args").is_some()), "every log decodes");
    let notes: Vec<&Value> = data.iter().filter(|d| d["event"] == "Note").collect();
    assert_eq!(notes.len(), 3);
    assert_eq!(notes[0]["args"]["text"], "tributary ✓ héllo");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/evm_abi_check.py");
    let mut child = Command::new(&python)
        .args([script, TRANSFER_ABI, APPROVAL_ABI, NOTE_ABI])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python} {script}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&serde_json::to_vec(&data).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed (is eth-abi in the venv? ./scripts/python-env.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checked"], 78, "{report}");
    assert_eq!(report["mismatches"], serde_json::json!([]), "{report}");
}
