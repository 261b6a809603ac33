//! The `postgres` sink on the running binary against the machine's PostgreSQL (`TRIBUTARY_POSTGRES_URL`, by
//! default `postgres://postgres@127.0.0.1:5432/postgres`; `./scripts/peers.sh` starts it when it can):
//! events posted to an http source arrive as rows exactly once, and the statement's side effects too, across
//! a SIGKILL during delivery; the sink is the admin's (a tenant key gets a 422 naming `sink.type`).

use crate::BIN;
use crate::control::{call, tenant_key};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tributary_testkit::{ADMIN_KEY, TestNode, wait_until};

const T: Duration = Duration::from_secs(60);

fn url() -> String {
    std::env::var("TRIBUTARY_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn postgres() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no PostgreSQL at {} ({e}): start it (pg_ctlcluster --skip-systemctl-redirect 15 main start) or set TRIBUTARY_POSTGRES_URL; ./scripts/peers.sh does this",
                url()
            )
        });
    tokio::spawn(connection);
    client
}

/// A fresh schema of a random name.
async fn schema(client: &tokio_postgres::Client, prefix: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    let n = RandomState::new().hash_one(std::time::SystemTime::now());
    let name = format!("{prefix}_{}_{n:016x}", std::process::id());
    client.batch_execute(&format!("CREATE SCHEMA {name}")).await.unwrap();
    name
}

/// Every value of `column` in `table`, with repeats.
async fn column(client: &tokio_postgres::Client, table: &str, column: &str) -> Vec<String> {
    let sql = format!("SELECT {column} FROM {table}");
    match client.query(&sql, &[]).await {
        Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
        Err(_) => Vec::new(), // not created yet
    }
}

