//! Webhook delivery: signatures, body shape, retries, Retry-After, dead letters, 410, breaker, SSRF guard,
//! and isolation between subscriptions.

use crate::{BIN, SECRET, http_to_webhook};
use serde_json::json;
use std::time::Duration;
use tributary_testkit::{Receiver, Reply, TestNode, wait_until};

const T: Duration = Duration::from_secs(20);

fn delivered(r: &[tributary_testkit::Received]) -> usize {
    let mut ids: Vec<&str> = r
        .iter()
        .filter(|x| x.status < 300)
        .map(|x| x.event_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_arrive_with_the_documented_body() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    let node = TestNode::start(BIN, &http_to_webhook(&rx.url(), ""));
    let events: Vec<_> = (0..5).map(|i| json!({"kind": "orders.created", "key": format!("o-{i}"), "data": {"n": i}, "occurred_at": "2026-11-22T05:00:00Z"})).collect();
    let (status, body) = node.post_events("ingest", &json!(events)).await;
    assert_eq!(status, 202);
    assert!(rx.wait_for(T, |r| delivered(r) == 5).await);
    assert_eq!(rx.verified(), rx.total());
    assert_eq!(rx.failed(), 0);
    let got = rx.received();
    let first = got.iter().find(|r| r.event_id == body["ids"][0]).unwrap();
    let b = first.body.as_ref().unwrap();
    assert_eq!(b["type"], "orders.created");
    assert!(b["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(b["data"]["source"], "ingest");
    assert_eq!(b["data"]["key"], "o-0");
    assert_eq!(b["data"]["occurred_at"], "2026-11-22T05:00:00Z");
    assert_eq!(b["data"]["data"], json!({"n": 0}));
    assert!(first.webhook_id.starts_with("msg_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retriable_failures_are_retried_with_the_same_webhook_id() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    rx.respond_with(|r| if r.nth <= 2 { Reply::status(503) } else { Reply::ok() });
    let node = TestNode::start(
        BIN,
        &http_to_webhook(
            &rx.url(),
            "retry = { schedule = [\"0s\", \"50ms\", \"50ms\", \"50ms\"] }",
        ),
    );
    let (_, body) = node
        .post_events(
            "ingest",
            &json!([{"kind": "a.b", "data": 1}, {"kind": "a.b", "data": 2}]),
        )
        .await;
    assert!(rx.wait_for(T, |r| delivered(r) == 2).await);
    let got = rx.received();
    for id in body["ids"].as_array().unwrap() {
        let tries: Vec<_> = got.iter().filter(|r| r.event_id == *id).collect();
        assert_eq!(tries.len(), 3, "two 503s then a success");
        assert!(
            tries.iter().all(|t| t.webhook_id == tries[0].webhook_id),
            "one webhook-id per event"
        );
        assert_eq!(tries.iter().map(|t| t.status).collect::<Vec<_>>(), [503, 503, 204]);
    }
    let seq = got[0].seq;
    assert!(
        wait_until(T, || async {
            node.get(&format!("/v1/subscriptions/hook/attempts/{seq}")).await.1["attempts"]
                .as_array()
                .map(|a| a.len())
                == Some(3)
        })
        .await
    );
    let (_, attempts) = node.get(&format!("/v1/subscriptions/hook/attempts/{seq}")).await;
    let a = attempts["attempts"].as_array().unwrap();
    assert_eq!(a[0]["status"], 503);
    assert_eq!(a[0]["outcome"], "retriable");
    assert_eq!(a[2]["outcome"], "delivered");
    assert!(a[0]["error"].as_str().unwrap().contains("503"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    rx.respond_with(|r| {
        if r.nth == 1 {
            Reply {
                status: 429,
                retry_after: Some(1),
                delay: None,
            }
        } else {
            Reply::ok()
        }
    });
    let node = TestNode::start(
        BIN,
        &http_to_webhook(&rx.url(), "retry = { schedule = [\"0s\", \"10ms\"] }"),
    );
    node.post_events("ingest", &json!({"kind": "a.b", "data": 1})).await;
    assert!(rx.wait_for(T, |r| delivered(r) == 1).await);
    let got = rx.received();
    assert_eq!(got.len(), 2);
    let gap = got[1].at.micros_since(got[0].at);
    assert!(gap >= 950_000, "the retry came {gap} µs after a Retry-After of 1 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_and_exhausted_failures_become_dead_letters() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    rx.respond_with(|r| match r.key.as_deref() {
        Some("bad") => Reply::status(400),
        Some("down") => Reply::status(500),
        _ => Reply::ok(),
    });
    let node = TestNode::start(
        BIN,
        &http_to_webhook(&rx.url(), "retry = { schedule = [\"0s\", \"20ms\", \"20ms\"] }"),
    );
    let batch = json!([
        {"kind": "a.b", "key": "bad", "data": 1},
        {"kind": "a.b", "key": "down", "data": 2},
        {"kind": "a.b", "key": "fine", "data": 3}
    ]);
    node.post_events("ingest", &batch).await;
    assert!(
        wait_until(T, || async {
            node.get("/v1/subscriptions/hook/dead-letters").await.1["dead_letters"]
                .as_array()
                .map(|a| a.len())
                == Some(2)
        })
        .await
    );
    let (_, dead) = node.get("/v1/subscriptions/hook/dead-letters").await;
    let dead = dead["dead_letters"].as_array().unwrap();
    let bad = dead.iter().find(|d| d["seq"] == 1).unwrap();
    assert_eq!(bad["attempts"], 1, "a 400 is permanent: no retry");
    assert_eq!(bad["last_status"], 400);
    let down = dead.iter().find(|d| d["seq"] == 2).unwrap();
    assert_eq!(down["attempts"], 3);
    assert_eq!(down["last_status"], 500);
    assert!(down["error"].as_str().unwrap().contains("retries exhausted"), "{down}");
    assert!(rx.wait_for(T, |r| delivered(r) == 1).await);
    let (_, sub) = node.get("/v1/subscriptions/hook").await;
    assert_eq!(sub["status"]["events_dead_lettered"], 2);
    // The attempt after which an event was dead-lettered is recorded as final.
    let (_, a) = node.get("/v1/subscriptions/hook/attempts/2").await;
    let outcomes: Vec<&str> = a["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["retriable", "retriable", "exhausted"], "{a}");
    let (_, a) = node.get("/v1/subscriptions/hook/attempts/1").await;
    assert_eq!(a["attempts"][0]["outcome"], "rejected", "{a}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_pauses_the_subscription_until_resumed() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    rx.respond_with(|_| Reply::status(410));
    let node = TestNode::start(BIN, &http_to_webhook(&rx.url(), "max_in_flight = 1"));
    node.post_events(
        "ingest",
        &json!([{"kind": "a.b", "data": 1}, {"kind": "a.b", "data": 2}, {"kind": "a.b", "data": 3}]),
    )
    .await;
    assert!(
        wait_until(T, || async {
            node.get("/v1/subscriptions/hook").await.1["status"]["paused"] == true
        })
        .await
    );
    assert_eq!(rx.total(), 1, "nothing more is sent to a gone endpoint");
    rx.respond_with(|_| Reply::ok());
    let (status, _) = node.post("/v1/subscriptions/hook/resume").await;
    assert_eq!(status, 200);
    assert!(
        rx.wait_for(T, |r| delivered(r) == 3).await,
        "all three delivered after resume"
    );
    let (_, dead) = node.get("/v1/subscriptions/hook/dead-letters").await;
    assert_eq!(dead["dead_letters"].as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_breaker_stops_hammering_a_failing_endpoint() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    rx.respond_with(|_| Reply::status(503));
    let extra = "max_in_flight = 1\nretry = { schedule = [\"0s\", \"1h\"] }\ncircuit_breaker = { failure_threshold = 3, cooldown_ms = 60000 }";
    let node = TestNode::start(BIN, &http_to_webhook(&rx.url(), extra));
    let events: Vec<_> = (0..20).map(|i| json!({"kind": "a.b", "data": i})).collect();
    node.post_events("ingest", &json!(events)).await;
    assert!(
        wait_until(T, || async {
            node.get("/v1/subscriptions/hook").await.1["status"]["breaker_open"] == true
        })
        .await
    );
    // Open after 3 consecutive failures: the other 17 events are not sent while it cools down. A later
    // event is the barrier: it must not arrive either.
    node.post_events("ingest", &json!({"kind": "a.b", "data": "barrier"}))
        .await;
    let (_, health) = node.get("/health").await;
    assert_eq!(health["subscriptions"]["hook"]["status"], "degraded");
    assert_eq!(rx.total(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_unless_allowed() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    let config = format!(
        "[[sources]]\nname = \"ingest\"\ntype = \"http\"\n\n[[subscriptions]]\nname = \"hook\"\n[subscriptions.sink]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{SECRET}\"\n",
        rx.url()
    );
    let node = TestNode::start(BIN, &config);
    node.post_events("ingest", &json!({"kind": "a.b", "data": 1})).await;
    assert!(
        wait_until(T, || async {
            node.get("/v1/subscriptions/hook/dead-letters").await.1["dead_letters"]
                .as_array()
                .map(|a| a.len())
                == Some(1)
        })
        .await
    );
    let (_, dead) = node.get("/v1/subscriptions/hook/dead-letters").await;
    let err = dead["dead_letters"][0]["error"].as_str().unwrap().to_owned();
    assert!(
        err.contains("127.0.0.1") && err.contains("allow_private_networks"),
        "{err}"
    );
    assert_eq!(rx.total(), 0, "no request reached the loopback receiver");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_never_slows_another_subscription() {
    let slow = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    slow.respond_with(|_| Reply {
        status: 503,
        retry_after: None,
        delay: Some(Duration::from_millis(500)),
    });
    let fast = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    let config = format!(
        "{}\n[[subscriptions]]\nname = \"fast\"\n{}",
        http_to_webhook(&slow.url(), "max_in_flight = 2"),
        tributary_testkit::webhook_sink(&fast.url(), SECRET)
    );
    let node = TestNode::start(BIN, &config);
    let events: Vec<_> = (0..50).map(|i| json!({"kind": "a.b", "data": i})).collect();
    node.post_events("ingest", &json!(events)).await;
    assert!(fast.wait_for(T, |r| delivered(r) == 50).await);
    assert!(
        slow.total() < 50,
        "the slow endpoint is still working through its backlog"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_spaces_deliveries() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    let node = TestNode::start(
        BIN,
        &http_to_webhook(&rx.url(), "rate_limit = 20.0\nmax_in_flight = 16"),
    );
    let events: Vec<_> = (0..30).map(|i| json!({"kind": "a.b", "data": i})).collect();
    node.post_events("ingest", &json!(events)).await;
    assert!(rx.wait_for(T, |r| delivered(r) == 30).await);
    let got = rx.received();
    let span = got.last().unwrap().at.micros_since(got[0].at);
    // 30 deliveries at 20/s with a burst of a tenth of a second: the last starts at least ~1.3 s after the first.
    assert!(span >= 1_250_000, "30 deliveries at 20/s took only {span} µs");
}
