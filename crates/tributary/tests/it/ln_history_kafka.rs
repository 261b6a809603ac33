//! ln-history on Kafka (issue 8, item 3): `config/ln-history.example.toml` on the running binary against
//! tansu. The repository's real mainnet gossip sample and the generated edge cases are imported; the
//! topics `gossip`, `problem.node` and `problem.channel` are read back with confluent-kafka and every
//! message is checked with PyPI's lnhistoryclient: ids equal `canonical_gossip_id`, types and timestamps as
//! ln-history's consumers read them.

use crate::BIN;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tributary_testkit::{Tansu, TestNode, kafka_read, python, wait_until};

const T: Duration = Duration::from_secs(90);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The example config without its `[node]` section, its brokers pointed at `brokers`.
fn example(brokers: &str) -> String {
    let text = std::fs::read_to_string(repo().join("config/ln-history.example.toml")).unwrap();
    let body = &text[text.find("[[sources]]").expect("the example has a source")..];
    assert_eq!(body.matches("brokers = \"127.0.0.1:9092\"").count(), 3);
    body.replace("brokers = \"127.0.0.1:9092\"", &format!("brokers = {brokers:?}"))
}

fn import(node: &TestNode, file: &str) -> Value {
    let out = Command::new(BIN)
        .args(["import", "--config"])
        .arg(node.config_path())
        .args(["--source", "gossip", "--json"])
        .arg(repo().join("fixtures/lightning").join(file))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

const CHECK: &str = r##"
import json, sys
from lnhistoryclient.framing import canonical_gossip_id, compute_gossip_id, strip_varint_prefix
from lnhistoryclient.parser.parser import parse_channel_update, parse_node_announcement
topics = json.load(open(sys.argv[1]))
kinds = {256: "ln.channel_announcement", 257: "ln.node_announcement", 258: "ln.channel_update",
         4101: "ln.channel_amount", 4106: "ln.channel_dying"}
for r in topics["gossip"]:
    d = json.loads(r["value"])
    assert set(d) == {"metadata", "raw_gossip_hex"}, d
    assert set(d["metadata"]) == {"type", "id", "timestamp"}, d
    raw = bytes.fromhex(d["raw_gossip_hex"])
    msg = strip_varint_prefix(raw)
    t = int.from_bytes(msg[:2], "big")
    # Every id is ln-history's: 4101 (channel_amount, whose id also hashes its announcement) is kept off
    # the topic by the example's filter.
    assert t != 4101, d
    assert canonical_gossip_id(msg) == d["metadata"]["id"], d
    assert compute_gossip_id(raw) == d["metadata"]["id"], d
    assert t == d["metadata"]["type"], d
    assert r["headers"]["tributary-kind"] == kinds[t], r
    assert isinstance(d["metadata"]["timestamp"], int) and d["metadata"]["timestamp"] > 1_500_000_000, d
    # parse_* take the body without its type (they mis-parse type-prefixed input).
    if t == 257:
        assert parse_node_announcement(msg[2:]).timestamp == d["metadata"]["timestamp"], d
    if t == 258:
        assert parse_channel_update(msg[2:]).timestamp == d["metadata"]["timestamp"], d
for topic in ("problem.node", "problem.channel"):
    for r in topics[topic]:
        d = json.loads(r["value"])
        assert d["type"] == "ln." + topic, d
        assert d["data"]["data"]["reason"] and bytes.fromhex(d["data"]["data"]["raw_hex"]), d
print(len(topics["gossip"]), len(topics["problem.node"]), len(topics["problem.channel"]))
"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ln_history_example_publishes_gossip_and_problems_as_ln_history_reads_them() {
    let broker = Tansu::start();
    let mut node = TestNode::start(BIN, &example(&broker.brokers));
    assert_eq!(node.terminate(), Some(0));
    let sample = import(&node, "cln_gossip_store_sample.hex");
    assert_eq!(sample["accepted"], 138, "{sample}");
    import(&node, "generated/valid.hex");
    let tampered = import(&node, "generated/tampered_signature.hex");
    assert_eq!(tampered["rejected"]["bad_signature"], 5, "{tampered}");
    import(&node, "generated/other_chain.hex");
    node.spawn();

    // What the node holds, by topic: every gossip event and every problem.
    let (_, page) = node.get("/v1/events?kind=ln.*&limit=1000").await;
    let mut want: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for e in page["events"].as_array().unwrap() {
        let topic = match e["kind"].as_str().unwrap() {
            "ln.problem.node" => "problem.node",
            "ln.problem.channel" => "problem.channel",
            "ln.channel_amount" => continue,
            _ => "gossip",
        };
        want.entry(topic)
            .or_default()
            .insert(e["id"].as_str().unwrap().to_owned());
    }
    assert!(want["gossip"].len() >= 100, "{want:?}");
    assert!(
        want.get("problem.node").map_or(0, BTreeSet::len) + want.get("problem.channel").map_or(0, BTreeSet::len) >= 5,
        "{want:?}"
    );
    let py = python();
    let mut got: BTreeMap<&str, Value> = BTreeMap::new();
    for topic in ["gossip", "problem.node", "problem.channel"] {
        let n = want.get(topic).map_or(0, BTreeSet::len);
        let mut last = Value::Null;
        if n > 0 {
            let arrived = wait_until(T, || {
                let r = kafka_read(&py, &broker.brokers, topic);
                let ok = r.as_ref().is_some_and(|v| v["records"].as_array().unwrap().len() >= n);
                last = r.unwrap_or(Value::Null);
                async move { ok }
            })
            .await;
            assert!(arrived, "topic {topic} holds the node's {n} events");
            let ids: BTreeSet<String> = last["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["headers"]["tributary-id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(ids, want[topic], "topic {topic} holds exactly the node's events");
        }
        got.insert(
            topic,
            last["records"]
                .as_array()
                .cloned()
                .map_or(Value::Array(vec![]), Value::Array),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("topics.json");
    std::fs::write(&file, serde_json::to_vec(&got).unwrap()).unwrap();
    let out = Command::new(&py).args(["-c", CHECK]).arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let counts = String::from_utf8_lossy(&out.stdout);
    let counts: Vec<usize> = counts.split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!(
        counts[0],
        want["gossip"].len(),
        "lnhistoryclient checked every gossip message: {counts:?}"
    );
}
