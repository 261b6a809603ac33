//! The README's "PostgreSQL outbox to Kafka and to an exactly-once consumer" on the running binary:
//! `config/outbox-to-kafka.example.toml` as shipped (only its addresses pointed at a private PostgreSQL
//! and tansu), the databases set up as the README says, an outbox row followed to the Kafka topic
//! `events.miner` (read by confluent-kafka) and to the consumer's `portfolio` table, exactly once, and a
//! row the consumer refuses followed to the dead letters, `tributary dlq stats` and `dlq replay --dry-run`.

use crate::BIN;
use crate::pg_cdc::{connect, sha256_hex, wait_events};
use serde_json::Value;
use std::time::Duration;
use tributary_testkit::{ADMIN_KEY, PgServer, Tansu, TestNode, kafka_read, python, wait_until};

const T: Duration = Duration::from_secs(90);

/// The example without its `[node]` section, pointed at `pg` and `brokers`, with no password variable
/// (the private server trusts loopback).
fn example(pg: &PgServer, brokers: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/outbox-to-kafka.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let body = &text[text.find("[[sources]]").expect("the example has a source")..];
    assert_eq!(
        body.matches("127.0.0.1:5432").count(),
        2,
        "the source's and the consumer's URLs"
    );
    assert!(body.contains("password_env = \"APP_PG_PASSWORD\"\n"));
    body.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", pg.port))
        .replace("brokers = \"127.0.0.1:9092\"", &format!("brokers = {brokers:?}"))
        .replace("password_env = \"APP_PG_PASSWORD\"\n", "")
}

/// The CLI against `node` with the admin key.
async fn cli(node: &TestNode, args: &[&str]) -> Value {
    let out = tokio::process::Command::new(BIN)
        .args(["--url", &node.url, "--key", ADMIN_KEY, "--json"])
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_outbox_example_reaches_kafka_and_the_exactly_once_consumer() {
    let pg = PgServer::start();
    let tansu = Tansu::start();
    let admin = connect(&pg).await;
    // The README's step 1, on the private server.
    // CREATE DATABASE runs outside a transaction: one statement at a time.
    for sql in [
        "CREATE DATABASE app",
        "CREATE ROLE tributary WITH LOGIN REPLICATION",
        "CREATE ROLE consumer WITH LOGIN",
        "CREATE DATABASE consumer OWNER consumer",
    ] {
        admin.batch_execute(sql).await.unwrap();
    }
    let db = |name: &str, user: &str| {
        let url = pg.url(name).replacen("postgres@", &format!("{user}@"), 1);
        async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client
        }
    };
    let app = db("app", "postgres").await;
    app.batch_execute(
        "CREATE TABLE event_outbox (
           id bigserial PRIMARY KEY, idempotency_key text NOT NULL UNIQUE, kind text NOT NULL,
           user_id text, tenant_id text, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
         GRANT CONNECT ON DATABASE app TO tributary;
         GRANT USAGE ON SCHEMA public TO tributary;
         GRANT SELECT ON public.event_outbox TO tributary;
         CREATE PUBLICATION tributary_app FOR TABLE public.event_outbox;",
    )
    .await
    .unwrap();
    let consumer = db("consumer", "consumer").await;
    consumer
        .batch_execute(
            "CREATE TABLE portfolio (user_id text PRIMARY KEY, value numeric NOT NULL);
             CREATE FUNCTION apply_event(e jsonb) RETURNS void LANGUAGE sql AS $$
               INSERT INTO portfolio VALUES (e #>> '{data,key}', (e #>> '{data,data,value}')::numeric)
               ON CONFLICT (user_id) DO UPDATE SET value = EXCLUDED.value $$;",
        )
        .await
        .unwrap();
    // Step 2: the node.
    let node = TestNode::start(BIN, &example(&pg, &tansu.brokers));
    assert!(
        wait_until(T, || async {
            app.query_opt(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'tributary_app' AND active",
                &[],
            )
            .await
            .unwrap()
            .is_some()
        })
        .await,
        "the source did not start streaming: {}",
        node.get("/v1/sources/app").await.1
    );
    // Step 3: an outbox row, as the application writes it.
    app.batch_execute(
        "INSERT INTO event_outbox (idempotency_key, kind, user_id, tenant_id, payload)
           VALUES ('portfolio:u-42:1', 'miner.portfolio_updated', 'u-42', 'acme', '{\"value\": \"1250.50\"}')",
    )
    .await
    .unwrap();
    let evs = wait_events(&node, 1).await;
    let id = sha256_hex("portfolio:u-42:1");
    assert_eq!(evs[0]["id"], id.as_str());
    assert_eq!(evs[0]["kind"], "outbox.miner.portfolio_updated");
    assert_eq!((&evs[0]["key"], &evs[0]["tenant"]), (&"u-42".into(), &"acme".into()));
    // In Kafka: topic events.miner, keyed by the user.
    let py = python();
    let read = wait_until(T, || async {
        kafka_read(&py, &tansu.brokers, "events.miner").is_some_and(|t| !t["records"].as_array().unwrap().is_empty())
    })
    .await;
    let topic = kafka_read(&py, &tansu.brokers, "events.miner");
    assert!(read, "nothing in events.miner: {topic:?}");
    let records = topic.unwrap()["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["key"], "u-42");
    let value: Value = serde_json::from_str(records[0]["value"].as_str().unwrap()).unwrap();
    assert_eq!(value["data"]["id"], id.as_str(), "{value}");
    // The consumer applied it once, with its inbox row.
    let applied = wait_until(T, || async {
        consumer
            .query_opt("SELECT value::text FROM portfolio WHERE user_id = 'u-42'", &[])
            .await
            .unwrap()
            .is_some_and(|r| r.get::<_, String>(0) == "1250.50")
    })
    .await;
    assert!(applied, "portfolio was not updated");
    let inbox: i64 = consumer
        .query_one("SELECT count(*) FROM inbox WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(inbox, 1);
    // A replay of the consumer applies nothing twice: the inbox row is there.
    let replayed = cli(
        &node,
        &["replay", "--subscription", "portfolio-consumer", "--from", "1"],
    )
    .await;
    assert_eq!(replayed["matched"], 1, "{replayed}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let inbox: i64 = consumer
        .query_one("SELECT count(*) FROM inbox", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(inbox, 1);
    // A row the consumer refuses: a dead letter, counted and replayable.
    app.batch_execute(
        "INSERT INTO event_outbox (idempotency_key, kind, user_id, payload)
           VALUES ('portfolio:u-43:1', 'miner.portfolio_updated', 'u-43', '{\"value\": \"n/a\"}')",
    )
    .await
    .unwrap();
    let dead = wait_until(T, || async {
        let stats = cli(&node, &["dlq", "stats"]).await;
        stats.to_string().contains("portfolio-consumer") && dead_letters(&stats) >= 1
    })
    .await;
    let stats = cli(&node, &["dlq", "stats"]).await;
    assert!(dead, "{stats}");
    let dry = cli(
        &node,
        &[
            "dlq",
            "replay",
            "--since",
            "24h",
            "--subscription",
            "portfolio-consumer",
            "--limit",
            "100",
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(dry["matched"], 1, "{dry}");
    assert_eq!(dry["dry_run"], true, "{dry}");
}

/// The dead letters `dlq stats --json` counts for the consumer.
fn dead_letters(stats: &Value) -> u64 {
    let list = stats["subscriptions"].as_array().cloned().unwrap_or_default();
    list.iter()
        .filter(|s| s["subscription"] == "portfolio-consumer")
        .filter_map(|s| s["count"].as_u64())
        .sum()
}
