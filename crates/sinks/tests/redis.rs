//! The `redis` sink against the real Redis (or Valkey) server of the machine: `TRIBUTARY_REDIS_URL`, by
//! default `redis://127.0.0.1:6379` (`./scripts/test.sh` checks it runs, and starts it if it can). Each
//! test writes to streams of its own random names and deletes them afterwards.
#![cfg(feature = "redis")]

use redis::AsyncCommands;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tributary_core::{Delivery, DeliveryStatus, EventId, NewEvent, Sink, StoredEvent, Timestamp};
use tributary_sinks::redis::RedisConfig;

fn url() -> String {
    std::env::var("TRIBUTARY_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn server() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap_or_else(|e| {
        panic!(
            "no Redis at {} ({e}): start one (redis-server --port 6379) or set TRIBUTARY_REDIS_URL; ./scripts/test.sh does this",
            url()
        )
    })
}

fn unique(prefix: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    let n = RandomState::new().hash_one(std::time::SystemTime::now());
    format!("{prefix}-{}-{n:016x}", std::process::id())
}

fn delivery(message_id: &str, seq: u64, kind: &str, key: Option<&str>, data: Value) -> Delivery {
    Delivery {
        subscription: "to-redis".into(),
        message_id: message_id.into(),
        event: Arc::new(StoredEvent {
            seq,
            source: "orders".into(),
            ingested_at: Timestamp::from_unix_secs(1_800_000_000),
            event: NewEvent {
                id: EventId::sha256(message_id.as_bytes()),
                kind: kind.into(),
                key: key.map(str::to_owned),
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

fn sink(extra: &str, stream: &str) -> Arc<dyn Sink> {
    let text = format!("url = {:?}\nstream = {stream:?}\n{extra}", url());
    let config: RedisConfig = toml::from_str(&text).unwrap();
    Arc::new(config.build().unwrap())
}

/// Every entry of `stream`: its fields, sorted.
async fn entries(conn: &mut redis::aio::MultiplexedConnection, stream: &str) -> Vec<BTreeMap<String, String>> {
    let reply: redis::streams::StreamRangeReply = conn.xrange_all(stream).await.unwrap();
    reply
        .ids
        .into_iter()
        .map(|e| {
            e.map
                .iter()
                .map(|(k, v)| (k.clone(), redis::from_redis_value_ref::<String>(v).unwrap()))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn each_delivery_is_one_entry_even_when_retried() {
    let mut conn = server().await;
    let base = unique("tributary-test");
    let s = sink("", &format!("{base}:{{data.chain_id}}"));
    let d = delivery(
        &unique("msg"),
        7,
        "order.created",
        Some("o-1"),
        json!({"chain_id": 1, "n": 5}),
    );
    for _ in 0..3 {
        let r = s.deliver(&d).await;
        assert_eq!(r.status, DeliveryStatus::Delivered, "{r:?}");
    }
    let other = delivery(&unique("msg"), 8, "order.paid", None, json!({"chain_id": 1}));
    assert_eq!(s.deliver(&other).await.status, DeliveryStatus::Delivered);
    let stream = format!("{base}:1");
    let got = entries(&mut conn, &stream).await;
    assert_eq!(got.len(), 2, "three attempts of one delivery wrote one entry: {got:?}");
    let first = &got[0];
    assert_eq!(first["id"], d.event.event.id.to_hex());
    assert_eq!(
        (first["kind"].as_str(), first["source"].as_str()),
        ("order.created", "orders")
    );
    assert_eq!((first["key"].as_str(), first["seq"].as_str()), ("o-1", "7"));
    let body: Value = serde_json::from_str(&first["payload"]).unwrap();
    assert_eq!(body["type"], "order.created");
    assert_eq!(body["data"]["data"], json!({"chain_id": 1, "n": 5}));
    assert!(!got[1].contains_key("key"), "no key field for an event without a key");
    let _: () = conn.del(&stream).await.unwrap();
}

#[tokio::test]
async fn fields_layout_and_trimming() {
    let mut conn = server().await;
    let stream = unique("tributary-test-fields");
    let s = sink("payload = \"fields\"\nmaxlen = 5", &stream);
    for i in 0..300u64 {
        let d = delivery(
            &unique("msg"),
            i,
            "evm.log",
            None,
            json!({"chain_id": 1, "block_number": i, "address": "0xabc", "topics": ["t0"]}),
        );
        assert_eq!(s.deliver(&d).await.status, DeliveryStatus::Delivered);
    }
    let got = entries(&mut conn, &stream).await;
    assert!(got.len() < 300, "MAXLEN ~ 5 trimmed the stream (left {})", got.len());
    let want: BTreeMap<String, String> = [
        ("address", "0xabc"),
        ("block_number", "299"),
        ("chain_id", "1"),
        ("topics", "[\"t0\"]"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(got.last().unwrap(), &want);
    let not_object = delivery(&unique("msg"), 1, "evm.log", None, json!(5));
    let r = s.deliver(&not_object).await;
    assert_eq!(r.status, DeliveryStatus::Rejected);
    assert!(r.error.unwrap().contains("needs events whose data is a JSON object"));
    let _: () = conn.del(&stream).await.unwrap();
}

#[tokio::test]
async fn ethhook_fields_reproduce_ethhooks_stream_entries() {
    let mut conn = server().await;
    let base = unique("tributary-test-ethhook");
    let s = sink("payload = \"ethhook_fields\"", &format!("{base}:{{data.chain_id}}"));
    let data = json!({
        "chain_id": 8453, "block_number": 18000000, "block_hash": "0xbb", "block_timestamp": 1709876864,
        "transaction_hash": "0xtt", "transaction_index": 0, "log_index": 3, "address": "0xaa",
        "topics": ["0xddf2", "0x01"], "data": "0x989680",
    });
    let d = delivery(&unique("msg"), 1, "evm.log", Some("0xaa"), data);
    assert_eq!(s.deliver(&d).await.status, DeliveryStatus::Delivered);
    let stream = format!("{base}:8453");
    let got = entries(&mut conn, &stream).await;
    let want: BTreeMap<String, String> = [
        ("block_hash", "0xbb"),
        ("block_number", "18000000"),
        ("chain_id", "8453"),
        ("contract_address", "0xaa"),
        ("data", "0x989680"),
        ("log_index", "3"),
        ("timestamp", "1709876864"),
        ("topics", "[\"0xddf2\",\"0x01\"]"),
        ("transaction_hash", "0xtt"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(got, vec![want]);
    let other = delivery(&unique("msg"), 2, "orders.created", None, json!({"chain_id": 8453}));
    let r = s.deliver(&other).await;
    assert_eq!(r.status, DeliveryStatus::Rejected);
    assert!(r.error.unwrap().contains("needs EVM log events"));
    let _: () = conn.del(&stream).await.unwrap();
}

#[tokio::test]
async fn unresolved_names_and_wrong_types_are_rejected_and_a_dead_server_is_retriable() {
    let mut conn = server().await;
    let base = unique("tributary-test-bad");
    let s = sink("", &format!("{base}:{{data.chain_id}}"));
    let r = s.deliver(&delivery(&unique("msg"), 1, "a", None, json!({}))).await;
    assert_eq!(r.status, DeliveryStatus::Rejected);
    assert!(
        r.error.as_deref().unwrap().contains("{data.chain_id} does not resolve"),
        "{r:?}"
    );
    // The stream's name holds a string: the server refuses, and writing again cannot help.
    let taken = format!("{base}:9");
    let _: () = conn.set(&taken, "not a stream").await.unwrap();
    let r = s
        .deliver(&delivery(&unique("msg"), 1, "a", None, json!({"chain_id": 9})))
        .await;
    assert_eq!(r.status, DeliveryStatus::Rejected, "{r:?}");
    assert!(r.error.as_deref().unwrap().contains("WRONGTYPE"), "{r:?}");
    let _: () = conn.del(&taken).await.unwrap();
    // Nothing listens on port 1 of loopback: retriable, with the address in the reason.
    let config: RedisConfig =
        toml::from_str("url = \"redis://127.0.0.1:1\"\nstream = \"s\"\ntimeout = \"2s\"").unwrap();
    let dead = config.build().unwrap();
    let r = dead.deliver(&delivery(&unique("msg"), 1, "a", None, json!({}))).await;
    assert_eq!(r.status, DeliveryStatus::Retriable, "{r:?}");
    assert!(
        r.error.as_deref().unwrap().contains("redis redis://127.0.0.1:1"),
        "{r:?}"
    );
    // The healthcheck says the same, and passes on the live server.
    let problem = dead.healthcheck().await.unwrap_err();
    assert!(
        problem.contains("redis://127.0.0.1:1") && problem.contains("url"),
        "{problem}"
    );
    s.healthcheck().await.unwrap();
}
