//! The `postgres` sink against the real PostgreSQL server of the machine: `TRIBUTARY_POSTGRES_URL`, by
//! default `postgres://postgres@127.0.0.1:5432/postgres` (`./scripts/peers.sh` checks it runs, and starts it
//! if it can). Each test works in a schema of its own random name and drops it afterwards.
#![cfg(feature = "postgres")]

use serde_json::{Value, json};
use std::sync::Arc;
use tokio_postgres::Client;
use tributary_core::{Delivery, DeliveryStatus, EventId, NewEvent, Sink, StoredEvent, Timestamp};
use tributary_sinks::postgres::PostgresConfig;

fn url() -> String {
    std::env::var("TRIBUTARY_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn server() -> Client {
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

/// A fresh schema, dropped by [`Schema::drop_all`].
struct Schema {
    name: String,
    client: Client,
}

impl Schema {
    async fn new() -> Self {
        use std::hash::{BuildHasher, RandomState};
        let n = RandomState::new().hash_one(std::time::SystemTime::now());
        let name = format!("tributary_test_{}_{n:016x}", std::process::id());
        let client = server().await;
        client.batch_execute(&format!("CREATE SCHEMA {name}")).await.unwrap();
        Self { name, client }
    }

    fn sink(&self, extra: &str) -> Arc<dyn Sink> {
        let text = format!("url = {:?}\ntable = \"{}.inbox\"\n{extra}", url(), self.name);
        let config: PostgresConfig = toml::from_str(&text).unwrap();
        Arc::new(config.build().unwrap())
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {}.{table}", self.name);
        self.client.query_one(&sql, &[]).await.unwrap().get(0)
    }

    async fn ids(&self, table: &str) -> Vec<String> {
        let sql = format!("SELECT id FROM {}.{table} ORDER BY id", self.name);
        self.client
            .query(&sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    async fn drop_all(self) {
        let sql = format!("DROP SCHEMA {} CASCADE", self.name);
        self.client.batch_execute(&sql).await.unwrap();
    }
}

fn delivery(name: &str, seq: u64, data: Value) -> Delivery {
    Delivery {
        subscription: "to-pg".into(),
        message_id: format!("msg-{name}"),
        event: Arc::new(StoredEvent {
            seq,
            source: "orders".into(),
            ingested_at: Timestamp(1_800_000_000_123_456),
            event: NewEvent {
                id: EventId::sha256(name.as_bytes()),
                kind: "order.created".into(),
                key: None,
                occurred_at: None,
                position: None,
                payload: Vec::new(),
                data,
                tenant: None,
                retracts: None,
            },
        }),
        attempt: 1,
    }
}

fn id_of(d: &Delivery) -> String {
    d.event.event.id.to_hex()
}

#[tokio::test]
async fn an_event_becomes_one_row_with_the_documented_columns() {
    let schema = Schema::new().await;
    let s = schema.sink("");
    let mut d = delivery("full", 7, json!({"n": 5, "big": 12345678901234567890u64}));
    {
        let e = Arc::get_mut(&mut d.event).unwrap();
        e.event.key = Some("o-1".into());
        e.event.occurred_at = Some(Timestamp(1_700_000_000_654_321));
        e.event.payload = vec![0, 1, 2, 255];
        e.event.retracts = Some(EventId::sha256(b"older"));
    }
    let r = s.deliver(&d).await;
    assert_eq!(r.status, DeliveryStatus::Delivered, "{r:?}");
    let sql = format!(
        "SELECT id, seq, kind, source, key, (extract(epoch from occurred_at) * 1000000)::int8, \
         (extract(epoch from ingested_at) * 1000000)::int8, data::text, payload, retracts FROM {}.inbox",
        schema.name
    );
    let row = schema.client.query_one(&sql, &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), id_of(&d));
    assert_eq!(row.get::<_, i64>(1), 7);
    assert_eq!(
        (row.get::<_, String>(2), row.get::<_, String>(3)),
        ("order.created".into(), "orders".into())
    );
    assert_eq!(row.get::<_, Option<String>>(4).as_deref(), Some("o-1"));
    assert_eq!(
        row.get::<_, i64>(5),
        1_700_000_000_654_321,
        "occurred_at to the microsecond"
    );
    assert_eq!(
        row.get::<_, i64>(6),
        1_800_000_000_123_456,
        "ingested_at to the microsecond"
    );
    let data: Value = serde_json::from_str(&row.get::<_, String>(7)).unwrap();
    assert_eq!(data["n"], 5);
    assert_eq!(row.get::<_, Vec<u8>>(8), vec![0, 1, 2, 255]);
    assert_eq!(
        row.get::<_, Option<String>>(9),
        Some(EventId::sha256(b"older").to_hex())
    );
    // Without key, occurred_at and retracts: NULLs.
    let bare = delivery("bare", 8, json!(null));
    assert_eq!(s.deliver(&bare).await.status, DeliveryStatus::Delivered);
    let sql = format!(
        "SELECT key IS NULL AND occurred_at IS NULL AND retracts IS NULL FROM {}.inbox WHERE seq = 8",
        schema.name
    );
    assert!(schema.client.query_one(&sql, &[]).await.unwrap().get::<_, bool>(0));
    assert_eq!(s.describe(), format!("postgres {} table {}.inbox", url(), schema.name));
    schema.drop_all().await;
}

#[tokio::test]
async fn retries_replays_and_concurrent_deliveries_are_one_row_each() {
    let schema = Schema::new().await;
    let s = schema.sink("");
    let d = delivery("again", 1, json!({"n": 1}));
    for _ in 0..3 {
        assert_eq!(s.deliver(&d).await.status, DeliveryStatus::Delivered);
    }
    // A replay in a batch with new events (and the same event twice).
    let batch: Vec<Delivery> = vec![
        d.clone(),
        delivery("b1", 2, json!(1)),
        delivery("b2", 3, json!(2)),
        d.clone(),
    ];
    let reports = s.deliver_batch(&batch).await;
    assert!(
        reports.iter().all(|r| r.status == DeliveryStatus::Delivered),
        "{reports:?}"
    );
    assert_eq!(schema.count("inbox").await, 3);
    // Concurrent deliveries through the coalescer: each answered, each one row.
    let tasks: Vec<_> = (0..64u64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.deliver(&delivery(&format!("c{i}"), 10 + i, json!({"i": i}))).await })
        })
        .collect();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, DeliveryStatus::Delivered, "{r:?}");
    }
    assert_eq!(schema.count("inbox").await, 67);
    // Rows committed by one transaction share its xmin: the 64 concurrent deliveries were batched.
    let sql = format!(
        "SELECT count(DISTINCT xmin::text) FROM {}.inbox WHERE seq >= 10",
        schema.name
    );
    let transactions: i64 = schema.client.query_one(&sql, &[]).await.unwrap().get(0);
    assert!(
        transactions < 64,
        "64 concurrent deliveries took {transactions} transactions"
    );
    schema.drop_all().await;
}

