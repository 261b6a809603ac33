//! The `postgres` source on the running binary against a private PostgreSQL the test starts itself
//! (`PgServer`: initdb in a temporary directory, `wal_level = logical`, a free port): table changes with
//! their ids, keys and typed columns, outbox rows and bad ones, ALTER TABLE and TOAST values mid-stream.
//! Restarts, SIGKILL and the server's own restart are in `pg_cdc_crash.rs`.

use crate::BIN;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tributary_testkit::{PgServer, TestNode, wait_until};

pub const T: Duration = Duration::from_secs(60);

pub async fn connect(pg: &PgServer) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&pg.url("postgres"), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the private PostgreSQL: {e}\n{}", pg.log()));
    tokio::spawn(connection);
    client
}

/// A `postgres` source section named `app` with extra lines.
pub fn source(pg: &PgServer, tables: &[&str], extra: &str) -> String {
    format!(
        "[[sources]]\nname = \"app\"\ntype = \"postgres\"\ntenants = [\"*\"]\nurl = {:?}\nslot = \"tributary_app\"\npublication = \"tributary_app\"\ntables = {tables:?}\nstatus_interval_ms = 200\nreconnect_max_ms = 500\n{extra}\n",
        pg.url("postgres")
    )
}

/// Every event of source `app`, in log order.
pub async fn events(node: &TestNode) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (st, page) = node
            .get(&format!("/v1/events?after={after}&limit=1000&source=app"))
            .await;
        assert_eq!(st, 200, "{page}");
        let batch = page["events"].as_array().cloned().unwrap_or_default();
        let next = page["next_after"].as_u64().unwrap_or(after);
        out.extend(batch);
        if next == after || next >= page["last_seq"].as_u64().unwrap_or(0) {
            return out;
        }
        after = next;
    }
}

