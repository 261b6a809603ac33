//! Crash safety on the real binary: ingest continuously (with duplicates) over HTTP and from a file while
//! delivering, SIGKILL the node at random moments, restart it each time, then prove that
//! - every event answered with 202 is stored, and stored exactly once;
//! - every stored event reached the receiver at least once, with one `webhook-id` per (subscription, event);
//! - the file source never re-ingested a line (each file event has exactly one observation).
//!
//! Run on the embedded store and on the PostgreSQL store (a schema of its own on the machine's server).

use crate::{BIN, SECRET};
use rand::Rng;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tributary_testkit::{ADMIN_KEY, Receiver, Reply, TestNode};

const ROUNDS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    crash_rounds("").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_acknowledged_on_postgres() {
    let schema = crate::pg_store::Schema::new();
    crash_rounds(&schema.node_lines()).await;
    schema.drop().await;
}

async fn crash_rounds(node_lines: &str) {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    // Every 7th first attempt fails, so retries are in progress when the node dies.
    rx.respond_with(|r| {
        if r.nth == 1 && r.seq % 7 == 0 {
            Reply::status(503)
        } else {
            Reply::ok()
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let file_path = dir.path().join("events.ndjson");
    std::fs::File::create(&file_path).unwrap();
    let config = format!(
        "[[sources]]\nname = \"ingest\"\ntype = \"http\"\n\n[[sources]]\nname = \"tail\"\ntype = \"file\"\npath = {:?}\nbatch_lines = 50\npoll_interval_ms = 10\n\n[[subscriptions]]\nname = \"hook\"\nmax_in_flight = 8\nretry = {{ schedule = [\"0s\", \"50ms\", \"100ms\", \"200ms\", \"400ms\", \"800ms\"] }}\n{}",
        file_path.display().to_string(),
        tributary_testkit::webhook_sink(&rx.url(), SECRET)
    );
    let mut node = TestNode::start_with_node(BIN, node_lines, &config);
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let file_lines = Arc::new(Mutex::new(0u64));
    let mut next_event = 0u64;
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let poster = tokio::spawn(post_until_stopped(
            node.url.clone(),
            stop.clone(),
            acked.clone(),
            next_event,
            file_path.clone(),
            file_lines.clone(),
        ));
        let millis = rand::rng().random_range(300..1200);
        tokio::time::sleep(Duration::from_millis(millis)).await; // the random moment of the crash
        node.kill();
        stop.store(true, Ordering::SeqCst);
        next_event = poster.await.unwrap();
        eprintln!(
            "round {round}: killed after {millis} ms; {} acknowledged so far",
            acked.lock().unwrap().len()
        );
        node.spawn();
    }
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let file_lines = *file_lines.lock().unwrap();
    assert!(
        acked.len() > 100,
        "the test ingested too little to mean anything: {}",
        acked.len()
    );

    // Every acknowledged event is stored exactly once.
    let mut stored: Vec<Value> = Vec::new();
    let expected_total = acked.len() as u64 + file_lines;
    let mut file_events_seen;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        stored.clear();
        let mut after = 0;
        loop {
            let (_, page) = node.get(&format!("/v1/events?after={after}&limit=1000")).await;
            let events = page["events"].as_array().unwrap().clone();
            if events.is_empty() {
                break;
            }
            after = events.last().unwrap()["seq"].as_u64().unwrap();
            stored.extend(events);
        }
        file_events_seen = stored.iter().filter(|e| e["source"] == "tail").count() as u64;
        if file_events_seen == file_lines || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(file_events_seen, file_lines, "every complete file line became an event");
    let mut ids = HashMap::new();
    for e in &stored {
        *ids.entry(e["id"].as_str().unwrap().to_owned()).or_insert(0) += 1;
    }
    assert!(ids.values().all(|n| *n == 1), "an id is stored twice");
    for id in &acked {
        assert!(ids.contains_key(id), "acknowledged event {id} is missing after crashes");
    }
    assert!(stored.len() as u64 >= expected_total);

    // Every stored event reached the receiver, with one webhook-id per event.
    let want: HashSet<String> = ids.keys().cloned().collect();
    let all = crate::delivered_all(&rx, &want, Duration::from_secs(90)).await;
    if !all {
        let got: HashSet<String> = rx
            .received()
            .iter()
            .filter(|x| x.status < 300)
            .map(|x| x.event_id.clone())
            .collect();
        let missing = want.iter().filter(|id| !got.contains(*id)).count();
        let (_, sub) = node.get("/v1/subscriptions/hook").await;
        panic!(
            "{missing} of {} stored events never reached the receiver; subscription: {sub}",
            want.len()
        );
    }
    let mut webhook_ids: HashMap<String, HashSet<String>> = HashMap::new();
    for r in rx.received() {
        assert!(r.verified, "signature failed for {}", r.webhook_id);
        webhook_ids
            .entry(r.event_id.clone())
            .or_default()
            .insert(r.webhook_id.clone());
    }
    assert!(
        webhook_ids.values().all(|s| s.len() == 1),
        "an event was delivered under two webhook-ids"
    );

    // The file source never re-ingested: one observation per file event.
    for e in stored.iter().filter(|e| e["source"] == "tail") {
        let (_, full) = node.get(&format!("/v1/events/{}", e["id"].as_str().unwrap())).await;
        assert_eq!(full["observations"][0]["count"], 1, "file line ingested twice: {full}");
    }
    let redelivered = rx.received().len() - want.len();
    eprintln!(
        "{} events stored ({} from the file), {} deliveries in all ({redelivered} retries or re-deliveries)",
        stored.len(),
        file_lines,
        rx.received().len()
    );
}

/// Posts batches of 10 (9 new, 1 re-sent) every few milliseconds and appends 5 lines to the file, until stopped or the node dies.
/// Returns the next unused event number.
async fn post_until_stopped(
    url: String,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    mut next: u64,
    file: std::path::PathBuf,
    file_lines: Arc<Mutex<u64>>,
) -> u64 {
    let client = reqwest::Client::new();
    let mut sent: Vec<Value> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let mut batch: Vec<Value> = (0..9)
            .map(|_| {
                next += 1;
                json!({"kind": "crash.test", "key": format!("k{}", next % 13), "data": {"n": next}})
            })
            .collect();
        {
            if !sent.is_empty() {
                let i = rand::rng().random_range(0..sent.len());
                batch.push(sent[i].clone());
            }
        }
        let resp = client
            .post(format!("{url}/v1/sources/ingest/events"))
            .bearer_auth(ADMIN_KEY)
            .json(&batch)
            .send()
            .await;
        match resp {
            Ok(r) if r.status().as_u16() == 202 => {
                let body: Value = r.json().await.unwrap_or_default();
                if let Some(ids) = body["ids"].as_array() {
                    acked
                        .lock()
                        .unwrap()
                        .extend(ids.iter().filter_map(|i| i.as_str().map(str::to_owned)));
                    sent.extend(batch);
                }
            }
            _ => break, // the node died mid-request: nothing acknowledged
        }
        tokio::time::sleep(Duration::from_millis(5)).await; // a steady stream, not a flood
        {
            let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
            let mut n = file_lines.lock().unwrap();
            for _ in 0..5 {
                *n += 1;
                writeln!(f, r#"{{"kind":"crash.file","data":{{"line":{}}}}}"#, *n).unwrap();
            }
        }
    }
    next
}
