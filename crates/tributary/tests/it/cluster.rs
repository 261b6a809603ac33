//! Three nodes on one PostgreSQL schema (issue 13): HTTP ingest spread over the nodes, a file source
//! and two subscriptions (one with per-key order) leased to one node each. A node holding a lease is
//! SIGKILLed at a random moment, several times, and started again. Then:
//! - every lease the killed node held is taken over by another node within the lease time + 5 s;
//! - every event answered with 202, and every file line, is stored exactly once;
//! - every stored event reaches both receivers, and per key the first deliveries come in log order;
//! - the work spreads over the nodes (no node keeps every lease);
//! - every node serves the same log and lists the three nodes.

use crate::SECRET;
use rand::Rng;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tributary_testkit::{ADMIN_KEY, Receiver, TestNode, wait_until};

const LEASE_MS: u64 = 3000;
const ROUNDS: usize = 4;
const LEASES: [&str; 3] = ["source:tail", "subscription:hook", "subscription:audit"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_the_work_and_take_over_from_a_killed_node() {
    let schema = crate::pg_store::Schema::new();
    let hook = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    let audit = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ndjson");
    std::fs::File::create(&file).unwrap();
    let config = format!(
        "[[sources]]\nname = \"ingest\"\ntype = \"http\"\n\n[[sources]]\nname = \"tail\"\ntype = \"file\"\npath = {:?}\nbatch_lines = 20\npoll_interval_ms = 20\n\n[[subscriptions]]\nname = \"hook\"\nordering = \"per_key\"\nmax_in_flight = 8\n{}\n\n[[subscriptions]]\nname = \"audit\"\n{}",
        file.display().to_string(),
        tributary_testkit::webhook_sink(&hook.url(), SECRET),
        tributary_testkit::webhook_sink(&audit.url(), SECRET),
    );
    let mut nodes: Vec<TestNode> = (1..=3)
        .map(|i| TestNode::start_with_node(crate::BIN, &schema.node_lines_as(&format!("n{i}"), LEASE_MS), &config))
        .collect();
    let urls: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(nodes.iter().map(|n| n.url.clone()).collect()));
    let every_lease_held = wait_until(Duration::from_secs(20), || async {
        let view = cluster(&nodes[0]).await;
        LEASES.iter().all(|l| holder(&view, l).is_some())
    })
    .await;
    assert!(
        every_lease_held,
        "the leases were not taken: {}",
        cluster(&nodes[0]).await
    );
    // The first node took everything; the work spreads as the others join.
    let spread = wait_until(Duration::from_secs(30), || async {
        let view = cluster(&nodes[0]).await;
        LEASES
            .iter()
            .filter_map(|l| holder(&view, l))
            .collect::<HashSet<_>>()
            .len()
            >= 2
    })
    .await;
    assert!(
        spread,
        "the work did not spread over the nodes: {}",
        cluster(&nodes[0]).await
    );

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let file_lines = Arc::new(Mutex::new(0u64));
    let poster = tokio::spawn(post_until_stopped(
        urls.clone(),
        stop.clone(),
        acked.clone(),
        file.clone(),
        file_lines.clone(),
    ));
    let mut takeovers = Vec::new();
    for round in 0..ROUNDS {
        tokio::time::sleep(Duration::from_millis(rand::rng().random_range(500..2500))).await;
        // Kill the holder of one of the leases, in turn. A lease may be between holders for a moment
        // (the node restarted last round joins and another sheds a lease to it): wait until it is held.
        let lease = LEASES[round % LEASES.len()];
        let deadline = Instant::now() + Duration::from_millis(LEASE_MS + 5000);
        let view = loop {
            let view = cluster(&nodes[0]).await;
            if holder(&view, lease).is_some() || Instant::now() > deadline {
                break view;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let victim_id = holder(&view, lease).unwrap_or_else(|| panic!("round {round}: {lease} is not held: {view}"));
        let victim = victim_id.trim_start_matches('n').parse::<usize>().unwrap() - 1;
        let held: Vec<&str> = LEASES
            .iter()
            .copied()
            .filter(|l| holder(&view, l).as_deref() == Some(&victim_id))
            .collect();
        urls.lock().unwrap().retain(|u| *u != nodes[victim].url);
        nodes[victim].kill();
        let killed = Instant::now();
        let witness = &nodes[(victim + 1) % 3];
        let taken = wait_until(Duration::from_millis(LEASE_MS + 5000), || async {
            let view = cluster(witness).await;
            held.iter().all(|l| holder(&view, l).is_some_and(|h| h != victim_id))
        })
        .await;
        let took = killed.elapsed();
        assert!(
            taken,
            "round {round}: the leases {held:?} of the killed node {victim_id} were not taken over within the lease time + 5 s: {}",
            cluster(witness).await
        );
        eprintln!("round {round}: killed {victim_id} holding {held:?}; taken over after {took:?}");
        takeovers.push(took);
        nodes[victim].spawn();
        urls.lock().unwrap().push(nodes[victim].url.clone());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    poster.await.unwrap();
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let file_lines = *file_lines.lock().unwrap();
    assert!(
        acked.len() > 200,
        "too little was ingested to mean anything: {}",
        acked.len()
    );

    // Stored exactly once, the same log on every node.
    let deadline = Instant::now() + Duration::from_secs(60);
    let stored = loop {
        let stored = read_log(&nodes[0]).await;
        if stored.iter().filter(|e| e["source"] == "tail").count() as u64 >= file_lines || Instant::now() > deadline {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut ids: HashMap<String, u32> = HashMap::new();
    for e in &stored {
        *ids.entry(e["id"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    assert!(ids.values().all(|n| *n == 1), "an event is stored twice");
    assert_eq!(
        stored.iter().filter(|e| e["source"] == "tail").count() as u64,
        file_lines,
        "a file line stored twice"
    );
    for id in &acked {
        assert!(ids.contains_key(id), "acknowledged event {id} is missing");
    }
    for node in &nodes[1..] {
        assert_eq!(
            read_log(node).await.len(),
            stored.len(),
            "{} serves another log",
            node.url
        );
    }

    // Delivered to both receivers; per key, first deliveries in log order.
    let want: HashSet<String> = ids.keys().cloned().collect();
    for (name, rx) in [("hook", &hook), ("audit", &audit)] {
        let all = crate::delivered_all(rx, &want, Duration::from_secs(90)).await;
        assert!(all, "subscription {name}: not every stored event was delivered");
        assert!(rx.received().iter().all(|r| r.verified), "{name}: a signature failed");
    }
    let mut first: HashMap<String, Vec<u64>> = HashMap::new();
    let mut seen = HashSet::new();
    for r in hook.received().iter().filter(|r| r.status < 300) {
        if seen.insert(r.event_id.clone())
            && let Some(key) = &r.key
        {
            first.entry(key.clone()).or_default().push(r.seq);
        }
    }
    for (key, seqs) in &first {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "key {key}: first deliveries out of order: {seqs:?}"
        );
    }
    let view = cluster(&nodes[2]).await;
    let alive = view["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["alive"] == true)
        .count();
    assert_eq!(alive, 3, "{view}");
    eprintln!(
        "{} events stored ({file_lines} from the file), takeovers after {takeovers:?}, {} + {} deliveries",
        stored.len(),
        hook.received().len(),
        audit.received().len()
    );
    drop(nodes);
    schema.drop().await;
}

async fn cluster(node: &TestNode) -> Value {
    node.get("/v1/cluster").await.1
}

/// The node holding `lease`, when it is held and unexpired.
fn holder(view: &Value, lease: &str) -> Option<String> {
    (view["leases"].as_array()?.iter())
        .find(|l| l["name"] == lease && l["expired"] == false)
        .and_then(|l| l["holder"].as_str().map(str::to_owned))
}

async fn read_log(node: &TestNode) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (_, page) = node.get(&format!("/v1/events?after={after}&limit=1000")).await;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        let Some(last) = events.last() else { break };
        after = last["seq"].as_u64().unwrap();
        out.extend(events);
    }
    out
}

/// Posts batches of 5 events with 8 keys to a random live node, and appends 3 lines to the file, until
/// stopped. A request to a node that dies is not acknowledged, and is not counted.
async fn post_until_stopped(
    urls: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    file: std::path::PathBuf,
    file_lines: Arc<Mutex<u64>>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut next = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let url = {
            let urls = urls.lock().unwrap();
            urls[rand::rng().random_range(0..urls.len())].clone()
        };
        let batch: Vec<Value> = (0..5)
            .map(|_| {
                next += 1;
                json!({"kind": "cluster.test", "key": format!("k{}", next % 8), "data": {"n": next}})
            })
            .collect();
        let resp = client
            .post(format!("{url}/v1/sources/ingest/events"))
            .bearer_auth(ADMIN_KEY)
            .json(&batch)
            .send()
            .await;
        if let Ok(r) = resp
            && r.status().as_u16() == 202
        {
            let body: Value = r.json().await.unwrap_or_default();
            let ids = body["ids"].as_array().into_iter().flatten();
            acked
                .lock()
                .unwrap()
                .extend(ids.filter_map(|i| i.as_str().map(str::to_owned)));
        }
        {
            let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
            let mut n = file_lines.lock().unwrap();
            for _ in 0..3 {
                *n += 1;
                writeln!(f, r#"{{"kind":"cluster.file","key":"f","data":{{"line":{}}}}}"#, *n).unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Two nodes: a subscription created through one reaches the other, commands sent to the node that does
/// not deliver it reach the one that does, a delete through either stops it on both, and
/// `tributary cluster status` shows the nodes and the leases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_subscriptions_and_commands_reach_every_node() {
    use crate::control::call;
    let schema = crate::pg_store::Schema::new();
    let rx = Receiver::start(None, true).await.unwrap();
    let config = "[[sources]]\nname = \"ingest\"\ntype = \"http\"\n";
    let nodes: Vec<TestNode> = (1..=2)
        .map(|i| TestNode::start_with_node(crate::BIN, &schema.node_lines_as(&format!("n{i}"), 2000), config))
        .collect();
    let body = json!({"name": "relay", "sink": {"type": "webhook", "url": rx.url(), "allow_private_networks": true}});
    let (s, created) = call(&nodes[0], "POST", "/v1/subscriptions", ADMIN_KEY, Some(body)).await;
    assert_eq!(s, 201, "{created}");
    let synced = wait_until(Duration::from_secs(10), || async {
        call(&nodes[1], "GET", "/v1/subscriptions/relay", ADMIN_KEY, None)
            .await
            .0
            == 200
    })
    .await;
    assert!(synced, "the subscription created through n1 did not reach n2");
    let held = wait_until(Duration::from_secs(10), || async {
        holder(&cluster(&nodes[0]).await, "subscription:relay").is_some()
    })
    .await;
    assert!(held, "no node took the subscription: {}", cluster(&nodes[0]).await);
    let holder_id = holder(&cluster(&nodes[0]).await, "subscription:relay").unwrap();
    let (delivering, standby) = if holder_id == "n1" {
        (&nodes[0], &nodes[1])
    } else {
        (&nodes[1], &nodes[0])
    };
    let (_, view) = call(standby, "GET", "/v1/subscriptions/relay", ADMIN_KEY, None).await;
    assert_eq!(view["status"]["standby"], true, "{view}");

    // Paused through the node that does not deliver it: the holder pauses.
    let (s, answer) = call(standby, "POST", "/v1/subscriptions/relay/pause", ADMIN_KEY, None).await;
    assert!(s < 300, "{s} {answer}");
    let paused = wait_until(Duration::from_secs(10), || async {
        call(delivering, "GET", "/v1/subscriptions/relay", ADMIN_KEY, None)
            .await
            .1["status"]["paused"]
            == true
    })
    .await;
    assert!(paused, "the pause sent to the standby node did not reach the holder");
    let (s, _) = call(standby, "POST", "/v1/subscriptions/relay/resume", ADMIN_KEY, None).await;
    assert!(s < 300);
    let (status, _) = standby
        .post_events("ingest", &json!([{"kind": "relay.test", "data": {}}]))
        .await;
    assert_eq!(status, 202);
    assert!(
        rx.wait_for(Duration::from_secs(10), |r| !r.is_empty()).await,
        "an event sent to the standby node was not delivered by the holder after the resume"
    );

    // The CLI.
    let out = crate::cli::admin(&nodes[1], &["cluster", "status"]).await.ok();
    for want in ["n1", "n2", "alive", "subscription:relay", "held"] {
        assert!(
            out.stdout.contains(want),
            "cluster status lacks {want:?}:\n{}",
            out.stdout
        );
    }
    let out = crate::cli::admin(&nodes[0], &["--json", "cluster", "status"])
        .await
        .ok();
    assert_eq!(out.json()["nodes"].as_array().map(Vec::len), Some(2), "{}", out.stdout);

    // Deleted through the other node: gone from both.
    let (s, _) = call(standby, "DELETE", "/v1/subscriptions/relay", ADMIN_KEY, None).await;
    assert!(s < 300);
    let gone = wait_until(Duration::from_secs(10), || async {
        call(delivering, "GET", "/v1/subscriptions/relay", ADMIN_KEY, None)
            .await
            .0
            == 404
    })
    .await;
    assert!(
        gone,
        "the subscription deleted through one node still runs on the other"
    );
    drop(nodes);
    schema.drop().await;
}
