//! The `nats` sink on the running binary against the machine's nats-server with JetStream
//! (`TRIBUTARY_NATS_URL`, by default `nats://127.0.0.1:4222`; `./scripts/peers.sh` starts it when it can):
//! events posted to an http source arrive in the stream exactly once, across a SIGKILL during delivery;
//! the sink is the admin's (a tenant key gets a 422 naming `sink.type`).

use crate::BIN;
use crate::control::{call, tenant_key};
use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tributary_testkit::{ADMIN_KEY, TestNode, wait_until};

const T: Duration = Duration::from_secs(60);

fn url() -> String {
    std::env::var("TRIBUTARY_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn nats() -> jetstream::Context {
    let client = async_nats::connect(url()).await.unwrap_or_else(|e| {
        panic!(
            "no NATS at {} ({e}): start one with JetStream (nats-server -a 127.0.0.1 -p 4222 -js -sd DIR) or set \
             TRIBUTARY_NATS_URL; ./scripts/peers.sh does this",
            url()
        )
    });
    jetstream::new(client)
}

fn unique(prefix: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    let n = RandomState::new().hash_one(std::time::SystemTime::now());
    format!("{prefix}-{}-{n:016x}", std::process::id())
}

/// How many messages `stream` holds (0 while it does not exist).
async fn count(js: &jetstream::Context, stream: &str) -> u64 {
    match js.get_stream(stream).await {
        Ok(s) => s.get_info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

/// The `tributary-id` header of every message of `stream`, read by an ephemeral pull consumer.
async fn ids(js: &jetstream::Context, stream: &str) -> Vec<String> {
    let n = count(js, stream).await as usize;
    if n == 0 {
        return Vec::new(); // no stream yet, or an empty one
    }
    let consumer = js
        .get_stream(stream)
        .await
        .unwrap()
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = consumer.fetch().max_messages(n.max(1)).messages().await.unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let m = batch.next().await.expect("every stored message is delivered").unwrap();
        let h = m.headers.as_ref().expect("every message has headers");
        out.push(h.get("tributary-id").expect("a tributary-id header").to_string());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_sink_stores_each_event_once_across_a_sigkill() {
    let js = nats().await;
    let stream = unique("tributary-it");
    let config = format!(
        "[[sources]]\nname = \"orders\"\ntype = \"http\"\ntenants = [\"*\"]\n\n[[subscriptions]]\nname = \"to-nats\"\nmax_in_flight = 16\n[subscriptions.sink]\ntype = \"nats\"\nurl = {:?}\nstream = \"{stream}\"\nsubject = \"{stream}.{{kind}}\"\n",
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
            node.kill(); // during delivery: some messages are stored, their cursor may not be
            node.spawn();
        }
    }
    assert_eq!(acked.len(), 2000);
    assert!(
        wait_until(T, || async { count(&js, &stream).await >= 2000 }).await,
        "every acknowledged event reaches the stream"
    );
    // Let the worker settle, then check: nothing more, nothing twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = ids(&js, &stream).await;
    let distinct: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(
        got.len(),
        2000,
        "each event exactly once (messages: {}, distinct: {})",
        got.len(),
        distinct.len()
    );
    assert_eq!(distinct, acked);
    let (_, sub) = node.get("/v1/subscriptions/to-nats").await;
    assert_eq!(
        sub["sink"],
        format!("nats {} stream {stream} subject {stream}.{{kind}}", url())
    );
    js.delete_stream(&stream).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_sink_is_for_the_admin_and_an_unresolved_subject_is_a_dead_letter() {
    let js = nats().await;
    let stream = unique("tributary-it-admin");
    let node = TestNode::start(
        BIN,
        "[[sources]]\nname = \"orders\"\ntype = \"http\"\ntenants = [\"*\"]\n",
    );
    let key = tenant_key(&node, "acme").await;
    let sub = json!({
        "name": "mine",
        "sink": {"type": "nats", "url": url(), "stream": stream, "subject": format!("{stream}.{{data.chain_id}}")},
    });
    let (st, err) = call(&node, "POST", "/v1/subscriptions", &key, Some(sub.clone())).await;
    assert_eq!(st, 422, "{err}");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("sink.type: only the admin may create nats subscriptions"),
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
    assert!(wait_until(T, || async { count(&js, &stream).await == 1 }).await);
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
    js.delete_stream(&stream).await.unwrap();
}

/// The compliance kit (ADR 0006) against the machine's nats-server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_sink_passes_the_compliance_kit() {
    let stream = unique("tributary-compliance");
    let case = tributary_testkit::compliance::SinkCase {
        type_name: "nats",
        sink: format!(
            "type = \"nats\"\nurl = {:?}\nstream = \"{stream}\"\nsubject = \"{stream}.{{kind}}\"\n",
            url()
        ),
        unresolved: Some(format!(
            "type = \"nats\"\nurl = {:?}\nstream = \"{stream}\"\nsubject = \"{stream}.{{data.missing}}\"\n",
            url()
        )),
        exactly_once: true,
    };
    tributary_testkit::compliance::check_sink(BIN, &case, || {
        let stream = stream.clone();
        async move { ids(&nats().await, &stream).await }
    })
    .await;
    let _ = nats().await.delete_stream(&stream).await;
}