#[tokio::test]
async fn the_statement_runs_once_per_inserted_event_and_a_failing_one_rejects_its_row_only() {
    let schema = Schema::new().await;
    let n = &schema.name;
    schema
        .client
        .batch_execute(&format!("CREATE TABLE {n}.effects (id text, body jsonb)"))
        .await
        .unwrap();
    // Fails (division by zero, SQLSTATE 22012) for events whose data says bad.
    let statement = format!(
        "INSERT INTO {n}.effects SELECT $1::jsonb #>> '{{data,id}}', $1::jsonb \
         WHERE 1 / (CASE WHEN $1::jsonb #>> '{{data,data,bad}}' = 'yes' THEN 0 ELSE 1 END) = 1"
    );
    let s = schema.sink(&format!("statement = {statement:?}"));
    let good: Vec<Delivery> = (0..4).map(|i| delivery(&format!("g{i}"), i, json!({"i": i}))).collect();
    let bad = delivery("bad", 9, json!({"bad": "yes"}));
    let mut batch = good.clone();
    batch.insert(2, bad.clone());
    let reports = s.deliver_batch(&batch).await;
    for (d, r) in batch.iter().zip(&reports) {
        if d.message_id == bad.message_id {
            assert_eq!(r.status, DeliveryStatus::Rejected, "{r:?}");
            let why = r.error.as_deref().unwrap();
            assert!(why.starts_with("statement: SQLSTATE 22012: division by zero"), "{why}");
        } else {
            assert_eq!(r.status, DeliveryStatus::Delivered, "{r:?}");
        }
    }
    let mut want: Vec<String> = good.iter().map(id_of).collect();
    want.sort();
    assert_eq!(
        schema.ids("inbox").await,
        want,
        "the rejected event's row was undone with its statement"
    );
    assert_eq!(schema.ids("effects").await, want);
    // Retried and replayed: no second side effect.
    for d in &good {
        assert_eq!(s.deliver(d).await.status, DeliveryStatus::Delivered);
    }
    s.deliver_batch(&good).await;
    assert_eq!(schema.count("effects").await, 4);
    let sql = format!("SELECT body->>'type', body #>> '{{data,seq}}' FROM {n}.effects WHERE id = $1");
    let row = schema.client.query_one(&sql, &[&id_of(&good[1])]).await.unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("order.created".into(), "1".into()),
        "$1 is the standard body"
    );
    // $1 as text, when the statement asks for text; a second parameter is refused.
    schema
        .client
        .batch_execute(&format!("CREATE TABLE {n}.texts (body text)"))
        .await
        .unwrap();
    let text = format!(
        "url = {:?}\ntable = \"{n}.inbox2\"\nstatement = \"INSERT INTO {n}.texts VALUES ($1)\"",
        url()
    );
    let as_text = PostgresConfig::build(&toml::from_str(&text).unwrap()).unwrap();
    assert_eq!(as_text.deliver(&good[0]).await.status, DeliveryStatus::Delivered);
    let body: String = schema
        .client
        .query_one(&format!("SELECT body FROM {n}.texts"), &[])
        .await
        .unwrap()
        .get(0);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["data"]["id"], id_of(&good[0]));
    let two = format!(
        "url = {:?}\ntable = \"{n}.inbox3\"\nstatement = \"SELECT $1::jsonb, $2::int\"",
        url()
    );
    let two = PostgresConfig::build(&toml::from_str(&two).unwrap()).unwrap();
    let r = two.deliver(&good[0]).await;
    assert_eq!(r.status, DeliveryStatus::Rejected, "{r:?}");
    assert!(
        r.error
            .unwrap()
            .contains("only $1 (the event's standard body) is defined")
    );
    schema.drop_all().await;
}

