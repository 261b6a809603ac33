//! Abuse regression tests (issue 7) for the Lightning and file sources, on the running binary: the graph
//! respects source sharing (item 10); the file source caps lines and events and never re-reads a partial
//! line (item 11); every framing but gossip_store refuses messages over BOLT #1's 65,535 bytes without
//! reading them, ZeroMQ included, and a problem keeps one copy of its message (item 12). Restarts (item 14)
//! are in `abuse_lightning_restart`. Each probe checks the node stays up, memory stays bounded and
//! restarts.

use crate::BIN;
use crate::control::{call, tenant_key};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tributary_sources::lightning::formats::crc32c;
use tributary_testkit::{ADMIN_KEY, TestNode, wait_until};

const T: Duration = Duration::from_secs(30);

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/lightning")
        .join(name)
}

pub(crate) fn hex_msgs(name: &str) -> Vec<Vec<u8>> {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| hex::decode(l).unwrap())
        .collect()
}

pub(crate) fn store_record(msg: &[u8], ts: u32) -> Vec<u8> {
    let mut r = Vec::with_capacity(12 + msg.len());
    r.extend_from_slice(&0u16.to_be_bytes());
    r.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    r.extend_from_slice(&crc32c(ts, msg).to_be_bytes());
    r.extend_from_slice(&ts.to_be_bytes());
    r.extend_from_slice(msg);
    r
}

