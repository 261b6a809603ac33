//! The `lightning` source end to end on the real binary: `tributary import` of the bundled files, problems,
//! the graph API in time, following a `gossip_store` across a restart and a rewrite, the ZeroMQ plugin's
//! stream from two collectors (pyzmq PUB sockets), and the `platform_event` payload checked with
//! lnhistoryclient.

use crate::{BIN, SECRET};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tributary_sources::lightning::formats::crc32c;
use tributary_testkit::{ADMIN_KEY, Receiver, TestNode, wait_until};

const T: Duration = Duration::from_secs(30);
/// The generated out-of-order updates' base time.
const T0: u64 = 1_700_000_000;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    repo().join("fixtures/lightning").join(name)
}

fn python() -> PathBuf {
    repo().join(".venv/bin/python")
}

/// The messages of a hex fixture, without comments.
fn hex_msgs(name: &str) -> Vec<Vec<u8>> {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| hex::decode(l).unwrap())
        .collect()
}

/// One `gossip_store` record: flags, length, crc32c(timestamp, msg), timestamp, msg.
fn store_record(msg: &[u8], ts: u32) -> Vec<u8> {
    let mut r = Vec::with_capacity(12 + msg.len());
    r.extend_from_slice(&0u16.to_be_bytes());
    r.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    r.extend_from_slice(&crc32c(ts, msg).to_be_bytes());
    r.extend_from_slice(&ts.to_be_bytes());
    r.extend_from_slice(msg);
    r
}

fn source(extra: &str) -> String {
    format!("[[sources]]\nname = \"ln\"\ntype = \"lightning\"\npoll_interval_ms = 20\n{extra}\n")
}

