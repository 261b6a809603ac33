//! The `kafka` sink on the running binary against tansu (a Kafka-protocol broker with memory storage,
//! started on a free port by `tributary_testkit::Tansu`), read back with PyPI's confluent-kafka: every event
//! acknowledged by the http source is in the topic at least once across a SIGKILL during delivery, with the
//! key and headers specified; the topic is created on first use; the sink is the admin's (a tenant key gets a
//! 422 naming `sink.type`).

use crate::BIN;
use crate::control::{call, tenant_key};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tributary_testkit::{ADMIN_KEY, Tansu, TestNode, kafka_read, python, wait_until};

const T: Duration = Duration::from_secs(90);

/// The records of `topic` once it holds at least `n`.
async fn records(brokers: &str, topic: &str, n: usize) -> Vec<Value> {
    let py = python();
    let mut last = Value::Null;
    let enough = wait_until(T, || {
        let got = kafka_read(&py, brokers, topic);
        let ok = got
            .as_ref()
            .is_some_and(|v| v["records"].as_array().unwrap().len() >= n);
        last = got.unwrap_or(Value::Null);
        async move { ok }
    })
    .await;
    let count = last["records"].as_array().map_or(0, Vec::len);
    assert!(enough, "topic {topic} holds at least {n} records (has {count})");
    last["records"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_sink_has_every_acknowledged_event_across_a_sigkill() {
    let broker = Tansu::start();
    assert!(
        kafka_read(&python(), &broker.brokers, "orders").is_none(),
        "the topic does not exist before"
    );
    let config = format!(
        "[[sources]]\nname = \"orders\"\ntype = \"http\"\ntenants = [\"*\"]\n\n[[subscriptions]]\nname = \"to-kafka\"\nmax_in_flight = 64\n[subscriptions.sink]\ntype = \"kafka\"\nbrokers = {:?}\ntopic = \"{{kind.0}}\"\npartitions = 2\n",
        broker.brokers
    );
    let mut node = TestNode::start(BIN, &config);
    let mut acked = BTreeMap::new();
    for batch in 0..20 {
        let events: Vec<_> = (0..100)
            .map(|i| json!({"kind": "orders.created", "key": format!("o-{batch}-{i}"), "data": {"n": batch * 100 + i}}))
            .collect();
        let (st, body) = node.post_events("orders", &json!(events)).await;
        assert_eq!(st, 202, "{body}");
        for (i, id) in body["ids"].as_array().unwrap().iter().enumerate() {
            acked.insert(id.as_str().unwrap().to_owned(), format!("o-{batch}-{i}"));
        }
        if batch == 10 {
            node.kill(); // during delivery: some records are acknowledged, their cursor may not be
            node.spawn();
        }
    }
    assert_eq!(acked.len(), 2000);
    let got = records(&broker.brokers, "orders", 2000).await;
    let mut seen = BTreeSet::new();
    for r in &got {
        let id = r["headers"]["tributary-id"].as_str().expect("a tributary-id header");
        let key = acked
            .get(id)
            .unwrap_or_else(|| panic!("record of an event never acknowledged: {r}"));
        assert_eq!(
            r["key"].as_str(),
            Some(key.as_str()),
            "the record's key is the event's key: {r}"
        );
        assert_eq!(r["headers"]["tributary-kind"], "orders.created", "{r}");
        assert_eq!(r["headers"]["tributary-source"], "orders", "{r}");
        assert!(
            r["headers"]["tributary-delivery-id"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{r}"
        );
        let body: Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
        assert_eq!(body["data"]["id"], id, "{r}");
        seen.insert(id.to_owned());
    }
    assert_eq!(
        seen.len(),
        2000,
        "every acknowledged event at least once ({} records)",
        got.len()
    );
    let (_, sub) = node.get("/v1/subscriptions/to-kafka").await;
    assert_eq!(sub["sink"], format!("kafka {} topic {{kind.0}}", broker.brokers));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_sink_is_for_the_admin_and_an_unresolved_topic_is_a_dead_letter() {
    let broker = Tansu::start();
    let node = TestNode::start(
        BIN,
        "[[sources]]\nname = \"orders\"\ntype = \"http\"\ntenants = [\"*\"]\n",
    );
    let key = tenant_key(&node, "acme").await;
    let sub = json!({
        "name": "mine",
        "sink": {"type": "kafka", "brokers": broker.brokers, "topic": "chain.{data.chain_id}"},
    });
    let (st, err) = call(&node, "POST", "/v1/subscriptions", &key, Some(sub.clone())).await;
    assert_eq!(st, 422, "{err}");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("sink.type: only the admin may create kafka subscriptions"),
        "{msg}"
    );
    let (st, view) = call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(sub)).await;
    assert_eq!(st, 201, "{view}");
    let (st, _) = node
        .post_events(
            "orders",
            &json!([{"kind": "a", "data": {"chain_id": 5}}, {"kind": "b", "data": {}}]),
        )
        .await;
    assert_eq!(st, 202);
    assert_eq!(records(&broker.brokers, "chain.5", 1).await.len(), 1);
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
    assert!(
        error.contains("{data.chain_id} does not resolve: no field \"chain_id\""),
        "{d}"
    );
}

/// The compliance kit (ADR 0006) against tansu, read back with confluent-kafka: at least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_sink_passes_the_compliance_kit() {
    let broker = Tansu::start();
    let case = tributary_testkit::compliance::SinkCase {
        type_name: "kafka",
        sink: format!(
            "type = \"kafka\"\nbrokers = {:?}\ntopic = \"compliance\"\n",
            broker.brokers
        ),
        unresolved: Some(format!(
            "type = \"kafka\"\nbrokers = {:?}\ntopic = \"c-{{data.missing}}\"\n",
            broker.brokers
        )),
        exactly_once: false,
    };
    let py = python();
    tributary_testkit::compliance::check_sink(BIN, &case, || {
        let records = kafka_read(&py, &broker.brokers, "compliance");
        async move {
            records
                .and_then(|v| v["records"].as_array().cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|r| r["headers"]["tributary-id"].as_str().map(str::to_owned))
                .collect()
        }
    })
    .await;
}