#[tokio::test]
async fn bad_data_rejects_its_row_and_a_bad_statement_rejects_every_new_row() {
    let schema = Schema::new().await;
    let s = schema.sink("");
    // PostgreSQL text cannot hold NUL: the server refuses that row (SQLSTATE 22P05 / 22021), not the others.
    let nul = delivery("nul", 1, json!({"s": "a\u{0}b"}));
    let batch = vec![delivery("ok1", 2, json!(1)), nul.clone(), delivery("ok2", 3, json!(2))];
    let reports = s.deliver_batch(&batch).await;
    assert_eq!(reports[0].status, DeliveryStatus::Delivered, "{reports:?}");
    assert_eq!(reports[2].status, DeliveryStatus::Delivered, "{reports:?}");
    assert_eq!(reports[1].status, DeliveryStatus::Rejected, "{reports:?}");
    let why = reports[1].error.as_deref().unwrap();
    assert!(why.contains("insert into") && why.contains("SQLSTATE 22"), "{why}");
    assert_eq!(schema.count("inbox").await, 2);
    // A statement that does not parse: every event it would run for is rejected with the server's words.
    let broken = schema.sink("statement = \"SELEC 1\"");
    let r = broken.deliver(&delivery("new", 4, json!(1))).await;
    assert_eq!(r.status, DeliveryStatus::Rejected, "{r:?}");
    assert!(r.error.as_deref().unwrap().contains("SQLSTATE 42601"), "{r:?}");
    assert!(
        broken
            .healthcheck()
            .await
            .unwrap_err()
            .contains("statement: SQLSTATE 42601")
    );
    // Rows already present are delivered: their statement ran (or had none) when they were written.
    assert_eq!(broken.deliver(&batch[0]).await.status, DeliveryStatus::Delivered);
    assert_eq!(schema.count("inbox").await, 2);
    schema.drop_all().await;
}