/// `tributary import --json` against the node's config (the node must be stopped).
fn import(node: &TestNode, file: &Path, extra: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(["import", "--config"])
        .arg(node.config_path())
        .args(["--source", "ln", "--json"])
        .args(extra)
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `tributary import --json` sent to the running node at its URL (`key`: the admin's, or another).
fn import_to(node: &TestNode, key: &str, file: &Path, extra: &[&str]) -> (bool, Value) {
    let out = Command::new(BIN)
        .args(["import", "--url", &node.url, "--key", key, "--source", "ln", "--json"])
        .args(extra)
        .arg(file)
        .env_remove("TRIBUTARY_CONFIG")
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightning_import_to_the_running_node_over_the_api() {
    let node = TestNode::start(BIN, &source(""));
    let sample = fixture("cln_gossip_store_sample.hex");
    // The same summary as the import into a stopped node's store (the test above).
    let (ok, first) = import_to(&node, ADMIN_KEY, &sample, &[]);
    assert!(ok, "{first}");
    assert_eq!(first["format"], "hex", "{first}");
    assert_eq!(first["messages"], 139, "{first}");
    assert_eq!(first["accepted"], 138, "{first}");
    assert_eq!(first["rejected"]["unknown_channel"], 1, "{first}");
    let (ok, again) = import_to(&node, ADMIN_KEY, &sample, &["--collector", "collector-2"]);
    assert!(ok, "{again}");
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(138))
    );
    // The running node's graph has the imported channels at once.
    let (_, page) = node.get("/v1/events?kind=ln.channel_announcement&limit=1").await;
    let id = page["events"][0]["id"].as_str().unwrap().to_owned();
    let scid = page["events"][0]["key"].as_str().unwrap().to_owned();
    let (st, channel) = node.get(&format!("/v1/lightning/channels/{scid}")).await;
    assert_eq!(st, 200, "{channel}");
    let (_, seen) = node.get(&format!("/v1/events/{id}")).await;
    let observers: Vec<&str> = (seen["observations"].as_array().unwrap().iter())
        .filter_map(|o| o["observer"].as_str())
        .collect();
    assert_eq!(observers, ["collector-2", "ln"], "{seen}");

    // Refusals, each saying what to do.
    let (ok, e2) = {
        let out = Command::new(BIN)
            .args([
                "import", "--url", &node.url, "--key", ADMIN_KEY, "--source", "nope", "--json",
            ])
            .arg(&sample)
            .env_remove("TRIBUTARY_CONFIG")
            .output()
            .unwrap();
        (
            out.status.success(),
            serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        )
    };
    assert!(!ok);
    assert_eq!(e2["error"]["code"], "not_found", "{e2}");
    assert!(
        e2["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no lightning source named \"nope\""),
        "{e2}"
    );
    let junk = node.dir.path().join("junk.bin");
    std::fs::write(&junk, [0xffu8; 64]).unwrap();
    let (ok, e3) = import_to(&node, ADMIN_KEY, &junk, &[]);
    assert!(!ok);
    assert_eq!(e3["error"]["code"], "unknown_format", "{e3}");
    let (st, _) = crate::control::call(
        &node,
        "POST",
        "/v1/tenants",
        ADMIN_KEY,
        Some(serde_json::json!({"name": "acme"})),
    )
    .await;
    assert_eq!(st, 201);
    let (st, created) = crate::control::call(
        &node,
        "POST",
        "/v1/tenants/acme/keys",
        ADMIN_KEY,
        Some(serde_json::json!({})),
    )
    .await;
    assert_eq!(st, 201, "{created}");
    let (ok, e4) = import_to(&node, created["key"].as_str().unwrap(), &sample, &[]);
    assert!(!ok);
    assert_eq!(e4["error"]["code"], "forbidden", "{e4}");
    let (st, _) = node.get("/health").await;
    assert_eq!(st, 200);
}

async fn events(node: &TestNode, kind: &str) -> Vec<Value> {
    let (_, page) = node.get(&format!("/v1/events?kind={kind}&limit=1000")).await;
    page["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightning_import_dedup_collectors_problems_and_graph_in_time() {
    let mut node = TestNode::start(BIN, &source(""));
    // A running node holds the store: import says what to do.
    let out = Command::new(BIN)
        .args(["import", "--config"])
        .arg(node.config_path())
        .args(["--source", "ln"])
        .arg(fixture("cln_gossip_store_sample.hex"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("locked") && err.contains("tributary import --url") && err.contains("stop the node"),
        "{err}"
    );
    assert_eq!(node.terminate(), Some(0));

    let sample = fixture("cln_gossip_store_sample.hex");
    let first = import(&node, &sample, &[]);
    assert_eq!(first["messages"], 139);
    assert_eq!(first["accepted"], 138);
    assert_eq!(first["duplicates"], 0);
    assert_eq!(first["rejected"]["unknown_channel"], 1, "{first}");
    let two = import(&node, &fixture("channel_announcements_2.hex"), &[]);
    assert_eq!(two["accepted"], 2);
    let again = import(&node, &sample, &[]);
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(138))
    );
    let other = import(&node, &sample, &["--collector", "collector-2"]);
    assert_eq!(other["duplicates"], 138);
    let store = import(&node, &fixture("generated/valid.gossip_store"), &[]);
    assert_eq!(store["format"], "gossip_store");
    assert_eq!(
        (store["accepted"].as_u64(), store["deleted_records"].as_u64()),
        (Some(8), Some(1))
    );
    // Tampered updates are checked against the now known channel 800000x1x0.
    let tampered = import(&node, &fixture("generated/tampered_signature.hex"), &[]);
    assert_eq!(tampered["accepted"], 0);
    assert_eq!(tampered["rejected"]["bad_signature"], 5, "{tampered}");
    let chain = import(&node, &fixture("generated/other_chain.hex"), &[]);
    assert_eq!(chain["rejected"]["wrong_chain"], 2, "{chain}");
    let ooo = import(&node, &fixture("generated/out_of_order.hex"), &[]);
    assert_eq!(ooo["accepted"], 4);
    for f in ["valid.gsp", "valid.compact", "envelopes.hex"] {
        let r = import(&node, &fixture(&format!("generated/{f}")), &[]);
        assert_eq!(r["accepted"], 0, "{f}: every message was in valid.gossip_store: {r}");
        assert!(r["duplicates"].as_u64().unwrap() >= 6, "{f}: {r}");
    }

    node.spawn();
    // One event, several observations: the source name saw it twice, collector-2 once.
    let first_msg = &hex_msgs("cln_gossip_store_sample.hex")[0];
    let id = tributary_sources::lightning::gossip_id(first_msg).unwrap().to_hex();
    let (status, e) = node.get(&format!("/v1/events/{id}")).await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["kind"], "ln.channel_announcement");
    assert_eq!(e["key"], e["data"]["short_channel_id"]);
    assert_eq!(e["data"]["raw_hex"], hex::encode(first_msg));
    let obs = e["observations"].as_array().unwrap();
    let counts: Vec<(&str, u64)> = obs
        .iter()
        .map(|o| (o["observer"].as_str().unwrap(), o["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(counts, [("collector-2", 1), ("ln", 2)], "{e}");
    // Kinds: real ones, never ln.raw.
    for kind in ["ln.channel_update", "ln.node_announcement", "ln.channel_amount"] {
        assert!(!events(&node, kind).await.is_empty(), "{kind}");
    }
    let dying = events(&node, "ln.channel_dying").await;
    assert_eq!(dying.len(), 1);
    // Problems are events that subscriptions can route, and rejects with their stable reason code.
    let problems = events(&node, "ln.problem.*").await;
    assert_eq!(problems.len(), 1 + 5 + 2, "{problems:?}");
    assert!(problems.iter().any(|p| p["kind"] == "ln.problem.node"));
    assert!(
        problems
            .iter()
            .all(|p| p["data"]["raw_hex"].is_string() && p["data"]["collector"] == "ln")
    );
    let (_, listed) = node.get("/v1/lightning/problems?limit=100").await;
    let reasons: Vec<&str> = listed["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reason"].as_str().unwrap().split(':').next().unwrap())
        .collect();
    for code in ["bad_signature", "wrong_chain", "unknown_channel"] {
        assert!(reasons.contains(&code), "{code} in {reasons:?}");
    }

    let metrics = node
        .client()
        .get(format!("{}/metrics", node.url))
        .bearer_auth(tributary_testkit::ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"tributary_lightning_problems_total{source="ln",reason="bad_signature"} 5"#),
        "{metrics}"
    );

    // The graph in time: out_of_order.hex has updates at T0+3, T0+1, T0+2 (fee base 3, 1, 2).
    let (status, before) = node.get(&format!("/v1/lightning/channels/800000x3x0?at={T0}")).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["open"], false);
    for (at, fee, until) in [(T0 + 1, 1, Some(T0 + 2)), (T0 + 2, 2, Some(T0 + 3)), (T0 + 9, 3, None)] {
        let (_, c) = node.get(&format!("/v1/lightning/channels/800000x3x0?at={at}")).await;
        let d0 = &c["updates"][0];
        assert_eq!(d0["update"]["fee_base_msat"], fee, "at {at}: {c}");
        assert_eq!(d0["valid_from"], at.min(T0 + 3));
        assert_eq!(d0["valid_until"].as_u64(), until, "at {at}");
    }
    let (_, g) = node.get(&format!("/v1/lightning/graph?at={}", T0 + 2)).await;
    let ch = g["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["short_channel_id"] == "800000x3x0")
        .expect("the channel is open at T0+2");
    assert_eq!(ch["updates"][0]["update"]["fee_base_msat"], 2);
    assert_eq!((status, g["at"].as_u64()), (200, Some(T0 + 2)));
    // format=raw: concatenated canonical envelopes that parse back into the same messages.
    let raw = node
        .client()
        .get(format!("{}/v1/lightning/graph?at={}&format=raw", node.url, T0 + 2))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-type"], "application/octet-stream");
    let bytes = raw.bytes().await.unwrap();
    let (mut at, mut msgs) = (0usize, Vec::new());
    while at < bytes.len() {
        let (len, n) = tributary_sources::lightning::wire::read_compact_size(&bytes[at..], false).unwrap();
        let end = at + n + 2 + len as usize;
        msgs.push(tributary_sources::lightning::decode(&bytes[at + n..end]).expect("a message"));
        at = end;
    }
    let updates: usize = g["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["updates"].as_array().unwrap().iter().filter(|u| !u.is_null()).count())
        .sum();
    let expected = g["channels"].as_array().unwrap().len() + updates + g["nodes"].as_array().unwrap().len();
    assert_eq!(msgs.len(), expected);
    let (status, diff) = node.get(&format!("/v1/lightning/diff?from={T0}&to={}", T0 + 2)).await;
    assert_eq!(status, 200);
    assert!(
        diff["channels_opened"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "800000x3x0")
    );
    let (status, _) = node.get("/v1/lightning/channels/not-a-scid").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightning_gossip_store_follow_waits_restarts_and_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gossip_store");
    let valid = hex_msgs("generated/valid.hex");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&[0x0c]).unwrap();
    for m in &valid[..3] {
        f.write_all(&store_record(m, 1_700_000_000)).unwrap();
    }
    f.flush().unwrap();
    let mut node = TestNode::start(
        BIN,
        &source(&format!("gossip_store = {:?}", path.display().to_string())),
    );
    assert!(wait_until(T, || async { events(&node, "ln.*").await.len() == 3 }).await);
    for m in &valid[3..] {
        f.write_all(&store_record(m, 1_700_000_001)).unwrap();
    }
    f.flush().unwrap();
    assert!(wait_until(T, || async { events(&node, "ln.*").await.len() == 6 }).await);
    // Restart: nothing is read twice.
    assert_eq!(node.terminate(), Some(0));
    node.spawn();
    // Updates before their announcement wait, and are verified once it arrives.
    let ooo = hex_msgs("generated/out_of_order.hex");
    let (_, sources) = node.get("/v1/sources/ln").await;
    for m in &ooo[1..] {
        f.write_all(&store_record(m, 1_700_000_002)).unwrap();
    }
    f.flush().unwrap();
    assert!(
        wait_until(T, || async {
            let (_, s) = node.get("/v1/sources/ln").await;
            s["checkpoints"][0]["position"] != sources["checkpoints"][0]["position"]
        })
        .await,
        "the updates were read"
    );
    assert_eq!(
        events(&node, "ln.channel_update").await.len(),
        3,
        "they wait for their announcement"
    );
    f.write_all(&store_record(&ooo[0], 1_700_000_003)).unwrap();
    f.flush().unwrap();
    assert!(wait_until(T, || async { events(&node, "ln.*").await.len() == 10 }).await);
    assert!(events(&node, "ln.problem.*").await.is_empty());
    for e in events(&node, "ln.*").await {
        let (_, full) = node.get(&format!("/v1/events/{}", e["id"].as_str().unwrap())).await;
        assert_eq!(full["observations"][0]["count"], 1, "event re-ingested: {full}");
    }
    // Rewrite: a new store renamed over the path, then gossip_store_ended appended to the old one.
    let new_path = dir.path().join("gossip_store.tmp");
    let mut g = std::fs::File::create(&new_path).unwrap();
    g.write_all(&[0x0c]).unwrap();
    for m in valid.iter().chain(&hex_msgs("channel_announcements_2.hex")) {
        g.write_all(&store_record(m, 1_700_000_010)).unwrap();
    }
    g.flush().unwrap();
    std::fs::rename(&new_path, &path).unwrap();
    let mut ended = vec![0x10, 0x05];
    ended.extend_from_slice(&0u64.to_be_bytes());
    f.write_all(&store_record(&ended, 1_700_000_011)).unwrap();
    f.flush().unwrap();
    assert!(
        wait_until(T, || async {
            events(&node, "ln.channel_announcement").await.len() == 4
        })
        .await,
        "the rewritten store is read from its start"
    );
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    let (_, s) = node.get("/v1/sources/ln").await;
    let position = s["checkpoints"][0]["position"].as_str().unwrap().to_owned();
    assert_eq!(position, format!("{}:{inode}", std::fs::metadata(&path).unwrap().len()));
}

const PUBLISHER: &str = r##"
import json, sys, zmq
port, sender, path = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = zmq.Context()
s = ctx.socket(zmq.XPUB)
s.bind("tcp://127.0.0.1:" + port)
print("bound", flush=True)
s.recv()  # the subscription: tributary is connected
names = {256: "channel_announcement", 257: "node_announcement", 258: "channel_update"}
for i, line in enumerate(l.strip() for l in open(path)):
    if not line or line.startswith("#"):
        continue
    m = bytes.fromhex(line)
    t = int.from_bytes(m[:2], "big")
    event = {"metadata": {"type": t, "name": names.get(t, "unknown"), "timestamp": 1700000000 + i,
                          "sender_node_id": sender, "length": len(m) - 2},
             "raw_hex": line, "parsed": {}}
    s.send_multipart([names.get(t, "unknown").encode(), json.dumps(event).encode()])
sys.stdin.read()
"##;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightning_zmq_collectors_reconnect_and_record_who_saw_what() {
    let ports = [free_port(), free_port()];
    let collectors = format!(
        "collectors = [\"tcp://127.0.0.1:{}\", \"tcp://127.0.0.1:{}\"]",
        ports[0], ports[1]
    );
    // The node starts first: both collectors are down and are retried with backoff.
    let node = TestNode::start(BIN, &source(&collectors));
    let mut pubs = Vec::new();
    for (port, sender) in ports.iter().zip(["02aaaa", "03bbbb"]) {
        let mut child = Command::new(python())
            .args(["-c", PUBLISHER, &port.to_string(), sender])
            .arg(fixture("generated/valid.hex"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run the venv's python with pyzmq (./scripts/python-env.sh)");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.as_mut().unwrap()), &mut line).unwrap();
        assert_eq!(line.trim(), "bound");
        pubs.push(child);
    }
    assert!(wait_until(T, || async { events(&node, "ln.*").await.len() == 6 }).await);
    let both = wait_until(T, || async {
        let mut all = true;
        for e in events(&node, "ln.*").await {
            let (_, full) = node.get(&format!("/v1/events/{}", e["id"].as_str().unwrap())).await;
            all &= full["observations"].as_array().map_or(0, Vec::len) == 2;
        }
        all
    })
    .await;
    assert!(both, "every message: one event, an observation per collector");
    let (_, e) = node.get("/v1/events?kind=ln.channel_announcement").await;
    let id = e["events"][0]["id"].as_str().unwrap().to_owned();
    let (_, full) = node.get(&format!("/v1/events/{id}")).await;
    let observers: Vec<&str> = full["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["observer"].as_str().unwrap())
        .collect();
    assert_eq!(observers, ["02aaaa", "03bbbb"]);
    // A collector restarts: the subscription reconnects to the new publisher on the same port.
    let _ = pubs[0].kill();
    let _ = pubs[0].wait();
    let mut again = Command::new(python())
        .args(["-c", PUBLISHER, &ports[0].to_string(), "02aaaa"])
        .arg(fixture("generated/out_of_order.hex"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(again.stdout.as_mut().unwrap()), &mut line).unwrap();
    assert!(
        wait_until(T, || async { events(&node, "ln.*").await.len() == 10 }).await,
        "the restarted collector's messages arrive"
    );
    pubs[0] = again;
    for mut p in pubs {
        let _ = p.kill();
        let _ = p.wait();
    }
}

const CHECK_PLATFORM_EVENTS: &str = r##"
import json, sys
from lnhistoryclient.framing import compute_gossip_id, strip_varint_prefix
n = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    assert set(d) == {"metadata", "raw_gossip_hex"}, d
    assert set(d["metadata"]) == {"type", "id", "timestamp"}, d
    raw = bytes.fromhex(d["raw_gossip_hex"])
    assert compute_gossip_id(raw) == d["metadata"]["id"], d
    msg = strip_varint_prefix(raw)
    assert int.from_bytes(msg[:2], "big") == d["metadata"]["type"], d
    assert isinstance(d["metadata"]["timestamp"], int)
    n += 1
print(n)
"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightning_platform_event_payload_reads_as_ln_history_expects() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gossip_store");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&[0x0c]).unwrap();
    for m in hex_msgs("generated/valid.hex") {
        f.write_all(&store_record(&m, 1_700_000_000)).unwrap();
    }
    f.flush().unwrap();
    let config = format!(
        "{}\n[[subscriptions]]\nname = \"ln-history\"\nfilter = {{ kinds = [\"ln.*\"] }}\n{}payload = \"platform_event\"\n",
        source(&format!("gossip_store = {:?}", path.display().to_string())),
        tributary_testkit::webhook_sink(&rx.url(), SECRET)
    );
    let _node = TestNode::start(BIN, &config);
    assert!(rx.wait_for(T, |r| r.len() >= 6).await);
    let lines: String = rx
        .received()
        .iter()
        .map(|r| r.body.as_ref().unwrap().to_string() + "\n")
        .collect();
    let bodies = dir.path().join("bodies.jsonl");
    std::fs::write(&bodies, lines).unwrap();
    let out = Command::new(python())
        .args(["-c", CHECK_PLATFORM_EVENTS])
        .arg(&bodies)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6");
    assert_eq!(rx.failed(), 0);
}
