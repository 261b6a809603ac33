//! The `postgres` source across failures, on a private PostgreSQL: SIGKILL and restarts of tributary
//! during capture lose nothing and store nothing twice; a PostgreSQL restart during capture is resumed;
//! an idle slot's confirmed position follows the server's WAL (keepalives are answered); a missing slot
//! stops the source with what to do, or is recreated with `recreate_slot = true` and the gap reported; a
//! large transaction is appended in pieces without holding it in memory.

use super::pg_cdc::{T, connect, events, sha256_hex, source, wait_events};
use crate::BIN;
use std::collections::BTreeSet;
use tributary_testkit::{PgServer, TestNode, wait_until};

const OUTBOX: &str = "[sources.outbox]\ntable = \"public.event_outbox\"\nid = \"idempotency_key\"\nkind = \"kind\"\nkey = \"user_id\"\npayload = \"payload\"\n";

const CREATE_OUTBOX: &str = "CREATE TABLE event_outbox (seq bigserial PRIMARY KEY, idempotency_key text NOT NULL,
    kind text NOT NULL, user_id text, payload jsonb NOT NULL);";

async fn slot_active(db: &tokio_postgres::Client) -> bool {
    db.query_opt(
        "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'tributary_app' AND active",
        &[],
    )
    .await
    .map(|r| r.is_some())
    .unwrap_or(false)
}

