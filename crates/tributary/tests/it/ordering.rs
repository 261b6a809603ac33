//! `ordering = "per_key"`: events of one key arrive in sequence order; a failing key holds back only itself.

use crate::{BIN, SECRET, http_to_webhook};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tributary_testkit::{Receiver, Reply, TestNode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_order_holds_and_a_failing_key_blocks_only_itself() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    let a_failures = Arc::new(AtomicU32::new(0));
    let counter = a_failures.clone();
    // Key "a" fails its first 4 attempts (with retries 100 ms apart); key "b" always succeeds.
    rx.respond_with(move |r| {
        if r.key.as_deref() == Some("a") && counter.fetch_add(1, Ordering::SeqCst) < 4 {
            Reply::status(503)
        } else {
            Reply::ok()
        }
    });
    let extra = "ordering = \"per_key\"\nmax_in_flight = 8\nretry = { schedule = [\"0s\", \"100ms\", \"100ms\", \"100ms\", \"100ms\", \"100ms\"] }";
    let node = TestNode::start(BIN, &http_to_webhook(&rx.url(), extra));
    let mut events = Vec::new();
    for i in 0..10 {
        events.push(json!({"kind": "k.v", "key": "a", "data": {"i": i}}));
        events.push(json!({"kind": "k.v", "key": "b", "data": {"i": i}}));
    }
    node.post_events("ingest", &json!(events)).await;
    assert!(
        rx.wait_for(Duration::from_secs(30), |r| r.iter().filter(|x| x.status < 300).count()
            >= 20)
            .await
    );
    let got = rx.received();
    let ok: Vec<_> = got.iter().filter(|x| x.status < 300).collect();
    for key in ["a", "b"] {
        let seqs: Vec<u64> = ok
            .iter()
            .filter(|x| x.key.as_deref() == Some(key))
            .map(|x| x.seq)
            .collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        assert_eq!(seqs, sorted, "key {key} delivered out of order");
        assert_eq!(seqs.len(), 10, "each event of key {key} delivered once");
    }
    // "b" was not held back by "a": all of b arrived before a's first success.
    let first_a_ok = ok.iter().position(|x| x.key.as_deref() == Some("a")).unwrap();
    let last_b = ok.iter().rposition(|x| x.key.as_deref() == Some("b")).unwrap();
    assert!(last_b < first_a_ok, "key b waited for key a");
}
