//! Regression tests on the running binary for what fuzzing found (docs/fuzzing.md) where it can be reached
//! from outside: each probe gets its answer, and the node keeps serving and restarts.

use crate::{BIN, http_to_webhook};
use serde_json::json;
use tributary_testkit::{Receiver, TestNode};

/// `fuzz/` `store_record` and `ingest_json`: an `occurred_at` whose offset takes it out of the years
/// 0000–9999 in UTC was stored and then served as another time (the nearest end of the range). It is
/// refused with 400 naming the field and the range; the times at both ends are kept exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn occurred_at_outside_years_0000_to_9999_is_refused_and_the_ends_are_kept() {
    let rx = Receiver::start(None, false).await.unwrap();
    let mut node = TestNode::start(BIN, &http_to_webhook(&rx.url(), ""));
    for at in ["9999-12-31T23:59:59-00:01", "0000-01-01T00:00:00+01:00"] {
        let (status, err) = node
            .post_events("ingest", &json!([{"kind": "a", "data": 1, "occurred_at": at}]))
            .await;
        assert_eq!(status, 400, "{at}: {err}");
        assert_eq!(err["error"]["field"], "occurred_at", "{err}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains("outside the years 0000 to 9999"), "{message}");
    }
    let mut ids = Vec::new();
    for at in ["9999-12-31T23:59:59.999999Z", "0000-01-01T00:00:00Z"] {
        let (status, body) = node
            .post_events("ingest", &json!({"kind": "a", "data": at, "occurred_at": at}))
            .await;
        assert_eq!(status, 202, "{at}: {body}");
        ids.push((at, body["ids"][0].as_str().unwrap().to_owned()));
    }
    assert_eq!(node.terminate(), Some(0));
    node.spawn();
    for (at, id) in ids {
        let (status, event) = node.get(&format!("/v1/events/{id}")).await;
        assert_eq!(status, 200, "{event}");
        assert_eq!(event["occurred_at"], at, "{event}");
    }
}
