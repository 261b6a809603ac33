//! Two nodes on one PostgreSQL store across a PostgreSQL outage (a private server stopped at once for ten
//! seconds, as a crash): on both, ingest answers 503 `store_unavailable` and `/health` says the store is
//! `down` while it lasts; afterwards they recover by themselves — the file source restarts from its
//! checkpoint on the node holding its lease, the subscription delivers on — and nothing acknowledged
//! (through either node) is lost or stored twice.

use crate::{BIN, SECRET};
use serde_json::json;
use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};
use tributary_testkit::postgres::PgServer;
use tributary_testkit::{Receiver, TestNode, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_is_ridden_out_with_nothing_lost() {
    let mut pg = tokio::task::spawn_blocking(PgServer::start).await.unwrap();
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ndjson");
    std::fs::File::create(&file).unwrap();
    let lines = format!(
        "store = {{ type = \"postgres\", url = {:?}, schema = \"outage\", timeout_ms = 1000 }}",
        pg.url("postgres")
    );
    let config = format!(
        "[[sources]]\nname = \"ingest\"\ntype = \"http\"\n\n[[sources]]\nname = \"tail\"\ntype = \"file\"\npath = {:?}\npoll_interval_ms = 20\n\n[[subscriptions]]\nname = \"hook\"\n{}",
        file.display().to_string(),
        tributary_testkit::webhook_sink(&rx.url(), SECRET)
    );
    let node = TestNode::start_with_node(BIN, &lines, &config);
    let other = TestNode::start_with_node(BIN, &format!("node_id = \"second\"\n{lines}"), &config);
    let append = |from: u64, to: u64| {
        let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        for n in from..to {
            writeln!(f, r#"{{"kind":"outage.file","data":{{"line":{n}}}}}"#).unwrap();
        }
    };
    let mut acked: HashSet<String> = HashSet::new();
    let post = |n: u64| json!([{ "kind": "outage.http", "data": { "n": n } }]);
    for n in 0..20 {
        let (status, body) = node.post_events("ingest", &post(n)).await;
        assert_eq!(status, 202, "{body}");
        acked.insert(body["ids"][0].as_str().unwrap().to_owned());
    }
    append(0, 10);

    // The outage.
    let stopped = Instant::now();
    pg.stop();
    for n in [&node, &other] {
        let (status, body) = n.post_events("ingest", &post(1000)).await;
        assert_eq!(status, 503, "an append while PostgreSQL is down: {body}");
        assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
        let down = wait_until(Duration::from_secs(10), || async {
            let (status, h) = n.get("/health").await;
            status == 503 && h["store"]["status"] == "down"
        })
        .await;
        assert!(
            down,
            "/health did not report the store down: {:?}",
            n.get("/health").await
        );
    }
    append(10, 20); // written while the store is down: read once it is back
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(stopped.elapsed())).await;
    let mut pg = tokio::task::spawn_blocking(move || {
        pg.resume();
        pg
    })
    .await
    .unwrap();

    // Recovery, by itself.
    let healthy = wait_until(Duration::from_secs(30), || async {
        let (status, h) = node.get("/health").await;
        status == 200 && h["store"]["status"] == "ok"
    })
    .await;
    assert!(healthy, "the node did not recover: {:?}", node.get("/health").await);
    let healthy = wait_until(Duration::from_secs(30), || async {
        let (status, h) = other.get("/health").await;
        status == 200 && h["store"]["status"] == "ok"
    })
    .await;
    assert!(
        healthy,
        "the second node did not recover: {:?}",
        other.get("/health").await
    );
    for n in 40..50 {
        let (status, body) = other.post_events("ingest", &post(n)).await;
        assert_eq!(status, 202, "after the outage, through the second node: {body}");
        acked.insert(body["ids"][0].as_str().unwrap().to_owned());
    }
    for n in 20..40 {
        let (status, body) = node.post_events("ingest", &post(n)).await;
        assert_eq!(status, 202, "after the outage: {body}");
        acked.insert(body["ids"][0].as_str().unwrap().to_owned());
    }
    append(20, 30);
    let mut stored: Vec<serde_json::Value> = Vec::new();
    let complete = wait_until(Duration::from_secs(60), || {
        let node = &node;
        async move {
            let (_, page) = node.get("/v1/events?after=0&limit=1000").await;
            let events = page["events"].as_array().cloned().unwrap_or_default();
            events.iter().filter(|e| e["source"] == "tail").count() >= 30
        }
    })
    .await;
    let (_, page) = node.get("/v1/events?after=0&limit=1000").await;
    stored.extend(page["events"].as_array().cloned().unwrap_or_default());
    assert!(
        complete,
        "the file source did not resume: {} events stored",
        stored.len()
    );
    let ids: Vec<String> = stored.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an event is stored twice");
    assert_eq!(
        stored.iter().filter(|e| e["source"] == "tail").count(),
        30,
        "each file line once"
    );
    for id in &acked {
        assert!(unique.contains(id), "acknowledged event {id} lost in the outage");
    }
    let want: HashSet<String> = ids.iter().cloned().collect();
    let delivered = crate::delivered_all(&rx, &want, Duration::from_secs(60)).await;
    let (_, sub) = node.get("/v1/subscriptions/hook").await;
    assert!(
        delivered,
        "not every stored event was delivered after the outage: {sub}"
    );
    pg.stop();
}