pub(crate) fn import(node: &TestNode, source: &str, file: &Path) -> Value {
    let out = Command::new(BIN)
        .args(["import", "--config"])
        .arg(node.config_path())
        .args(["--source", source, "--json"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The node's process, found by its config path on its command line.
fn pid_of(node: &TestNode) -> u32 {
    let needle = node.config_path().display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.contains(&&b"run"[..]) && args.contains(&needle.as_bytes()) {
            return pid;
        }
    }
    panic!("no tributary process runs {needle}");
}

/// A field of `/proc/{pid}/status` in KiB (VmHWM: peak resident memory).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Bytes the process read through read(2) and friends (`rchar` of `/proc/{pid}/io`).
fn rchar(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .unwrap()
        .parse()
        .unwrap()
}

pub(crate) async fn count(node: &TestNode, query: &str) -> usize {
    node.get(&format!("/v1/events?limit=1000&{query}")).await.1["events"]
        .as_array()
        .map_or(0, Vec::len)
}

pub(crate) async fn health_ok(node: &TestNode) -> bool {
    node.client()
        .get(format!("{}/health", node.url))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

fn scids(graph: &Value) -> Vec<String> {
    graph["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["short_channel_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Item 10: a tenant that sees one lightning source gets the graph, channels, nodes, diff and problems
/// of that source only; the admin gets them combined or names a source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_lightning_graph_respects_source_sharing() {
    let config = "[[sources]]\nname = \"ln-a\"\ntype = \"lightning\"\ntenants = [\"alpha\"]\n\n\
                  [[sources]]\nname = \"ln-b\"\ntype = \"lightning\"\ntenants = [\"beta\"]\n";
    let mut node = TestNode::start(BIN, config);
    // (SIGTERM right after the listening line can come before the node listens for it.)
    assert!(health_ok(&node).await);
    assert_eq!(node.terminate(), Some(0));
    // ln-a: channel 800000x1x0 and its nodes, then updates with bad signatures; ln-b: 800000x3x0, and
    // gossip of another chain.
    assert_eq!(import(&node, "ln-a", &fixture("generated/valid.hex"))["accepted"], 6);
    let tampered = import(&node, "ln-a", &fixture("generated/tampered_signature.hex"));
    assert_eq!(tampered["rejected"]["bad_signature"], 5, "{tampered}");
    assert_eq!(
        import(&node, "ln-b", &fixture("generated/out_of_order.hex"))["accepted"],
        4
    );
    let chain = import(&node, "ln-b", &fixture("generated/other_chain.hex"));
    assert_eq!(chain["rejected"]["wrong_chain"], 2, "{chain}");
    node.spawn();
    let (alpha, beta, gamma) = (
        tenant_key(&node, "alpha").await,
        tenant_key(&node, "beta").await,
        tenant_key(&node, "gamma").await,
    );

    let (s, g) = call(&node, "GET", "/v1/lightning/graph", &alpha, None).await;
    assert_eq!((s, scids(&g)), (200, vec!["800000x1x0".to_owned()]), "{g}");
    assert_eq!(g["nodes"].as_array().unwrap().len(), 2);
    let (_, g) = call(&node, "GET", "/v1/lightning/graph", &beta, None).await;
    assert_eq!(scids(&g), ["800000x3x0"]);
    assert!(
        g["nodes"].as_array().unwrap().is_empty(),
        "ln-b never saw a node announcement"
    );
    // The admin: combined, or one source by name.
    let (_, g) = call(&node, "GET", "/v1/lightning/graph", ADMIN_KEY, None).await;
    assert_eq!(scids(&g), ["800000x1x0", "800000x3x0"]);
    let (_, g) = call(&node, "GET", "/v1/lightning/graph?source=ln-b", ADMIN_KEY, None).await;
    assert_eq!(scids(&g), ["800000x3x0"]);
    // Channels and nodes of the other source do not exist for a tenant.
    for (key, scid, status) in [
        (&alpha, "800000x1x0", 200),
        (&alpha, "800000x3x0", 404),
        (&beta, "800000x1x0", 404),
        (&beta, "800000x3x0", 200),
    ] {
        let (s, body) = call(&node, "GET", &format!("/v1/lightning/channels/{scid}"), key, None).await;
        assert_eq!(s, status, "{scid}: {body}");
    }
    let (_, g) = call(&node, "GET", "/v1/lightning/graph?source=ln-a", ADMIN_KEY, None).await;
    let node_id = g["nodes"][0]["announcement"]["node_id"].as_str().unwrap().to_owned();
    let path = format!("/v1/lightning/nodes/{node_id}");
    assert_eq!(call(&node, "GET", &path, &alpha, None).await.0, 200);
    assert_eq!(call(&node, "GET", &path, &beta, None).await.0, 404);
    // The diff and the raw snapshot carry nothing of the other source either.
    let (_, d) = call(&node, "GET", "/v1/lightning/diff?from=0", &beta, None).await;
    assert_eq!(d["channels_opened"], json!(["800000x3x0"]), "{d}");
    assert!(d["nodes_added"].as_array().unwrap().is_empty());
    let raw = node
        .client()
        .get(format!("{}/v1/lightning/graph?format=raw", node.url))
        .bearer_auth(&beta)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (records, errors, _) =
        tributary_sources::lightning::formats::read_all(&raw, tributary_sources::lightning::Format::Compact);
    assert!(errors.is_empty());
    let mut ours: Vec<Vec<u8>> = hex_msgs("generated/out_of_order.hex");
    ours.sort();
    for r in &records {
        assert!(
            ours.binary_search(&r.msg.to_vec()).is_ok(),
            "a message of ln-a in ln-b's graph"
        );
    }
    // Problems: each tenant its own source's.
    let (_, p) = call(&node, "GET", "/v1/lightning/problems", &alpha, None).await;
    let reasons = |p: &Value| -> Vec<(String, String)> {
        p["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                let code = x["reason"].as_str().unwrap().split(':').next().unwrap().to_owned();
                (x["source"].as_str().unwrap().to_owned(), code)
            })
            .collect()
    };
    assert!(
        reasons(&p).iter().all(|(s, r)| s == "ln-a" && r == "bad_signature"),
        "{p}"
    );
    assert_eq!(reasons(&p).len(), 5);
    let (_, p) = call(&node, "GET", "/v1/lightning/problems", &beta, None).await;
    assert!(
        reasons(&p).iter().all(|(s, r)| s == "ln-b" && r == "wrong_chain"),
        "{p}"
    );
    let (_, p) = call(&node, "GET", "/v1/lightning/problems", ADMIN_KEY, None).await;
    assert_eq!(reasons(&p).len(), 7);
    // Naming a source one may not read is a 404 that says what to do; so is having none.
    for path in [
        "/v1/lightning/graph?source=ln-b",
        "/v1/lightning/channels/800000x3x0?source=ln-b",
        "/v1/lightning/diff?from=0&source=ln-b",
        "/v1/lightning/problems?source=ln-b",
        "/v1/lightning/graph?source=nope",
    ] {
        let (s, body) = call(&node, "GET", path, &alpha, None).await;
        assert_eq!(s, 404, "{path}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap_or_default().contains("source"),
            "{body}"
        );
    }
    assert_eq!(
        call(&node, "GET", "/v1/lightning/graph?source=ln-a", &alpha, None)
            .await
            .0,
        200
    );
    assert_eq!(call(&node, "GET", "/v1/lightning/graph", &gamma, None).await.0, 404);
}

/// Item 11: an overlong line is skipped without being held in memory and kept as a reject with its
/// offset; an oversized event is a reject; a partial last line is not re-read at every poll; the
/// source never stops and the node restarts without re-ingesting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_file_source_caps_lines_and_events_and_never_rereads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let mut f = std::fs::File::create(&path).unwrap();
    let first = "{\"kind\":\"f.e\",\"data\":1}\n";
    f.write_all(first.as_bytes()).unwrap();
    // 100 MiB on one line: held in memory, it would show in the node's peak RSS.
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..100 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\n{\"kind\":\"f.e\",\"data\":2}\n").unwrap();
    writeln!(f, "{{\"kind\":\"f.e\",\"data\":\"{}\"}}", "y".repeat(300 << 10)).unwrap();
    writeln!(f, "{{\"kind\":\"f.e\",\"data\":\"{}\"}}", "z".repeat(200 << 10)).unwrap();
    f.flush().unwrap();
    let config = format!(
        "[[sources]]\nname = \"tail\"\ntype = \"file\"\npath = {:?}\npoll_interval_ms = 20\n",
        path.display().to_string()
    );
    let mut node = TestNode::start(BIN, &config);
    let pid = pid_of(&node);
    assert!(wait_until(T, || async { count(&node, "").await == 3 }).await);
    let (_, r) = node.get("/v1/sources/tail/rejects").await;
    let rejects = r["rejects"].as_array().unwrap().clone();
    assert_eq!(rejects.len(), 2, "{r}");
    assert_eq!(rejects[0]["position"], "line 2");
    let reason = rejects[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("line of {} bytes at byte offset {}", 100 << 20, first.len()))
            && reason.contains("max_line_bytes (1048576)"),
        "{reason}"
    );
    assert_eq!(rejects[0]["excerpt"].as_str().unwrap().len(), 1024);
    assert_eq!(rejects[1]["position"], "line 4");
    assert!(
        rejects[1]["reason"].as_str().unwrap().contains("max_event_bytes"),
        "{}",
        rejects[1]
    );
    let (_, s) = node.get("/v1/sources/tail").await;
    assert_eq!(s["status"]["rejected"], 2, "counted: {s}");
    let peak = status_kib(pid, "VmHWM:");
    eprintln!("file source: peak RSS {peak} KiB after a 100 MiB line");
    assert!(
        peak < 100 << 10,
        "peak RSS {peak} KiB: the 100 MiB line was held in memory"
    );

    // A partial last line of 512 KiB (JSON whitespace, so the event stays small), completed in 16
    // appends: read once, not once per poll.
    let before = rchar(pid);
    write!(f, "{{\"kind\":\"f.e\",\"data\":3{}", " ".repeat(512 << 10)).unwrap();
    f.flush().unwrap();
    let mut expected = before + (512 << 10);
    assert!(wait_until(T, || async { rchar(pid) >= expected }).await);
    for _ in 0..16 {
        f.write_all(&vec![b' '; 16 << 10]).unwrap();
        f.flush().unwrap();
        expected += 16 << 10;
        assert!(wait_until(T, || async { rchar(pid) >= expected }).await);
    }
    f.write_all(b"}\n").unwrap();
    f.flush().unwrap();
    assert!(wait_until(T, || async { count(&node, "").await == 4 }).await);
    let read = rchar(pid) - before;
    eprintln!("file source: {read} bytes read for a 768 KiB partial line completed in 17 appends");
    assert!(
        read < 3 << 20,
        "{read} bytes read for a 768 KiB line: the partial line was read again at every poll"
    );
    // Alive, restartable, nothing read twice.
    assert!(health_ok(&node).await);
    assert_eq!(node.terminate(), Some(0));
    node.spawn();
    let (_, s) = node.get("/v1/sources/tail").await;
    let checkpoint = s["checkpoints"][0]["position"].as_str().unwrap().to_owned();
    assert_eq!(checkpoint, format!("{}:6", std::fs::metadata(&path).unwrap().len()));
    assert_eq!(count(&node, "").await, 4);
}

/// Item 12, files: GSP, compact and hex inputs with messages over 65,535 bytes are imported with those
/// refused (`malformed`, naming the limit) and everything around them kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_lightning_framings_refuse_oversized_messages() {
    let mut node = TestNode::start(BIN, "[[sources]]\nname = \"ln\"\ntype = \"lightning\"\n");
    assert!(health_ok(&node).await);
    assert_eq!(node.terminate(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    let valid = hex_msgs("generated/valid.hex");
    let mut big = valid[3].clone(); // a channel_update, padded far past BOLT #1's limit
    big.resize(200_000, 0);
    let canonical = |m: &[u8]| tributary_sources::lightning::id::raw_gossip(m).unwrap();

    let mut gsp = b"GSP\x01".to_vec();
    for m in [&valid[0], &big, &valid[1]] {
        gsp.push(0xfe);
        gsp.extend_from_slice(&(m.len() as u32).to_be_bytes());
        gsp.extend_from_slice(m);
    }
    // A length of 2^64 - 1 at the end: refused from the prefix alone.
    gsp.push(0xff);
    gsp.extend_from_slice(&u64::MAX.to_be_bytes());
    gsp.extend_from_slice(&valid[2]);
    let mut compact = canonical(&valid[0]);
    compact.extend(canonical(&big));
    compact.extend(canonical(&valid[1]));
    let mut hex_text = format!("{}\n{}\n", hex::encode(&valid[0]), hex::encode(&big));
    hex_text.push_str(&"ab".repeat(4 << 20)); // 8 MiB without a newline
    hex_text.push_str(&format!("\n{}\n", hex::encode(&valid[1])));
    for (name, bytes, format, refused) in [
        ("big.gsp", gsp, "gsp", 2),
        ("big.compact", compact, "compact", 1),
        ("big.hex", hex_text.into_bytes(), "hex", 2),
    ] {
        let file = dir.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let started = std::time::Instant::now();
        let out = Command::new(BIN)
            .args(["import", "--json", "--format", format, "--config"])
            .arg(node.config_path())
            .args(["--source", "ln"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["rejected"]["malformed"], refused, "{name}: {summary}");
        assert_eq!(
            summary["messages"], 2,
            "{name}: the messages around it are read: {summary}"
        );
        assert!(started.elapsed() < T, "{name}");
    }
    node.spawn();
    let (_, p) = node.get("/v1/lightning/problems").await;
    let reasons: Vec<&str> = p["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().filter(|r| r.contains("65,535")).count() >= 3,
        "{reasons:#?}"
    );
    assert!(reasons.iter().any(|r| r.contains("line longer than")), "{reasons:#?}");
    assert!(health_ok(&node).await);
}

/// A ZMTP 3.0 PUB socket on loopback that plays the gossip-publisher-zmq plugin.
struct FakeCollector {
    listener: tokio::net::TcpListener,
}

impl FakeCollector {
    async fn bind() -> Self {
        Self {
            listener: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    fn endpoint(&self) -> String {
        format!("tcp://{}", self.listener.local_addr().unwrap())
    }

    /// Accepts the node's SUB connection and completes the handshake up to its subscription.
    async fn accept(&self) -> tokio::net::TcpStream {
        let (mut s, _) = tokio::time::timeout(T, self.listener.accept()).await.unwrap().unwrap();
        let mut greeting = [0u8; 64];
        s.read_exact(&mut greeting).await.unwrap();
        assert_eq!((greeting[0], greeting[9], greeting[10]), (0xff, 0x7f, 3));
        let mut mine = [0u8; 64];
        mine[0] = 0xff;
        mine[8] = 1;
        mine[9] = 0x7f;
        mine[10] = 3;
        mine[11] = 1;
        mine[12..16].copy_from_slice(b"NULL");
        s.write_all(&mine).await.unwrap();
        let mut ready = b"\x05READY\x0bSocket-Type\x00\x00\x00\x03PUB".to_vec();
        ready.splice(0..0, [0x04, ready.len() as u8]);
        s.write_all(&ready).await.unwrap();
        let mut head = [0u8; 2];
        s.read_exact(&mut head).await.unwrap();
        assert_eq!(head[0], 0x04, "the node's READY");
        let mut body = vec![0u8; head[1] as usize];
        s.read_exact(&mut body).await.unwrap();
        let mut sub = [0u8; 3];
        s.read_exact(&mut sub).await.unwrap();
        assert_eq!(sub, [0, 1, 1], "the node subscribes to everything");
        s
    }
}

fn zmtp_frame(more: bool, body: &[u8]) -> Vec<u8> {
    let mut f = vec![u8::from(more) | 0x02];
    f.extend_from_slice(&(body.len() as u64).to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn plugin_message(raw_hex: &str) -> Vec<u8> {
    let json = json!({"metadata": {"type": 256, "name": "channel_announcement", "timestamp": 1_700_000_000u32,
                                   "sender_node_id": "02aaaa", "length": 0}, "raw_hex": raw_hex, "parsed": {}});
    let mut m = zmtp_frame(true, b"channel_announcement");
    m.extend(zmtp_frame(false, json.to_string().as_bytes()));
    m
}

/// Item 12, ZeroMQ: a message over 1 MiB is read past without being buffered, a `raw_hex` longer than
/// any gossip message is refused, a frame announcing 2^62 bytes costs nothing; the collector keeps going
/// and reconnects. Also: a problem event keeps one copy of its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_lightning_zmq_frames_are_bounded() {
    let collector = FakeCollector::bind().await;
    let config = format!(
        "[[sources]]\nname = \"ln\"\ntype = \"lightning\"\ncollectors = [\"{}\"]\n",
        collector.endpoint()
    );
    let node = TestNode::start(BIN, &config);
    let pid = pid_of(&node);
    let mut s = collector.accept().await;
    let valid = hex_msgs("generated/valid.hex");
    // 1. 64 MiB in one frame; 2. raw_hex of a 70,000-byte message; 3. a valid announcement; 4. a bad one.
    let mut huge = zmtp_frame(true, b"channel_update");
    huge.extend(zmtp_frame(false, &vec![b' '; 64 << 20]));
    s.write_all(&huge).await.unwrap();
    s.write_all(&plugin_message(&"00".repeat(70_000))).await.unwrap();
    s.write_all(&plugin_message(&hex::encode(&valid[0]))).await.unwrap();
    let mut bad = valid[0].clone();
    bad[2 + 256 + 2 + 32 + 3] ^= 1; // a byte of the signed short_channel_id

    s.write_all(&plugin_message(&hex::encode(&bad))).await.unwrap();
    s.flush().await.unwrap();
    assert!(wait_until(T, || async { count(&node, "kind=ln.*").await == 2 }).await);
    let (_, r) = node.get("/v1/sources/ln/rejects").await;
    let reasons: Vec<&str> = r["rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:#?}");
    let huge_len = format!("{}-byte collector message", (64 << 20) + "channel_update".len());
    assert!(
        reasons.iter().any(|r| r.contains(&huge_len) && r.contains("1 MiB")),
        "{reasons:#?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("140000 hex digits") && r.contains("65,535")),
        "{reasons:#?}"
    );
    assert!(reasons.iter().any(|r| r.starts_with("bad_signature")), "{reasons:#?}");
    let peak = status_kib(pid, "VmHWM:");
    eprintln!("zmq: peak RSS {peak} KiB after a 64 MiB frame");
    assert!(peak < 64 << 10, "peak RSS {peak} KiB: the 64 MiB frame was buffered");
    // The problem event: its message once, as data.raw_hex (payload empty: a platform_event subscription
    // would otherwise have rendered it as gossip).
    let (_, e) = node.get("/v1/events?kind=ln.problem.*").await;
    let id = e["events"][0]["id"].as_str().unwrap().to_owned();
    let (_, full) = node.get(&format!("/v1/events/{id}")).await;
    assert_eq!(full["data"]["raw_hex"], hex::encode(&bad), "{full}");
    // A frame announcing 2^62 bytes, then the connection drops: nothing is allocated, the node reconnects.
    let mut lying = vec![0x02];
    lying.extend_from_slice(&(1u64 << 62).to_be_bytes());
    lying.extend_from_slice(b"a little");
    s.write_all(&lying).await.unwrap();
    drop(s);
    let mut s = collector.accept().await;
    s.write_all(&plugin_message(&hex::encode(&valid[1]))).await.unwrap();
    assert!(
        wait_until(T, || async { count(&node, "kind=ln.node_announcement").await == 1 }).await,
        "the reconnected collector's message arrives"
    );
    assert!(health_ok(&node).await);
    assert!(status_kib(pid, "VmHWM:") < 64 << 10);
}
