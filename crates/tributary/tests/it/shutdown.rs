//! Graceful shutdown on SIGTERM and SIGINT: in-flight deliveries finish, state is committed, exit 0.

use crate::{BIN, SECRET, http_to_webhook};
use serde_json::json;
use std::time::Duration;
use tributary_testkit::{Receiver, Reply, TestNode, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_deliveries_finish_and_commits() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    rx.respond_with(|_| Reply {
        status: 204,
        retry_after: None,
        delay: Some(Duration::from_millis(700)),
    });
    let mut node = TestNode::start(BIN, &http_to_webhook(&rx.url(), "max_in_flight = 1"));
    node.post_events("ingest", &json!({"kind": "a.b", "data": "first"}))
        .await;
    assert!(
        wait_until(Duration::from_secs(10), || async { rx.total() == 1 }).await,
        "delivery started"
    );
    assert_eq!(node.terminate(), Some(0), "clean exit");
    assert_eq!(rx.received().len(), 1, "the in-flight delivery completed before exit");
    // After a restart the first event is not sent again; a second one is the barrier.
    rx.respond_with(|_| Reply::ok());
    node.spawn();
    node.post_events("ingest", &json!({"kind": "a.b", "data": "second"}))
        .await;
    assert!(rx.wait_for(Duration::from_secs(10), |r| r.len() >= 2).await);
    let got = rx.received();
    assert_eq!(
        got.len(),
        2,
        "first delivered once, second once: {:?}",
        got.iter().map(|r| r.seq).collect::<Vec<_>>()
    );
    assert_eq!(got[1].seq, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_also_exits_cleanly() {
    let rx = Receiver::start(Some(SECRET.into()), false).await.unwrap();
    let mut node = TestNode::start(BIN, &http_to_webhook(&rx.url(), ""));
    node.post_events("ingest", &json!({"kind": "a.b", "data": 1})).await;
    assert_eq!(node.interrupt(), Some(0));
}
