//! The `postgres` source's operator side on the running binary, against a private PostgreSQL: per-event
//! tenants from the outbox on every endpoint, `snapshot = true` (first start, restart, an interrupted
//! snapshot, an existing slot), and the slot's health (retained WAL, lag, latency metrics).

use crate::BIN;
use crate::control::{call, tenant_key};
use crate::pg_cdc::{T, connect, events, sha256_hex, source, wait_events};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use tributary_testkit::{ADMIN_KEY, PgServer, Receiver, TestNode, wait_until};

const OUTBOX: &str = "[sources.outbox]\ntable = \"public.event_outbox\"\nid = \"idempotency_key\"\nkind = \"kind\"\nkey = \"user_id\"\npayload = \"payload\"\ntenant = \"tenant_id\"\n";

async fn outbox_table(db: &tokio_postgres::Client) {
    db.batch_execute(
        "CREATE TABLE event_outbox (seq bigserial PRIMARY KEY, idempotency_key text, kind text, user_id text,
            payload jsonb, tenant_id text)",
    )
    .await
    .unwrap();
}

async fn slot_active(db: &tokio_postgres::Client) -> bool {
    wait_until(T, || async {
        db.query_opt(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'tributary_app' AND active",
            &[],
        )
        .await
        .unwrap()
        .is_some()
    })
    .await
}

