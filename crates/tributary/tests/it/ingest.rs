//! The http source: durable 202, validation errors naming index and field, 413, auth, duplicates.

use crate::{BIN, http_to_webhook};
use serde_json::json;
use tributary_testkit::{Receiver, TestNode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_duplicates_ids_and_observations() {
    let rx = Receiver::start(None, false).await.unwrap();
    let node = TestNode::start(BIN, &http_to_webhook(&rx.url(), ""));
    let batch = json!([
        {"kind": "orders.created", "key": "o-1", "data": {"order": 1}},
        {"kind": "orders.created", "key": "o-2", "data": {"order": 2}, "occurred_at": "2026-11-22T05:00:00Z"},
        {"kind": "orders.created", "key": "o-1", "data": {"order": 1}}
    ]);
    let (status, body) = node.post_events("ingest", &batch).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["duplicates"], 1);
    let ids = body["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], ids[2], "same content, same id");
    // Posting again adds observations, never events.
    let (_, again) = node.post_events("ingest", &batch).await;
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(3))
    );
    let (status, event) = node.get(&format!("/v1/events/{}", ids[0].as_str().unwrap())).await;
    assert_eq!(status, 200);
    assert_eq!(event["kind"], "orders.created");
    assert_eq!(event["seq"], 1);
    let obs = event["observations"].as_array().unwrap();
    assert_eq!(obs.len(), 1);
    assert_eq!(obs[0]["observer"], "ingest");
    assert_eq!(obs[0]["count"], 4);
    let (_, list) = node.get("/v1/events?after=0&limit=10").await;
    assert_eq!(list["events"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_ids_are_kept_and_single_objects_accepted() {
    let rx = Receiver::start(None, false).await.unwrap();
    let node = TestNode::start(BIN, &http_to_webhook(&rx.url(), ""));
    let id = "ab".repeat(32);
    let (status, body) = node
        .post_events("ingest", &json!({"kind": "a.b", "id": id, "data": {}}))
        .await;
    assert_eq!(status, 202);
    assert_eq!(body["ids"][0], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_items_reject_the_whole_request_naming_index_and_field() {
    let rx = Receiver::start(None, false).await.unwrap();
    let node = TestNode::start(BIN, &http_to_webhook(&rx.url(), ""));
    let cases = [
        (json!([{"kind": "a", "data": 1}, {"data": 1}]), 1, "kind"),
        (
            json!([{"kind": "a", "data": 1}, {"kind": "a", "data": 1}, {"kind": "a"}]),
            2,
            "data",
        ),
        (json!([{"kind": "a", "data": 1, "id": "nothex"}]), 0, "id"),
        (
            json!([{"kind": "a", "data": 1, "occurred_at": "soon"}]),
            0,
            "occurred_at",
        ),
        (json!([{"kind": "a b", "data": 1}]), 0, "kind"),
    ];
    for (body, index, field) in cases {
        let (status, err) = node.post_events("ingest", &body).await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"]["code"], "invalid_event");
        assert_eq!(err["error"]["index"], index, "{err}");
        assert_eq!(err["error"]["field"], field, "{err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("events[{index}].{field}")),
            "{err}"
        );
    }
    // Nothing of a rejected request was stored.
    let (_, list) = node.get("/v1/events?after=0").await;
    assert_eq!(list["events"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_unknown_source_and_body_limit() {
    let rx = Receiver::start(None, false).await.unwrap();
    let config = format!(
        "[[sources]]\nname = \"small\"\ntype = \"http\"\nmax_body_bytes = 200\n\n{}",
        http_to_webhook(&rx.url(), "")
    );
    let node = TestNode::start(BIN, &config);
    let url = format!("{}/v1/sources/ingest/events", node.url);
    let body = json!({"kind": "a", "data": 1});
    let resp = node.client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = node
        .client()
        .post(&url)
        .bearer_auth("wrong-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let (status, err) = node.post_events("nope", &body).await;
    assert_eq!(status, 404);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no http source named \"nope\"")
    );
    let big = json!([{"kind": "a", "data": "x".repeat(300)}]);
    let (status, err) = node.post_events("small", &big).await;
    assert_eq!(status, 413, "{err}");
    assert_eq!(err["error"]["code"], "body_too_large");
}
