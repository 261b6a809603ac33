//! The `kafka` sink against a real Kafka-protocol broker: tansu with memory storage, started by each test
//! on a free loopback port (`tributary_testkit::Tansu`; `./scripts/peers.sh` installs it), read back with
//! PyPI's confluent-kafka as an independent consumer (`scripts/kafka_consume.py`, in the venv that
//! `./scripts/python-env.sh` makes).
#![cfg(feature = "kafka")]

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tributary_core::{Delivery, DeliveryStatus, EventId, NewEvent, Sink, StoredEvent, Timestamp};
use tributary_sinks::kafka::KafkaConfig;
use tributary_testkit::{Tansu, kafka_read, python, wait_until};

fn delivery(message_id: &str, seq: u64, kind: &str, key: Option<&str>, data: Value) -> Delivery {
    Delivery {
        subscription: "to-kafka".into(),
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

fn sink(brokers: &str, topic: &str, extra: &str) -> Arc<dyn Sink> {
    let text = format!("brokers = {brokers:?}\ntopic = {topic:?}\n{extra}");
    let config: KafkaConfig = toml::from_str(&text).unwrap();
    Arc::new(config.build().unwrap())
}

/// The records of `topic` once it holds at least `n` (confluent-kafka reads until every partition's end).
async fn records(brokers: &str, topic: &str, n: usize) -> Value {
    let py = python();
    let mut last = Value::Null;
    let enough = wait_until(Duration::from_secs(60), || {
        let got = kafka_read(&py, brokers, topic);
        let ok = got
            .as_ref()
            .is_some_and(|v| v["records"].as_array().unwrap().len() >= n);
        last = got.unwrap_or(Value::Null);
        async move { ok }
    })
    .await;
    assert!(enough, "topic {topic} holds at least {n} records: {last}");
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_carry_key_headers_and_payload_in_a_topic_created_on_first_use() {
    let broker = Tansu::start();
    let s = sink(&broker.brokers, "t.{kind.0}", "partitions = 3");
    s.healthcheck().await.unwrap();
    let with_key = delivery("msg-1", 7, "orders.created", Some("o-1"), json!({"n": 5}));
    let without_key = delivery("msg-2", 8, "orders.paid", None, json!({"n": 6}));
    for d in [&with_key, &without_key] {
        let r = s.deliver(d).await;
        assert_eq!(r.status, DeliveryStatus::Delivered, "{r:?}");
    }
    let got = records(&broker.brokers, "t.orders", 2).await;
    assert_eq!(got["partitions"], 3, "the topic was created with partitions = 3: {got}");
    let mut recs = got["records"].as_array().unwrap().clone();
    assert_eq!(recs.len(), 2, "{got}");
    recs.sort_by_key(|r| r["headers"]["tributary-delivery-id"].as_str().unwrap().to_owned());
    let first = &recs[0];
    assert_eq!(first["key"], "o-1");
    assert_eq!(first["headers"]["tributary-id"], with_key.event.event.id.to_hex());
    assert_eq!(first["headers"]["tributary-delivery-id"], "msg-1");
    assert_eq!(first["headers"]["tributary-kind"], "orders.created");
    assert_eq!(first["headers"]["tributary-source"], "orders");
    let body: Value = serde_json::from_str(first["value"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], "orders.created");
    assert_eq!(body["data"]["data"], json!({"n": 5}));
    assert_eq!(recs[1]["key"], Value::Null, "no key for an event without one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_share_one_producer_and_each_is_acknowledged() {
    let broker = Tansu::start();
    let s = sink(&broker.brokers, "many", "payload = \"data\"\nlinger = \"20ms\"");
    let deliveries: Vec<Delivery> = (0..300)
        .map(|i| {
            delivery(
                &format!("msg-{i}"),
                i,
                "a.b",
                Some(&format!("k-{}", i % 7)),
                json!({"i": i}),
            )
        })
        .collect();
    let reports = futures_util::future::join_all(deliveries.iter().map(|d| s.deliver(d))).await;
    for r in &reports {
        assert_eq!(r.status, DeliveryStatus::Delivered, "{r:?}");
    }
    let got = records(&broker.brokers, "many", 300).await;
    let ids: BTreeSet<String> = got["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["headers"]["tributary-delivery-id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 300, "every acknowledged delivery is in the topic");
    let values: BTreeSet<String> = got["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap().to_owned())
        .collect();
    assert!(values.contains("{\"i\":299}"), "payload = data is the event's data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresolved_topics_are_rejected_and_a_dead_broker_is_retriable() {
    let broker = Tansu::start();
    let s = sink(&broker.brokers, "t.{data.chain_id}", "");
    let r = s.deliver(&delivery("m1", 1, "a", None, json!({}))).await;
    assert_eq!(r.status, DeliveryStatus::Rejected, "{r:?}");
    assert!(
        r.error.as_deref().unwrap().contains("{data.chain_id} does not resolve"),
        "{r:?}"
    );
    let r = s
        .deliver(&delivery("m2", 1, "a", None, json!({"chain_id": "x/y"})))
        .await;
    assert_eq!(r.status, DeliveryStatus::Rejected, "{r:?}");
    assert!(
        r.error.as_deref().unwrap().contains("Kafka topic names use only"),
        "{r:?}"
    );
    // The broker goes away: retriable, the reason names the brokers, and the healthcheck fails.
    let brokers = broker.brokers.clone();
    drop(broker);
    let dead = sink(&brokers, "t.x", "timeout = \"2s\"");
    let r = dead.deliver(&delivery("m3", 1, "a", None, json!({}))).await;
    assert_eq!(r.status, DeliveryStatus::Retriable, "{r:?}");
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains(&format!("kafka {brokers} topic t.x")),
        "{r:?}"
    );
    let e = dead.healthcheck().await.unwrap_err();
    assert!(e.contains("did not answer a metadata request"), "{e}");
}