#[tokio::test]
async fn healthcheck_creates_the_table_and_names_a_wrong_column() {
    let schema = Schema::new().await;
    let n = &schema.name;
    let s = schema.sink("");
    s.healthcheck().await.unwrap();
    assert_eq!(schema.count("inbox").await, 0, "created");
    s.healthcheck().await.unwrap();
    for (ddl, says) in [
        (
            "ALTER TABLE {n}.inbox ALTER COLUMN seq TYPE integer",
            "column seq is integer, expected bigint",
        ),
        (
            "ALTER TABLE {n}.inbox DROP COLUMN retracts",
            "has no column retracts (text)",
        ),
        (
            "ALTER TABLE {n}.inbox ADD COLUMN extra int NOT NULL",
            "column extra (integer) is NOT NULL without a default",
        ),
        (
            "ALTER TABLE {n}.inbox DROP CONSTRAINT inbox_pkey",
            "column id is not its primary key",
        ),
        (
            "ALTER TABLE {n}.inbox ALTER COLUMN key SET NOT NULL",
            "column key is NOT NULL but events may have none",
        ),
    ] {
        let sql = format!("DROP TABLE IF EXISTS {n}.inbox; {}", schema_sql(n));
        schema.client.batch_execute(&sql).await.unwrap();
        schema.client.batch_execute(&ddl.replace("{n}", n)).await.unwrap();
        let e = s.healthcheck().await.unwrap_err();
        assert!(e.contains(says), "{ddl}: {e}");
        assert!(e.contains("point table at a new name"), "says what to do: {e}");
    }
    // An extra column with a default is fine.
    let sql = format!(
        "DROP TABLE {n}.inbox; {} ALTER TABLE {n}.inbox ADD COLUMN at timestamptz NOT NULL DEFAULT now();",
        schema_sql(n)
    );
    schema.client.batch_execute(&sql).await.unwrap();
    s.healthcheck().await.unwrap();
    assert_eq!(
        s.deliver(&delivery("x", 1, json!(1))).await.status,
        DeliveryStatus::Delivered
    );
    // A schema that does not exist: retriable, with the server's words.
    let config: PostgresConfig =
        toml::from_str(&format!("url = {:?}\ntable = \"no_such_schema_here.inbox\"", url())).unwrap();
    let missing = config.build().unwrap();
    assert!(missing.healthcheck().await.unwrap_err().contains("SQLSTATE 3F000"));
    let r = missing.deliver(&delivery("y", 1, json!(1))).await;
    assert_eq!(r.status, DeliveryStatus::Retriable, "{r:?}");
    schema.drop_all().await;
}

fn schema_sql(n: &str) -> String {
    format!(
        "CREATE TABLE {n}.inbox (id text PRIMARY KEY, seq bigint NOT NULL, kind text NOT NULL, source text NOT NULL, \
         key text, occurred_at timestamptz, ingested_at timestamptz NOT NULL, data jsonb NOT NULL, payload bytea NOT NULL, \
         retracts text);"
    )
}

#[tokio::test]
async fn a_dead_server_is_retriable() {
    // Nothing listens on port 1 of loopback.
    let config: PostgresConfig =
        toml::from_str("url = \"postgres://postgres:pw@127.0.0.1:1/app\"\ntable = \"inbox\"\ntimeout = \"2s\"")
            .unwrap();
    let dead = config.build().unwrap();
    let r = dead.deliver(&delivery("dead", 1, json!(1))).await;
    assert_eq!(r.status, DeliveryStatus::Retriable, "{r:?}");
    let why = r.error.unwrap();
    assert!(
        why.contains("postgres postgres://postgres:***@127.0.0.1:1/app table inbox"),
        "{why}"
    );
    assert!(!why.contains("pw"), "{why}");
    assert!(why.contains("Connection refused"), "the cause is kept: {why}");
    assert!(dead.healthcheck().await.is_err());
}