/// The subscription has nothing left to deliver: its cursor is at the end and nothing is in flight.
async fn settled(node: &TestNode, name: &str) -> bool {
    let (_, sub) = node.get(&format!("/v1/subscriptions/{name}")).await;
    sub["backlog"] == 0 && sub["status"]["in_flight"] == 0 && sub["status"]["pending"] == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sink_writes_each_event_and_its_side_effect_once_across_a_sigkill() {
    let client = postgres().await;
    let s = schema(&client, "tributary_it").await;
    client
        .batch_execute(&format!("CREATE TABLE {s}.effects (event_id text, n bigint)"))
        .await
        .unwrap();
    let statement = format!(
        "INSERT INTO {s}.effects SELECT $1::jsonb #>> '{{data,id}}', ($1::jsonb #>> '{{data,data,n}}')::bigint"
    );
    let config = format!(
        "[[sources]]\nname = \"orders\"\ntype = \"http\"\ntenants = [\"*\"]\n\n[[subscriptions]]\nname = \"to-pg\"\nmax_in_flight = 64\n[subscriptions.sink]\ntype = \"postgres\"\nurl = {:?}\ntable = \"{s}.inbox\"\nstatement = {statement:?}\n",
        url()
    );
    let mut node = TestNode::start(BIN, &config);
    let mut acked = BTreeSet::new();
    for batch in 0..20 {
        let events: Vec<_> = (0..100)
            .map(|i| json!({"kind": "order.created", "key": format!("o-{batch}-{i}"), "data": {"n": batch * 100 + i}}))
            .collect();
        let (st, body) = node.post_events("orders", &json!(events)).await;
        assert_eq!(st, 202, "{body}");
        acked.extend(
            body["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned()),
        );
        if batch == 10 {
            node.kill(); // during delivery: some rows are committed, their cursor may not be
            node.spawn();
        }
    }
    assert_eq!(acked.len(), 2000);
    let inbox = format!("{s}.inbox");
    let effects = format!("{s}.effects");
    assert!(
        wait_until(T, || async { column(&client, &inbox, "id").await.len() >= 2000 }).await,
        "every acknowledged event reaches the table"
    );
    assert!(wait_until(T, || settled(&node, "to-pg")).await, "the worker drains");
    let rows = column(&client, &inbox, "id").await;
    let distinct: BTreeSet<String> = rows.iter().cloned().collect();
    assert_eq!(rows.len(), 2000);
    assert_eq!(distinct, acked, "each acknowledged event is one row");
    let side = column(&client, &effects, "event_id").await;
    let side_distinct: BTreeSet<String> = side.iter().cloned().collect();
    assert_eq!(
        side.len(),
        2000,
        "the statement ran exactly once per event (runs: {}, distinct events: {})",
        side.len(),
        side_distinct.len()
    );
    assert_eq!(side_distinct, acked);
    // Rows committed together share their transaction's xmin: the worker's concurrent deliveries were
    // written in batches (about 200 transactions for the 2,000 rows here).
    let sql = format!("SELECT count(DISTINCT xmin::text) FROM {inbox}");
    let transactions: i64 = client.query_one(&sql, &[]).await.unwrap().get(0);
    assert!(transactions < 2000, "2,000 deliveries took {transactions} transactions");
    let (_, sub) = node.get("/v1/subscriptions/to-pg").await;
    assert_eq!(sub["sink"], format!("postgres {} table {s}.inbox", url()));
    client.batch_execute(&format!("DROP SCHEMA {s} CASCADE")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sink_is_for_the_admin_and_a_failing_statement_is_a_dead_letter() {
    let client = postgres().await;
    let s = schema(&client, "tributary_it_admin").await;
    let node = TestNode::start(
        BIN,
        "[[sources]]\nname = \"orders\"\ntype = \"http\"\ntenants = [\"*\"]\n",
    );
    let key = tenant_key(&node, "acme").await;
    // Fails with a division by zero for an event whose data has d = 0.
    let sub = json!({
        "name": "mine",
        "sink": {
            "type": "postgres",
            "url": url(),
            "table": format!("{s}.inbox"),
            "statement": "SELECT 1 / ($1::jsonb #>> '{data,data,d}')::int",
        },
    });
    let (st, err) = call(&node, "POST", "/v1/subscriptions", &key, Some(sub.clone())).await;
    assert_eq!(st, 422, "{err}");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("sink.type: only the admin may create postgres subscriptions"),
        "{msg}"
    );
    let (st, view) = call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(sub)).await;
    assert_eq!(st, 201, "{view}");
    let (st, _) = node
        .post_events(
            "orders",
            &json!([{"kind": "a", "data": {"d": 1}}, {"kind": "b", "data": {"d": 0}}]),
        )
        .await;
    assert_eq!(st, 202);
    let inbox = format!("{s}.inbox");
    assert!(wait_until(T, || async { column(&client, &inbox, "kind").await == ["a"] }).await);
    let dead = || async {
        let (_, d) = call(&node, "GET", "/v1/subscriptions/mine/dead-letters", ADMIN_KEY, None).await;
        d
    };
    assert!(
        wait_until(T, || async {
            dead().await["dead_letters"].as_array().is_some_and(|a| a.len() == 1)
        })
        .await
    );
    let d = dead().await;
    let error = d["dead_letters"][0]["error"].as_str().unwrap();
    assert!(error.contains("statement: SQLSTATE 22012: division by zero"), "{d}");
    assert_eq!(
        column(&client, &inbox, "kind").await,
        ["a"],
        "the failed event's row was undone"
    );
    client.batch_execute(&format!("DROP SCHEMA {s} CASCADE")).await.unwrap();
}

/// The compliance kit (ADR 0006) against the machine's PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sink_passes_the_compliance_kit() {
    let client = postgres().await;
    let s = schema(&client, "tributary_compliance").await;
    let table = format!("{s}.inbox");
    let case = tributary_testkit::compliance::SinkCase {
        type_name: "postgres",
        sink: format!("type = \"postgres\"\nurl = {:?}\ntable = {table:?}\n", url()),
        unresolved: None,
        exactly_once: true,
    };
    tributary_testkit::compliance::check_sink(BIN, &case, || {
        let table = table.clone();
        async move { column(&postgres().await, &table, "id").await }
    })
    .await;
    client.batch_execute(&format!("DROP SCHEMA {s} CASCADE")).await.unwrap();
}