/// The ids of `/v1/events?source=app` as `key` sees them.
async fn ids_seen_by(node: &TestNode, key: &str) -> BTreeSet<String> {
    let (st, page) = call(node, "GET", "/v1/events?source=app&limit=1000", key, None).await;
    assert_eq!(st, 200, "{page}");
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

fn event_ids(rx: &Receiver) -> BTreeSet<String> {
    rx.received().into_iter().map(|r| r.event_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cdc_an_outbox_tenant_sees_only_its_events_on_every_endpoint() {
    let pg = PgServer::start();
    let db = connect(&pg).await;
    outbox_table(&db).await;
    let node = TestNode::start(BIN, &source(&pg, &["public.event_outbox"], OUTBOX));
    assert!(slot_active(&db).await, "the slot was not created and used");
    let alpha = tenant_key(&node, "alpha").await;
    let beta = tenant_key(&node, "beta").await;
    let (rx_a, rx_b, rx_admin) = (
        Receiver::start(None, true).await.unwrap(),
        Receiver::start(None, true).await.unwrap(),
        Receiver::start(None, true).await.unwrap(),
    );
    for (name, tenant, rx) in [
        ("sub-a", Some("alpha"), &rx_a),
        ("sub-b", Some("beta"), &rx_b),
        ("sub-admin", None, &rx_admin),
    ] {
        let mut s = json!({"name": name, "filter": {"sources": ["app"]},
            "sink": {"type": "webhook", "url": rx.url(), "allow_private_networks": true}});
        if let Some(t) = tenant {
            s["tenant"] = t.into();
        }
        let (st, body) = call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(s)).await;
        assert_eq!(st, 201, "{body}");
    }
    db.batch_execute(
        "INSERT INTO event_outbox (idempotency_key, kind, user_id, payload, tenant_id) VALUES
            ('a-1', 'miner.portfolio_updated', 'u1', '{\"v\": 1}', 'alpha'),
            ('b-1', 'miner.portfolio_updated', 'u2', '{\"v\": 2}', 'beta'),
            ('n-1', 'miner.hashrate', 'u3', '{\"v\": 3}', NULL);
         INSERT INTO event_outbox (idempotency_key, kind, user_id, payload, tenant_id) VALUES
            ('a-bad', 'not a kind!', 'u1', '{\"secret\": \"alpha-only\"}', 'alpha');",
    )
    .await
    .unwrap();
    wait_events(&node, 3).await;
    let (a1, b1, n1) = (sha256_hex("a-1"), sha256_hex("b-1"), sha256_hex("n-1"));
    let set = |ids: &[&String]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    // The event list.
    assert_eq!(ids_seen_by(&node, ADMIN_KEY).await, set(&[&a1, &b1, &n1]));
    assert_eq!(ids_seen_by(&node, &alpha).await, set(&[&a1, &n1]));
    assert_eq!(ids_seen_by(&node, &beta).await, set(&[&b1, &n1]));
    // One event by id: another tenant's is not found.
    for (key, id, want) in [
        (&alpha, &b1, 404),
        (&beta, &a1, 404),
        (&alpha, &a1, 200),
        (&beta, &n1, 200),
    ] {
        let (st, body) = call(&node, "GET", &format!("/v1/events/{id}"), key, None).await;
        assert_eq!(st, want, "{id}: {body}");
    }
    let (st, _) = call(&node, "GET", &format!("/v1/events/{b1}?source=app"), &alpha, None).await;
    assert_eq!(st, 404, "naming the source does not reveal another tenant's event");
    // Deliveries: each tenant's subscription gets its own and the shared events; the admin's all.
    let all_delivered =
        || async { event_ids(&rx_a).len() >= 2 && event_ids(&rx_b).len() >= 2 && event_ids(&rx_admin).len() >= 3 };
    assert!(wait_until(T, all_delivered).await, "deliveries did not arrive");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(event_ids(&rx_a), set(&[&a1, &n1]));
    assert_eq!(event_ids(&rx_b), set(&[&b1, &n1]));
    assert_eq!(event_ids(&rx_admin), set(&[&a1, &b1, &n1]));
    // A replay of the whole log by the tenant itself stays within its events.
    let (st, body) = call(
        &node,
        "POST",
        "/v1/subscriptions/sub-a/replay",
        &alpha,
        Some(json!({"from_seq": 1})),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["matched"], 2, "{body}");
    assert!(
        wait_until(T, || async { rx_a.total() >= 4 }).await,
        "the replay was not delivered"
    );
    assert_eq!(event_ids(&rx_a), set(&[&a1, &n1]));
    // The deliveries listing of a tenant's subscription names only its events.
    let (st, body) = call(&node, "GET", "/v1/subscriptions/sub-a/deliveries", &alpha, None).await;
    assert_eq!(st, 200, "{body}");
    assert!(!body.to_string().contains(&b1), "{body}");
    // Rejects: where and why for every reader of the source; the row itself only for the admin.
    let (_, admin_rejects) = call(&node, "GET", "/v1/sources/app/rejects", ADMIN_KEY, None).await;
    assert!(admin_rejects.to_string().contains("alpha-only"), "{admin_rejects}");
    let (st, beta_rejects) = call(&node, "GET", "/v1/sources/app/rejects", &beta, None).await;
    assert_eq!(st, 200);
    assert_eq!(beta_rejects["rejects"].as_array().unwrap().len(), 1, "{beta_rejects}");
    assert!(!beta_rejects.to_string().contains("alpha-only"), "{beta_rejects}");
    assert!(
        beta_rejects["rejects"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("outbox.kind")
    );
}

/// Events of `app` of one kind.
fn of_kind<'a>(evs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["kind"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cdc_snapshot_reads_existing_rows_then_streams_without_gap_or_overlap() {
    const ROWS: i64 = 5_000;
    let pg = PgServer::start();
    let db = connect(&pg).await;
    outbox_table(&db).await;
    db.batch_execute(&format!(
        "CREATE TABLE orders (id bigint PRIMARY KEY, note text, amount numeric, at timestamptz);
         INSERT INTO orders SELECT g, 'n' || g, g * 1.5, '2026-12-02 10:00:00+00' FROM generate_series(1, {ROWS}) g;
         INSERT INTO event_outbox (idempotency_key, kind, user_id, payload, tenant_id)
            VALUES ('old-1', 'miner.hashrate', 'u1', '{{\"th\": 1}}', NULL), ('old-2', 'miner.hashrate', 'u2', '{{\"th\": 2}}', NULL);"
    ))
    .await
    .unwrap();
    let extra = format!("snapshot = true\nmax_batch_events = 1000\n{OUTBOX}");
    let mut node = TestNode::start(BIN, &source(&pg, &["public.orders", "public.event_outbox"], &extra));
    let evs = wait_events(&node, ROWS as usize + 2).await;
    // Changes after the snapshot: streamed, each once.
    db.batch_execute(
        "UPDATE orders SET note = 'changed' WHERE id = 7;
         INSERT INTO orders VALUES (100000, 'new', 1, now());
         UPDATE event_outbox SET payload = '{\"th\": 20}' WHERE idempotency_key = 'old-2';
         INSERT INTO event_outbox (idempotency_key, kind, user_id, payload) VALUES ('new-1', 'miner.hashrate', 'u9', '{}');",
    )
    .await
    .unwrap();
    let evs_after = wait_events(&node, evs.len() + 3).await;
    let snap = of_kind(&evs_after, "pg.public.orders.snapshot");
    assert_eq!(snap.len(), ROWS as usize, "every existing row once");
    let keys: HashSet<&str> = snap.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), ROWS as usize);
    let point = snap[0]["data"]["commit_lsn"].as_str().unwrap().to_owned();
    for e in &snap {
        let position = e["position"].as_str().unwrap();
        assert!(position.starts_with(&format!("snapshot/{point}/")), "{e}");
        assert_eq!(e["id"], sha256_hex(position), "{e}");
        assert_eq!(e["data"]["op"], "snapshot");
        assert_eq!(e["data"]["xid"], 0);
    }
    let seven = snap.iter().find(|e| e["key"] == "7").unwrap();
    assert_eq!(
        seven["data"]["new"],
        json!({"id": 7, "note": "n7", "amount": "10.5", "at": "2026-12-02T10:00:00Z"})
    );
    // The outbox rows of the snapshot are ordinary outbox events; an update later is the same id (stored once).
    let outbox_ids: Vec<&str> = evs_after
        .iter()
        .filter(|e| e["kind"] == "outbox.miner.hashrate")
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        outbox_ids,
        [sha256_hex("old-1"), sha256_hex("old-2"), sha256_hex("new-1")]
    );
    // The stream follows the snapshot: the update and the insert, each once, after every snapshot row.
    let updates = of_kind(&evs_after, "pg.public.orders.update");
    let inserts = of_kind(&evs_after, "pg.public.orders.insert");
    assert_eq!((updates.len(), inserts.len()), (1, 1), "{updates:?} {inserts:?}");
    assert_eq!(updates[0]["data"]["new"]["note"], "changed");
    let last_snapshot_seq = snap.iter().map(|e| e["seq"].as_u64().unwrap()).max().unwrap();
    assert!(updates[0]["seq"].as_u64().unwrap() > last_snapshot_seq);
    let (_, view) = node.get("/v1/sources/app").await;
    assert_eq!(
        view["parts"]["slot tributary_app"]["snapshot"]["state"], "done",
        "{view}"
    );
    assert_eq!(
        view["parts"]["slot tributary_app"]["snapshot"]["rows"],
        ROWS + 2,
        "{view}"
    );
    // A restart streams on: no second snapshot.
    node.terminate();
    node.spawn();
    db.batch_execute("INSERT INTO orders VALUES (100001, 'after restart', 1, now())")
        .await
        .unwrap();
    let evs_restart = wait_events(&node, evs_after.len() + 1).await;
    assert_eq!(evs_restart.len(), evs_after.len() + 1, "nothing read twice");
    assert_eq!(of_kind(&evs_restart, "pg.public.orders.snapshot").len(), ROWS as usize);
    node.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cdc_an_interrupted_snapshot_is_taken_again_and_an_existing_slot_is_refused() {
    const ROWS: i64 = 200_000;
    let pg = PgServer::start();
    let db = connect(&pg).await;
    db.batch_execute(&format!(
        "CREATE TABLE orders (id bigint PRIMARY KEY, note text);
         INSERT INTO orders SELECT g, repeat('x', 50) FROM generate_series(1, {ROWS}) g;"
    ))
    .await
    .unwrap();
    let extra = "snapshot = true\nmax_batch_events = 2000\n";
    let mut node = TestNode::start(BIN, &source(&pg, &["public.orders"], extra));
    // Killed part way through the snapshot.
    let stored = |v: Value| v["status"]["stored"].as_u64().unwrap_or(0);
    let started = wait_until(T, || async {
        let n = stored(node.get("/v1/sources/app").await.1);
        n > 0 && n < ROWS as u64
    })
    .await;
    node.kill();
    assert!(started, "the snapshot was never seen under way");
    // The next start drops the unfinished snapshot's slot and takes a whole new one.
    node.spawn();
    let done = wait_until(T, || async {
        node.get("/v1/sources/app").await.1["parts"]["slot tributary_app"]["snapshot"]["state"] == "done"
    })
    .await;
    let (_, view) = node.get("/v1/sources/app").await;
    assert!(done, "{view}");
    let point = view["parts"]["slot tributary_app"]["snapshot"]["consistent_point"]
        .as_str()
        .unwrap()
        .to_owned();
    let evs = events(&node).await;
    let (new, old): (Vec<&Value>, Vec<&Value>) = evs.iter().partition(|e| e["data"]["commit_lsn"] == point.as_str());
    let whole: HashSet<&str> = new.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(
        (new.len(), whole.len()),
        (ROWS as usize, ROWS as usize),
        "the new snapshot holds every row once"
    );
    assert!(
        !old.is_empty() && old.len() < ROWS as usize,
        "the first snapshot was cut short: {} of its rows stored",
        old.len()
    );
    let partial = old.len();
    db.batch_execute("INSERT INTO orders VALUES (0, 'streamed')")
        .await
        .unwrap();
    let evs = wait_events(&node, partial + ROWS as usize + 1).await;
    assert_eq!(evs.last().unwrap()["kind"], "pg.public.orders.insert");
    node.terminate();
    // A fresh store with snapshot = true and the slot already there: refused, saying what to do.
    let other = TestNode::start(BIN, &source(&pg, &["public.orders"], extra));
    let refused = wait_until(T, || async {
        let (_, v) = other.get("/v1/sources/app").await;
        v.to_string().contains("already exists")
    })
    .await;
    let (_, v) = other.get("/v1/sources/app").await;
    assert!(refused, "{v}");
    assert!(v.to_string().contains("pg_drop_replication_slot"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cdc_health_shows_the_slots_retained_wal_and_lag_and_metrics_time_commits() {
    let pg = PgServer::start();
    let db = connect(&pg).await;
    outbox_table(&db).await;
    db.batch_execute("CREATE TABLE filler (id int, pad text)")
        .await
        .unwrap();
    let rx = Receiver::start(None, true).await.unwrap();
    let extra = format!(
        "max_retained_wal_bytes = 1048576\nslot_check_interval_ms = 200\n{OUTBOX}\n[[subscriptions]]\nname = \"hook\"\nfilter = {{ sources = [\"app\"] }}\n{}",
        tributary_testkit::webhook_sink(&rx.url(), crate::SECRET)
    );
    let node = TestNode::start(BIN, &source(&pg, &["public.event_outbox"], &extra));
    assert!(slot_active(&db).await);
    db.batch_execute(
        "INSERT INTO event_outbox (idempotency_key, kind, user_id, payload) VALUES ('k-1', 'a.b', 'u', '{}')",
    )
    .await
    .unwrap();
    wait_events(&node, 1).await;
    assert!(wait_until(T, || async { rx.total() >= 1 }).await);
    let part = "slot tributary_app";
    let ok = wait_until(T, || async {
        let (_, v) = node.get("/v1/sources/app").await;
        v["parts"][part]["lag_bytes"] == 0 && v["parts"][part]["active"] == true
    })
    .await;
    let (_, v) = node.get("/v1/sources/app").await;
    assert!(ok, "the slot never caught up: {v}");
    assert_eq!(node.get("/health").await.1["sources"]["app"]["status"], "ok");
    // An open transaction holds the slot's restart point while 5 MB of WAL is written past it.
    let holder = connect(&pg).await;
    holder
        .batch_execute("BEGIN; INSERT INTO event_outbox (idempotency_key, kind, payload) VALUES ('held', 'a.b', '{}')")
        .await
        .unwrap();
    db.batch_execute("INSERT INTO filler SELECT g, repeat(md5(g::text), 32) FROM generate_series(1, 5000) g")
        .await
        .unwrap();
    let degraded = wait_until(T, || async {
        let (_, h) = node.get("/health").await;
        h["sources"]["app"]["status"] == "degraded"
    })
    .await;
    let (_, h) = node.get("/health").await;
    assert!(degraded, "{h}");
    let reason = h["sources"]["app"]["reason"].as_str().unwrap();
    assert!(reason.contains("max_retained_wal_bytes = 1048576"), "{reason}");
    let (_, v) = node.get("/v1/sources/app").await;
    assert!(
        v["parts"][part]["retained_wal_bytes"].as_u64().unwrap() > 1_048_576,
        "{v}"
    );
    for field in ["server_lsn", "confirmed_flush_lsn", "restart_lsn", "lag_seconds"] {
        assert!(!v["parts"][part][field].is_null(), "{field}: {v}");
    }
    // The lag and the commit-to-stored and commit-to-delivered latencies on /metrics.
    let metrics = node
        .client()
        .get(format!("{}/metrics", node.url))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "tributary_source_lag_bytes{source=\"app\",part=\"slot tributary_app\"}",
        "tributary_source_lag_seconds{source=\"app\",part=\"slot tributary_app\"}",
        "tributary_source_occurred_to_stored_seconds_count{source=\"app\"} 1",
        "tributary_delivery_occurred_to_delivered_seconds_count{subscription=\"hook\"} 1",
    ] {
        assert!(metrics.contains(series), "{series} missing from /metrics");
    }
    // The transaction ends: its row is captured, and the slot lets the WAL go.
    holder.batch_execute("COMMIT").await.unwrap();
    wait_events(&node, 2).await;
    db.batch_execute("CHECKPOINT").await.unwrap();
    let recovered = wait_until(T, || async {
        let _ = db.batch_execute("CHECKPOINT").await;
        node.get("/health").await.1["sources"]["app"]["status"] == "ok"
    })
    .await;
    assert!(recovered, "{}", node.get("/health").await.1);
}
