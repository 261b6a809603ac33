//! The `nats` sink against the real nats-server of the machine, with JetStream: `TRIBUTARY_NATS_URL`, by
//! default `nats://127.0.0.1:4222` (`./scripts/peers.sh` checks it runs with JetStream, and starts it if
//! it can). Each test uses a stream and subjects of its own random names, reads them back with async-nats
//! as a consumer, and deletes the stream afterwards.
#![cfg(feature = "nats")]

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tributary_core::{Delivery, DeliveryStatus, EventId, NewEvent, Sink, StoredEvent, Timestamp};
use tributary_sinks::nats::NatsConfig;

fn url() -> String {
    std::env::var("TRIBUTARY_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn server() -> jetstream::Context {
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

fn delivery(message_id: &str, seq: u64, kind: &str, data: Value) -> Delivery {
    Delivery {
        subscription: "to-nats".into(),
        message_id: message_id.into(),
        event: Arc::new(StoredEvent {
            seq,
            source: "orders".into(),
            ingested_at: Timestamp::from_unix_secs(1_800_000_000),
            event: NewEvent {
                id: EventId::sha256(message_id.as_bytes()),
                kind: kind.into(),
                key: Some("k-1".into()),
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

fn sink(url: &str, stream: &str, subject: &str, extra: &str) -> Arc<dyn Sink> {
    let text = format!("url = {url:?}\nstream = {stream:?}\nsubject = {subject:?}\n{extra}");
    let config: NatsConfig = toml::from_str(&text).unwrap();
    Arc::new(config.build().unwrap())
}

/// Every message of `stream`, in order, read by an ephemeral pull consumer.
async fn messages(js: &jetstream::Context, stream: &str) -> Vec<async_nats::Message> {
    let stream = js.get_stream(stream).await.unwrap();
    let count = stream.get_info().await.unwrap().state.messages as usize;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    let mut batch = consumer.fetch().max_messages(count.max(1)).messages().await.unwrap();
    while out.len() < count {
        let m = batch
            .next()
            .await
            .expect("the consumer delivers every stored message")
            .unwrap();
        out.push(m.message);
    }
    out
}

fn header(m: &async_nats::Message, name: &str) -> String {
    m.headers
        .as_ref()
        .and_then(|h| h.get(name))
        .map(|v| v.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn each_delivery_is_one_message_even_when_retried() {
    let js = server().await;
    let name = unique("tributary-test");
    let s = sink(
        &url(),
        &name,
        &format!("{name}.{{kind}}"),
        "duplicate_window = \"5m\"\nmax_messages = 1000",
    );
    s.healthcheck().await.unwrap();
    let info = js.get_stream(&name).await.unwrap().get_info().await.unwrap().config;
    assert_eq!(
        info.subjects,
        [format!("{name}.>")],
        "subjects derived from the template's prefix"
    );
    assert_eq!(info.duplicate_window.as_secs(), 300);
    assert_eq!(info.max_messages, 1000);
    assert_eq!(info.retention, jetstream::stream::RetentionPolicy::Limits);
    let d = delivery(&unique("msg"), 7, "order.created", json!({"n": 5}));
    for _ in 0..3 {
        let r = s.deliver(&d).await;
        assert_eq!(r.status, DeliveryStatus::Delivered, "{r:?}");
    }
    let other = delivery(&unique("msg"), 8, "order.paid", json!({"n": 6}));
    assert_eq!(s.deliver(&other).await.status, DeliveryStatus::Delivered);
    let got = messages(&js, &name).await;
    assert_eq!(got.len(), 2, "three attempts of one delivery stored one message");
    let first = &got[0];
    assert_eq!(first.subject.as_str(), format!("{name}.order.created"));
    assert_eq!(header(first, "Nats-Msg-Id"), d.message_id);
    assert_eq!(header(first, "tributary-id"), d.event.event.id.to_hex());
    assert_eq!(header(first, "tributary-delivery-id"), d.message_id);
    assert_eq!(header(first, "tributary-kind"), "order.created");
    assert_eq!(header(first, "tributary-source"), "orders");
    let body: Value = serde_json::from_slice(&first.payload).unwrap();
    assert_eq!(body["type"], "order.created");
    assert_eq!(body["data"]["data"], json!({"n": 5}));
    assert_eq!(got[1].subject.as_str(), format!("{name}.order.paid"));
    js.delete_stream(&name).await.unwrap();
}

#[tokio::test]
async fn payload_data_and_a_fixed_subject() {
    let js = server().await;
    let name = unique("tributary-test-data");
    let s = sink(&url(), &name, &format!("{name}.all"), "payload = \"data\"");
    let d = delivery(&unique("msg"), 1, "a.b", json!({"x": [1, 2]}));
    assert_eq!(s.deliver(&d).await.status, DeliveryStatus::Delivered);
    let info = js.get_stream(&name).await.unwrap().get_info().await.unwrap().config;
    assert_eq!(
        info.subjects,
        [format!("{name}.all")],
        "a fixed subject is the stream's only subject"
    );
    let got = messages(&js, &name).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        serde_json::from_slice::<Value>(&got[0].payload).unwrap(),
        json!({"x": [1, 2]})
    );
    js.delete_stream(&name).await.unwrap();
}

#[tokio::test]
async fn unresolved_subjects_are_rejected_and_missing_streams_and_dead_servers_are_retriable() {
    let js = server().await;
    let name = unique("tributary-test-bad");
    let s = sink(&url(), &name, &format!("{name}.{{data.chain_id}}"), "");
    let r = s.deliver(&delivery(&unique("msg"), 1, "a", json!({}))).await;
    assert_eq!(r.status, DeliveryStatus::Rejected, "{r:?}");
    assert!(
        r.error.as_deref().unwrap().contains("{data.chain_id} does not resolve"),
        "{r:?}"
    );
    let r = s
        .deliver(&delivery(&unique("msg"), 1, "a", json!({"chain_id": "x y"})))
        .await;
    assert_eq!(r.status, DeliveryStatus::Rejected, "{r:?}");
    assert!(r.error.as_deref().unwrap().contains("has whitespace"), "{r:?}");
    // The stream exists but takes other subjects: nobody answers the publish.
    let other = sink(
        &url(),
        &name,
        &format!("{name}-elsewhere.x"),
        &format!("subjects = [\"{name}.>\"]"),
    );
    let r = other.deliver(&delivery(&unique("msg"), 1, "a", json!({}))).await;
    assert_eq!(r.status, DeliveryStatus::Retriable, "{r:?}");
    assert!(r.error.as_deref().unwrap().contains("no stream takes subject"), "{r:?}");
    // A deleted stream is created again on the next attempt.
    js.delete_stream(&name).await.unwrap();
    let d = delivery(&unique("msg"), 2, "a", json!({"chain_id": 3}));
    let first = s.deliver(&d).await;
    let r = if first.status == DeliveryStatus::Delivered {
        first
    } else {
        s.deliver(&d).await
    };
    assert_eq!(r.status, DeliveryStatus::Delivered, "{r:?}");
    assert_eq!(messages(&js, &name).await.len(), 1);
    js.delete_stream(&name).await.unwrap();
    // Nothing listens on port 1 of loopback: retriable, and the healthcheck says so.
    let dead = sink("nats://u:secret@127.0.0.1:1", &name, "t.x", "timeout = \"2s\"");
    let r = dead.deliver(&delivery(&unique("msg"), 1, "a", json!({}))).await;
    assert_eq!(r.status, DeliveryStatus::Retriable, "{r:?}");
    let e = r.error.unwrap();
    assert!(
        e.contains("nats nats://u:***@127.0.0.1:1") && e.contains("could not connect"),
        "{e}"
    );
    assert!(!e.contains("secret"), "{e}");
    let e = dead.healthcheck().await.unwrap_err();
    assert!(e.contains("could not connect"), "{e}");
}