pub async fn wait_events(node: &TestNode, n: usize) -> Vec<Value> {
    let ok = wait_until(T, || async { events(node).await.len() >= n }).await;
    let got = events(node).await;
    assert!(ok, "expected {n} events, got {}: {got:#?}", got.len());
    got
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The documented table-change id: sha256 of `<commit LSN>/<ordinal>`, which is also the position.
fn check_table_id(e: &Value) {
    let position = e["position"].as_str().unwrap();
    assert_eq!(e["id"], sha256_hex(position), "{e}");
    assert!(
        position.starts_with(&format!("{}/", e["data"]["commit_lsn"].as_str().unwrap())),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cdc_table_changes_have_their_kinds_ids_keys_and_typed_columns() {
    let pg = PgServer::start();
    let db = connect(&pg).await;
    db.batch_execute(
        "CREATE TABLE orders (id bigint PRIMARY KEY, note text, amount numeric(20,4), doc jsonb, js json, paid boolean,
            at timestamptz, local timestamp, day date, raw bytea, tags text[], nums int[], ratio float8, small int2,
            uid uuid);
         CREATE TABLE pairs (a text, b int, v text, PRIMARY KEY (a, b));
         ALTER TABLE pairs REPLICA IDENTITY FULL;",
    )
    .await
    .unwrap();
    let mut node = TestNode::start(BIN, &source(&pg, &["public.orders", "pairs"], ""));
    // The source created its slot (and publication) once running.
    assert!(
        wait_until(T, || async {
            db.query_opt(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'tributary_app' AND active",
                &[],
            )
            .await
            .unwrap()
            .is_some()
        })
        .await,
        "the slot was not created and used"
    );
    db.batch_execute(
        "BEGIN;
         INSERT INTO orders VALUES (1, 'first', 12345678901234.5678, '{\"a\": [1, 2]}', '[true]', true,
            '2026-12-02 06:38:10.123456+00', '2026-12-02 06:38:10', '2026-12-02', '\\xdeadbeef', '{a,\"b c\",NULL}',
            '{{1,2},{3,4}}', 1.5, 7, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
         INSERT INTO orders (id) VALUES (2);
         COMMIT;
         UPDATE orders SET note = 'second' WHERE id = 2;
         DELETE FROM orders WHERE id = 1;
         INSERT INTO pairs VALUES ('x', 1, 'old');
         UPDATE pairs SET v = 'new' WHERE a = 'x';
         DELETE FROM pairs;
         TRUNCATE orders;",
    )
    .await
    .unwrap();
    let evs = wait_events(&node, 8).await;
    let kinds: Vec<&str> = evs.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "pg.public.orders.insert",
            "pg.public.orders.insert",
            "pg.public.orders.update",
            "pg.public.orders.delete",
            "pg.public.pairs.insert",
            "pg.public.pairs.update",
            "pg.public.pairs.delete",
            "pg.public.orders.truncate",
        ]
    );
    for e in &evs {
        check_table_id(e);
    }
    // One transaction, two changes: the same commit LSN, ordinals 1 and 2.
    assert_eq!(evs[0]["data"]["commit_lsn"], evs[1]["data"]["commit_lsn"]);
    assert!(evs[0]["position"].as_str().unwrap().ends_with("/1"));
    assert!(evs[1]["position"].as_str().unwrap().ends_with("/2"));
    assert_eq!(evs[0]["data"]["xid"], evs[1]["data"]["xid"]);
    assert_ne!(evs[0]["data"]["commit_lsn"], evs[2]["data"]["commit_lsn"]);
    assert_eq!(evs[0]["key"], "1");
    assert_eq!(evs[0]["occurred_at"], evs[1]["occurred_at"]);
    let new = &evs[0]["data"]["new"];
    assert_eq!(
        *new,
        json!({
            "id": 1, "note": "first", "amount": "12345678901234.5678", "doc": {"a": [1, 2]}, "js": [true],
            "paid": true, "at": "2026-12-02T06:38:10.123456Z", "local": "2026-12-02T06:38:10", "day": "2026-12-02",
            "raw": "deadbeef", "tags": ["a", "b c", null], "nums": [[1, 2], [3, 4]], "ratio": 1.5, "small": 7,
            "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        })
    );
    assert_eq!(evs[0]["data"]["primary_key"], json!({"id": 1}));
    assert_eq!(evs[0]["data"]["old"], json!(null));
    assert_eq!(
        (evs[0]["data"]["schema"].as_str(), evs[0]["data"]["table"].as_str()),
        (Some("public"), Some("orders"))
    );
    // Default replica identity: no old row for an update, the key for a delete.
    assert_eq!(evs[2]["data"]["op"], "update");
    assert_eq!(evs[2]["data"]["old"], json!(null));
    assert_eq!(evs[2]["data"]["new"]["note"], "second");
    assert_eq!(evs[3]["data"]["old"], json!({"id": 1}));
    assert_eq!(evs[3]["data"]["new"], json!(null));
    assert_eq!(evs[3]["key"], "1");
    // REPLICA IDENTITY FULL: the old row; a composite key is a JSON array.
    assert_eq!(evs[5]["data"]["old"], json!({"a": "x", "b": 1, "v": "old"}));
    assert_eq!(evs[5]["data"]["new"], json!({"a": "x", "b": 1, "v": "new"}));
    assert_eq!(evs[5]["key"], r#"["x","1"]"#);
    assert_eq!(evs[6]["data"]["old"], json!({"a": "x", "b": 1, "v": "new"}));
    assert_eq!(evs[7]["data"]["op"], "truncate");
    node.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cdc_outbox_rows_become_events_deletes_are_ignored_and_bad_rows_are_rejected() {
    let pg = PgServer::start();
    let db = connect(&pg).await;
    db.batch_execute(
        "CREATE TABLE event_outbox (seq bigserial PRIMARY KEY, idempotency_key text, kind text, user_id text,
            payload jsonb, tenant_id text, created_at timestamptz DEFAULT now());",
    )
    .await
    .unwrap();
    let outbox = "[sources.outbox]\ntable = \"public.event_outbox\"\nid = \"idempotency_key\"\nkind = \"kind\"\nkey = \"user_id\"\npayload = \"payload\"\ntenant = \"tenant_id\"\n";
    let mut node = TestNode::start(BIN, &source(&pg, &["public.event_outbox"], outbox));
    assert!(
        wait_until(T, || async {
            events(&node).await.is_empty() && node.get("/health").await.0 == 200
        })
        .await
    );
    assert!(
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
    );
    db.batch_execute(
        "BEGIN;
         INSERT INTO event_outbox (idempotency_key, kind, user_id, payload, tenant_id)
           VALUES ('k-1', 'miner.portfolio_updated', 'user-7', '{\"value\": 10}', 'acme'),
                  ('k-2', 'treasury.moved', NULL, '[1, 2]', NULL);
         COMMIT;
         INSERT INTO event_outbox (idempotency_key, kind, user_id, payload) VALUES (NULL, 'a.b', 'u', '{}');
         INSERT INTO event_outbox (idempotency_key, kind, user_id, payload) VALUES ('k-3', 'not a kind!', 'u', '{}');
         INSERT INTO event_outbox (idempotency_key, kind, user_id, payload) VALUES ('k-4', 'a.b', 'u', NULL);
         INSERT INTO event_outbox (idempotency_key, kind, user_id, payload, tenant_id) VALUES ('k-5', 'a.b', 'u', '{}', 'bad tenant');
         DELETE FROM event_outbox;
         INSERT INTO event_outbox (idempotency_key, kind, user_id, payload) VALUES ('k-6', 'miner.hashrate', 'user-8', '{\"th\": 1.25}');",
    )
    .await
    .unwrap();
    let evs = wait_events(&node, 3).await;
    let rejects = node.get("/v1/sources/app/rejects").await.1["rejects"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(evs.len(), 3, "deletes add no event: {evs:#?}");
    assert_eq!(evs[0]["id"], sha256_hex("k-1"));
    assert_eq!(evs[0]["kind"], "outbox.miner.portfolio_updated");
    assert_eq!(evs[0]["key"], "user-7");
    assert_eq!(evs[0]["tenant"], "acme");
    assert_eq!(evs[0]["data"], json!({"value": 10}));
    assert_eq!(evs[1]["id"], sha256_hex("k-2"));
    assert_eq!(evs[1]["key"], Value::Null);
    assert_eq!(evs[1]["tenant"], Value::Null);
    assert_eq!(evs[1]["data"], json!([1, 2]));
    assert_eq!(evs[2]["id"], sha256_hex("k-6"));
    assert_eq!(evs[2]["kind"], "outbox.miner.hashrate");
    assert_eq!(
        evs[0]["occurred_at"], evs[1]["occurred_at"],
        "one transaction, one commit time"
    );
    let reasons: Vec<&str> = rejects.iter().map(|r| r["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons.len(), 4, "{rejects:#?}");
    for (reason, column) in reasons
        .iter()
        .zip(["outbox.id", "outbox.kind", "outbox.payload", "outbox.tenant"])
    {
        assert!(reason.contains(column), "{reason:?} should name {column}");
    }
    assert!(
        rejects[1]["excerpt"].as_str().unwrap().contains("not a kind!"),
        "{rejects:#?}"
    );
    node.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_cdc_follows_alter_table_and_tells_unchanged_toast_values_from_null() {
    let pg = PgServer::start();
    let db = connect(&pg).await;
    db.batch_execute("CREATE TABLE docs (id int PRIMARY KEY, body text, n int);")
        .await
        .unwrap();
    let mut node = TestNode::start(BIN, &source(&pg, &["docs"], ""));
    assert!(
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
    );
    // An incompressible 100 kB text is stored out of line (TOAST); an update of another column does not
    // send it again.
    let big: String = (0..100_000u32)
        .map(|i| char::from(b'a' + ((i.wrapping_mul(2_654_435_761) >> 7) % 26) as u8))
        .collect();
    db.execute("INSERT INTO docs VALUES (1, $1, 0)", &[&big]).await.unwrap();
    db.batch_execute(
        "UPDATE docs SET n = 1 WHERE id = 1;
         UPDATE docs SET body = NULL, n = 2 WHERE id = 1;
         ALTER TABLE docs ADD COLUMN extra jsonb DEFAULT '{\"v\": 1}';
         INSERT INTO docs (id, n) VALUES (2, 3);
         ALTER TABLE docs DROP COLUMN n;
         ALTER TABLE docs ALTER COLUMN body TYPE varchar(200000);
         INSERT INTO docs (id, body) VALUES (3, 'short');",
    )
    .await
    .unwrap();
    let evs = wait_events(&node, 5).await;
    assert_eq!(evs[0]["data"]["new"]["body"].as_str().map(str::len), Some(100_000));
    assert_eq!(evs[0]["data"].get("unchanged_toast"), None);
    // Unchanged TOAST: left out of `new` and named, unlike a NULL.
    assert_eq!(evs[1]["data"]["new"], json!({"id": 1, "n": 1}));
    assert_eq!(evs[1]["data"]["unchanged_toast"], json!(["body"]));
    assert_eq!(evs[2]["data"]["new"], json!({"id": 1, "body": null, "n": 2}));
    assert_eq!(evs[2]["data"].get("unchanged_toast"), None);
    // After ALTER TABLE the rows have the new shape.
    assert_eq!(
        evs[3]["data"]["new"],
        json!({"id": 2, "body": null, "n": 3, "extra": {"v": 1}})
    );
    assert_eq!(
        evs[4]["data"]["new"],
        json!({"id": 3, "body": "short", "extra": {"v": 1}})
    );
    node.terminate();
}

/// `config/outbox-to-kafka.example.toml` (HashInsight's topology) is a valid config.
#[cfg(all(feature = "kafka", feature = "postgres"))]
#[test]
fn pg_cdc_outbox_to_kafka_example_validates() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/outbox-to-kafka.example.toml");
    let out = std::process::Command::new(BIN)
        .args(["validate", "--config", example])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