/// Inserts outbox rows `from..to` in transactions of 1 to 7 rows, `pace` apart; returns the ids committed.
async fn write_outbox_paced(
    db: &tokio_postgres::Client,
    from: usize,
    to: usize,
    pace: std::time::Duration,
) -> Vec<String> {
    let mut ids = Vec::new();
    let mut i = from;
    while i < to {
        let n = (1 + i % 7).min(to - i);
        let values: Vec<String> = (i..i + n)
            .map(|j| {
                format!(
                    "('k-{j}', 'miner.portfolio_updated', 'user-{}', '{{\"n\": {j}}}')",
                    j % 13
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO event_outbox (idempotency_key, kind, user_id, payload) VALUES {}",
            values.join(", ")
        );
        if db.batch_execute(&sql).await.is_err() {
            break; // the server went away: what committed is what counts
        }
        ids.extend((i..i + n).map(|j| format!("k-{j}")));
        i += n;
        if !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
    }
    ids
}

async fn write_outbox(db: &tokio_postgres::Client, from: usize, to: usize) -> Vec<String> {
    write_outbox_paced(db, from, to, std::time::Duration::ZERO).await
}

/// Every event id exactly once, and exactly the expected ones.
fn assert_exactly(evs: &[serde_json::Value], ids: &[String]) {
    let got: Vec<String> = evs.iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect();
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "an event was stored twice");
    let want: BTreeSet<String> = ids.iter().map(|k| sha256_hex(k)).collect();
    let got: BTreeSet<String> = got.into_iter().collect();
    let missing = want.difference(&got).count();
    let extra = got.difference(&want).count();
    assert_eq!((missing, extra), (0, 0), "{missing} events lost, {extra} unexpected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cdc_sigkill_and_restarts_during_capture_lose_nothing_and_store_nothing_twice() {
    let pg = PgServer::start();
    let db = connect(&pg).await;
    db.batch_execute(CREATE_OUTBOX).await.unwrap();
    let mut node = TestNode::start(BIN, &source(&pg, &["event_outbox"], OUTBOX));
    assert!(
        wait_until(T, || slot_active(&db)).await,
        "the source did not start streaming"
    );
    let writer_db = connect(&pg).await;
    // Rows keep coming for a few seconds (a transaction every few milliseconds).
    let writer =
        tokio::spawn(async move { write_outbox_paced(&writer_db, 0, 3000, std::time::Duration::from_millis(3)).await });
    // Kill the node three times and stop it cleanly once while rows keep coming.
    for round in 0..4 {
        let before = events(&node).await.len();
        let progressed = wait_until(T, || async {
            events(&node).await.len() > before || writer.is_finished()
        })
        .await;
        assert!(
            progressed,
            "no progress in round {round}: {}",
            node.get("/health").await.1
        );
        if round == 2 {
            node.terminate();
        } else {
            node.kill();
        }
        node.spawn();
    }
    let ids = writer.await.unwrap();
    assert_eq!(ids.len(), 3000);
    let evs = wait_events(&node, ids.len()).await;
    assert_exactly(&evs, &ids);
    // Per aggregate key, commit order is kept.
    for key in ["user-1", "user-5"] {
        let ns: Vec<u64> = evs
            .iter()
            .filter(|e| e["key"] == key)
            .map(|e| e["data"]["n"].as_u64().unwrap())
            .collect();
        assert!(ns.windows(2).all(|w| w[0] < w[1]), "{key}: {ns:?}");
    }
    // Nothing more arrives: one last restart adds nothing.
    node.kill();
    node.spawn();
    assert!(wait_until(T, || slot_active(&db)).await);
    write_outbox(&db, 3000, 3001).await;
    let evs = wait_events(&node, 3001).await;
    assert_eq!(evs.len(), 3001);
    node.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cdc_resumes_after_a_postgres_restart_during_capture() {
    let mut pg = PgServer::start();
    let db = connect(&pg).await;
    db.batch_execute(CREATE_OUTBOX).await.unwrap();
    let mut node = TestNode::start(BIN, &source(&pg, &["event_outbox"], OUTBOX));
    assert!(wait_until(T, || slot_active(&db)).await);
    let writer_db = connect(&pg).await;
    let writer = tokio::spawn(async move { write_outbox(&writer_db, 0, 1_000_000).await });
    assert!(wait_until(T, || async { events(&node).await.len() > 200 }).await);
    // A crash of the server (immediate stop) while rows are being written and captured.
    pg.stop();
    let _ = writer.await.unwrap();
    pg.resume();
    let db = connect(&pg).await;
    // What survived the crash is what must be captured.
    let committed: Vec<String> = db
        .query("SELECT idempotency_key FROM event_outbox ORDER BY seq", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let more = write_outbox(&db, 2_000_000, 2_000_100).await;
    let all: Vec<String> = committed.into_iter().chain(more).collect();
    let evs = wait_events(&node, all.len()).await;
    assert_exactly(&evs, &all);
    let (_, health) = node.get("/health").await;
    assert_eq!(health["sources"]["app"]["status"], "ok", "{health}");
    node.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cdc_idle_slot_confirms_past_wal_it_does_not_capture() {
    let pg = PgServer::start();
    let db = connect(&pg).await;
    db.batch_execute(&format!("{CREATE_OUTBOX} CREATE TABLE other (v text);"))
        .await
        .unwrap();
    let mut node = TestNode::start(BIN, &source(&pg, &["event_outbox"], OUTBOX));
    assert!(wait_until(T, || slot_active(&db)).await);
    // WAL the publication does not cover: only keepalives move the slot past it.
    db.batch_execute("INSERT INTO other SELECT repeat('x', 100) FROM generate_series(1, 20000)")
        .await
        .unwrap();
    let target: String = db
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    let passed = wait_until(T, || async {
        db.query_one(
            "SELECT confirmed_flush_lsn >= $1::text::pg_lsn FROM pg_replication_slots WHERE slot_name = 'tributary_app'",
            &[&target],
        )
        .await
        .map(|r| r.get::<_, bool>(0))
        .unwrap_or(false)
    })
    .await;
    assert!(passed, "the idle slot's confirmed_flush_lsn did not reach {target}");
    node.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cdc_missing_slot_stops_the_source_unless_recreate_slot_and_then_reports_the_gap() {
    let pg = PgServer::start();
    let db = connect(&pg).await;
    db.batch_execute(CREATE_OUTBOX).await.unwrap();
    let mut node = TestNode::start(
        BIN,
        &source(&pg, &["event_outbox"], &format!("recreate_slot = false\n{OUTBOX}")),
    );
    assert!(wait_until(T, || slot_active(&db)).await);
    write_outbox(&db, 0, 1).await;
    wait_events(&node, 1).await;
    node.terminate();
    db.batch_execute("SELECT pg_drop_replication_slot('tributary_app')")
        .await
        .unwrap();
    write_outbox(&db, 1, 2).await; // lost with the slot
    node.spawn();
    let failed = wait_until(T, || async {
        let (_, h) = node.get("/health").await;
        h["sources"]["app"]["status"] == "failed"
    })
    .await;
    let (_, health) = node.get("/health").await;
    assert!(failed, "{health}");
    let message = health["sources"]["app"].to_string();
    assert!(
        message.contains("recreate_slot = true") && message.contains("is gone"),
        "{message}"
    );
    assert!(!slot_active(&db).await);
    node.terminate();
    let config = std::fs::read_to_string(node.config_path()).unwrap();
    std::fs::write(
        node.config_path(),
        config.replace("recreate_slot = false", "recreate_slot = true"),
    )
    .unwrap();
    node.spawn();
    assert!(wait_until(T, || slot_active(&db)).await);
    let gap = wait_until(T, || async {
        let (_, r) = node.get("/v1/sources/app/rejects").await;
        r["rejects"].to_string().contains("may not have been captured")
    })
    .await;
    assert!(gap, "the recreated slot's gap is not reported");
    write_outbox(&db, 2, 3).await;
    let evs = wait_events(&node, 2).await;
    assert_exactly(&evs, &["k-0".to_owned(), "k-2".to_owned()]);
    node.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cdc_a_large_transaction_is_streamed_and_appended_in_pieces_within_bounded_memory() {
    // A small logical_decoding_work_mem makes the server stream the transaction while it runs (protocol 2).
    let pg = PgServer::start_with("-c logical_decoding_work_mem=64kB");
    let db = connect(&pg).await;
    db.batch_execute("CREATE TABLE bulk (id bigint PRIMARY KEY, v text);")
        .await
        .unwrap();
    let mut node = TestNode::start(BIN, &source(&pg, &["bulk"], "max_batch_events = 5000"));
    assert!(wait_until(T, || slot_active(&db)).await);
    const ROWS: u64 = 1_000_000;
    // A streamed transaction that aborts adds nothing; in the one that commits, a subtransaction rolled
    // back adds nothing either.
    db.batch_execute("BEGIN; INSERT INTO bulk SELECT g, 'gone' FROM generate_series(1, 20000) g; ROLLBACK;")
        .await
        .unwrap();
    db.batch_execute(&format!(
        "BEGIN;
         INSERT INTO bulk SELECT g, md5(g::text) FROM generate_series(1, {half}) g;
         SAVEPOINT s;
         INSERT INTO bulk SELECT g, 'rolled back' FROM generate_series({ROWS} + 1, {ROWS} + 20000) g;
         ROLLBACK TO SAVEPOINT s;
         INSERT INTO bulk SELECT g, md5(g::text) FROM generate_series({half} + 1, {ROWS}) g;
         COMMIT;
         INSERT INTO bulk VALUES (0, 'after');",
        half = ROWS / 2
    ))
    .await
    .unwrap();
    let done = wait_until(std::time::Duration::from_secs(600), || async {
        count_stored(&node).await > ROWS
    })
    .await;
    assert!(
        done,
        "the transaction's {ROWS} rows were not all stored: {}",
        count_stored(&node).await
    );
    let streamed: i64 = db
        .query_one(
            "SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = 'tributary_app'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(streamed >= 1, "the server streamed no transaction");
    // Exactly the committed rows and the one after: an aborted or rolled-back row would be one more.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(count_stored(&node).await, ROWS + 1, "aborted rows were captured");
    let page = |after: u64| {
        let node = &node;
        async move {
            let (st, page) = node.get(&format!("/v1/events?after={after}&limit=2")).await;
            assert_eq!(st, 200, "{page}");
            page["events"].as_array().cloned().unwrap()
        }
    };
    let first = page(0).await;
    let last = page(ROWS - 1).await;
    assert_eq!(last[1]["data"]["new"]["v"], "after");
    // One commit LSN for the whole streamed transaction, ordinals 1..=ROWS in row order.
    let lsn = first[0]["data"]["commit_lsn"].clone();
    assert_eq!(last[0]["data"]["commit_lsn"], lsn);
    assert_eq!(first[0]["position"], format!("{}/1", lsn.as_str().unwrap()));
    assert_eq!(first[1]["data"]["new"]["id"], 2);
    assert_eq!(last[0]["data"]["new"]["id"], ROWS);
    assert_eq!(last[0]["position"], format!("{}/{ROWS}", lsn.as_str().unwrap()));
    let peak = node.memory("VmHWM").unwrap();
    assert!(peak < 300 << 20, "peak RSS {} MB", peak >> 20);
    node.terminate();
}

/// Events in the log (this node has only this source).
async fn count_stored(node: &TestNode) -> u64 {
    node.get("/v1/events?after=0&limit=1").await.1["last_seq"]
        .as_u64()
        .unwrap_or(0)
}
