//! Operating a node on the running binary: replay and dead-letter operations, Idempotency-Key, metrics
//! checked against what was sent, health, and event listing with filters and paging.

use crate::control::{call, config};
use crate::{BIN, SECRET};
use serde_json::{Value, json};
use std::time::Duration;
use tributary_testkit::{ADMIN_KEY, Receiver, Reply, TestNode, wait_until};

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_dead_letter_operations() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    rx.respond_with(|r| {
        if r.key.as_deref() == Some("bad") {
            Reply::status(400)
        } else {
            Reply::ok()
        }
    });
    let node = TestNode::start(BIN, &config(&rx.url()));
    let events: Vec<Value> = (0..5)
        .map(|i| json!({"kind": "x.y", "key": if i < 3 { "bad" } else { "good" }, "data": i}))
        .collect();
    call(
        &node,
        "POST",
        "/v1/sources/shared/events",
        ADMIN_KEY,
        Some(json!(events)),
    )
    .await;
    let dead = || async {
        call(
            &node,
            "GET",
            "/v1/subscriptions/from-config/dead-letters",
            ADMIN_KEY,
            None,
        )
        .await
        .1["dead_letters"]
            .as_array()
            .map(|a| a.len())
    };
    assert!(wait_until(T, || async { dead().await == Some(3) }).await);
    let (_, stats) = call(&node, "GET", "/v1/dead-letters/stats", ADMIN_KEY, None).await;
    assert_eq!(stats["subscriptions"][0]["count"], 3);
    let (_, health) = call(&node, "GET", "/health", ADMIN_KEY, None).await;
    assert_eq!(health["status"], "degraded", "{health}");
    // Dry run counts, acts on nothing.
    let (_, dry) = call(
        &node,
        "POST",
        "/v1/subscriptions/from-config/dead-letters/replay",
        ADMIN_KEY,
        Some(json!({"dry_run": true})),
    )
    .await;
    assert_eq!((dry["matched"].as_u64(), dry["affected"].as_u64()), (Some(3), Some(0)));
    assert_eq!(dead().await, Some(3));
    // Purge one, replay the rest once the endpoint is fixed.
    let (_, purged) = call(
        &node,
        "POST",
        "/v1/subscriptions/from-config/dead-letters/purge",
        ADMIN_KEY,
        Some(json!({"seq": 1})),
    )
    .await;
    assert_eq!(purged["affected"], 1);
    assert!(wait_until(T, || async { dead().await == Some(2) }).await);
    rx.respond_with(|_| Reply::ok());
    let (_, replayed) = call(
        &node,
        "POST",
        "/v1/subscriptions/from-config/dead-letters/replay",
        ADMIN_KEY,
        Some(json!({})),
    )
    .await;
    assert_eq!(replayed["affected"], 2);
    assert!(wait_until(T, || async { dead().await == Some(0) }).await);
    let ok = |r: &[tributary_testkit::Received]| r.iter().filter(|x| x.status < 300).count();
    assert!(rx.wait_for(T, |r| ok(r) == 4).await, "2 good + 2 replayed");
    // Replay a range of the log: seq 4..=5 again, same webhook-ids.
    let (_, dry) = call(
        &node,
        "POST",
        "/v1/subscriptions/from-config/replay",
        ADMIN_KEY,
        Some(json!({"from_seq": 4, "to_seq": 5, "dry_run": true})),
    )
    .await;
    assert_eq!((dry["matched"].as_u64(), dry["requeued"].as_u64()), (Some(2), Some(0)));
    let (_, done) = call(
        &node,
        "POST",
        "/v1/subscriptions/from-config/replay",
        ADMIN_KEY,
        Some(json!({"from_seq": 4, "to_seq": 5})),
    )
    .await;
    assert_eq!(done["requeued"], 2);
    assert!(rx.wait_for(T, |r| ok(r) == 6).await);
    let got = rx.received();
    for seq in [4, 5] {
        let ids: std::collections::HashSet<_> = got
            .iter()
            .filter(|r| r.seq == seq)
            .map(|r| r.webhook_id.clone())
            .collect();
        assert_eq!(ids.len(), 1, "a replay keeps the webhook-id");
    }
    // The receiver answers before the worker commits the attempt: wait for the record.
    let listed = || async {
        call(
            &node,
            "GET",
            "/v1/subscriptions/from-config/deliveries",
            ADMIN_KEY,
            None,
        )
        .await
        .1
    };
    let recorded = |v: &Value| v["deliveries"][1]["attempts"].as_array().map(Vec::len) == Some(2);
    assert!(wait_until(T, || async { recorded(&listed().await) }).await);
    let deliveries = listed().await;
    let d = deliveries["deliveries"].as_array().unwrap();
    assert_eq!(d.len(), 5);
    assert_eq!(
        d[1]["attempts"].as_array().unwrap().len(),
        2,
        "seq 2: a 400, then the replayed success"
    );
    let (_, health) = call(&node, "GET", "/health", ADMIN_KEY, None).await;
    assert_eq!(health["status"], "ok", "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_return_the_first_answer() {
    let rx = Receiver::start(None, false).await.unwrap();
    let node = TestNode::start(BIN, &config(&rx.url()));
    let post = |body: Value| {
        node.client()
            .post(format!("{}/v1/sources/shared/events", node.url))
            .bearer_auth(ADMIN_KEY)
            .header("Idempotency-Key", "order-42")
            .json(&body)
            .send()
    };
    let first = post(json!({"kind": "x.y", "data": 1})).await.unwrap();
    assert_eq!(first.status().as_u16(), 202);
    let first: Value = first.json().await.unwrap();
    let again = post(json!({"kind": "x.y", "data": 1})).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first, "the first answer (accepted: 1), not a duplicate count");
    let other = post(json!({"kind": "x.y", "data": 2})).await.unwrap();
    assert_eq!(other.status().as_u16(), 422);
    let err: Value = other.json().await.unwrap();
    assert_eq!(err["error"]["code"], "idempotency_key_reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_was_sent_and_health_reports_stalls() {
    let rx = Receiver::start(None, false).await.unwrap();
    rx.respond_with(|r| {
        if r.nth == 1 && r.seq % 2 == 0 {
            Reply::status(503)
        } else {
            Reply::ok()
        }
    });
    let config = format!(
        "[[sources]]\nname = \"ingest\"\ntype = \"http\"\n\n[[sources]]\nname = \"quiet\"\ntype = \"http\"\nstall_after_ms = 300\n\n[[subscriptions]]\nname = \"hook\"\nretry = {{ schedule = [\"0s\", \"10ms\"] }}\n{}",
        tributary_testkit::webhook_sink(&rx.url(), SECRET)
    );
    let node = TestNode::start(BIN, &config);
    let events: Vec<Value> = (0..10).map(|i| json!({"kind": "x.y", "data": i})).collect();
    call(
        &node,
        "POST",
        "/v1/sources/ingest/events",
        ADMIN_KEY,
        Some(json!(events)),
    )
    .await;
    call(
        &node,
        "POST",
        "/v1/sources/ingest/events",
        ADMIN_KEY,
        Some(json!([{"kind": "x.y", "data": 0}])),
    )
    .await;
    let metrics = || async {
        node.client()
            .get(format!("{}/metrics", node.url))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let value = |text: &str, needle: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    assert!(
        wait_until(T, || async {
            value(
                &metrics().await,
                "tributary_sink_events_delivered_total{subscription=\"hook\"}",
            ) == Some(10.0)
        })
        .await
    );
    let m = metrics().await;
    let expected = [
        ("tributary_source_events_received_total{source=\"ingest\"}", 11.0),
        ("tributary_source_events_stored_total{source=\"ingest\"}", 10.0),
        (
            "tributary_source_events_dropped_total{source=\"ingest\",reason=\"duplicate\"}",
            1.0,
        ),
        (
            "tributary_delivery_attempts_total{subscription=\"hook\",outcome=\"delivered\",status_class=\"2xx\"}",
            10.0,
        ),
        (
            "tributary_delivery_attempts_total{subscription=\"hook\",outcome=\"retriable\",status_class=\"5xx\"}",
            5.0,
        ),
        ("tributary_sink_events_received_total{subscription=\"hook\"}", 10.0),
        ("tributary_delivery_latency_seconds_count{subscription=\"hook\"}", 10.0),
        ("tributary_subscription_backlog_events{subscription=\"hook\"}", 0.0),
        ("tributary_subscription_dead_letters{subscription=\"hook\"}", 0.0),
    ];
    for (name, want) in expected {
        assert_eq!(value(&m, name), Some(want), "{name} in:\n{m}");
    }
    assert!(value(&m, "tributary_store_append_seconds_count").is_some_and(|n| n >= 2.0));
    // The quiet source has stall_after_ms = 300 and never stores anything: stalled, 503.
    let health = || async {
        node.client()
            .get(format!("{}/health", node.url))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
    };
    assert!(wait_until(T, || async { health().await.status().as_u16() == 503 }).await);
    let h: Value = health().await.json().await.unwrap();
    assert_eq!(h["status"], "stalled");
    assert_eq!(h["sources"]["quiet"]["status"], "stalled");
    assert_eq!(h["sources"]["ingest"]["status"], "ok");
    let (_, src) = call(&node, "GET", "/v1/sources/ingest", ADMIN_KEY, None).await;
    assert_eq!(src["status"]["stored"], 10);
    assert_eq!(src["status"]["connected"], true);
    assert!(src["status"]["last_event_at"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_listing_filters_and_pages_without_skipping_while_events_arrive() {
    let rx = Receiver::start(None, false).await.unwrap();
    let node = TestNode::start(BIN, &config(&rx.url()));
    let batch = |from: usize| -> Value {
        json!((from..from + 10)
            .map(|i| json!({"kind": if i % 2 == 0 { "orders.created" } else { "users.joined" }, "key": format!("k{}", i % 3), "data": i}))
            .collect::<Vec<_>>())
    };
    call(&node, "POST", "/v1/sources/shared/events", ADMIN_KEY, Some(batch(0))).await;
    call(&node, "POST", "/v1/sources/private/events", ADMIN_KEY, Some(batch(100))).await;
    // Filters: kind pattern, source, key.
    let (_, page) = call(
        &node,
        "GET",
        "/v1/events?kind=orders.*&source=shared&key=k0&limit=100",
        ADMIN_KEY,
        None,
    )
    .await;
    let data: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"].as_u64().unwrap())
        .collect();
    assert_eq!(data, [0, 6], "orders.* from shared with key k0");
    assert_eq!(page["last_seq"], 20);
    let (st, err) = call(&node, "GET", "/v1/events?since=yesterday", ADMIN_KEY, None).await;
    assert_eq!((st, err["error"]["code"].as_str()), (400, Some("invalid_query")));
    let (_, none) = call(&node, "GET", "/v1/events?until=2000-01-01T00:00:00Z", ADMIN_KEY, None).await;
    assert_eq!(none["events"].as_array().unwrap().len(), 0);
    // Paging 3 at a time while new events keep arriving: every event once, in order.
    let mut seen = Vec::new();
    let mut after = 0;
    for round in 0..40 {
        if round % 3 == 0 && round < 15 {
            call(
                &node,
                "POST",
                "/v1/sources/shared/events",
                ADMIN_KEY,
                Some(batch(1000 + round * 10)),
            )
            .await;
        }
        let (_, page) = call(
            &node,
            "GET",
            &format!("/v1/events?after={after}&limit=3"),
            ADMIN_KEY,
            None,
        )
        .await;
        seen.extend(
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["seq"].as_u64().unwrap()),
        );
        after = page["next_after"].as_u64().unwrap();
    }
    let total = call(&node, "GET", "/v1/events?limit=1", ADMIN_KEY, None).await.1["last_seq"]
        .as_u64()
        .unwrap();
    assert_eq!(seen, (1..=total).collect::<Vec<_>>(), "no event skipped or repeated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_cover_the_query_and_ignore_unauthenticated_calls() {
    let rx = Receiver::start(None, false).await.unwrap();
    let node = TestNode::start(BIN, &config(&rx.url()));
    let post = |query: &str, key: &str| {
        node.client()
            .post(format!("{}/v1/sources/shared/events{query}", node.url))
            .bearer_auth(key)
            .header("Idempotency-Key", "k-1")
            .json(&json!({"kind": "x.y", "data": 1}))
            .send()
    };
    assert_eq!(post("", "wrong-key").await.unwrap().status().as_u16(), 401);
    assert_eq!(post("?dry_run=true", ADMIN_KEY).await.unwrap().status().as_u16(), 202);
    let real = post("", ADMIN_KEY).await.unwrap();
    assert_eq!(
        real.status().as_u16(),
        422,
        "a dry run and the real call are different requests"
    );
    let other = node
        .client()
        .post(format!("{}/v1/sources/shared/events", node.url))
        .bearer_auth(ADMIN_KEY)
        .header("Idempotency-Key", "k-2")
        .json(&json!({"kind": "x.y", "data": 1}))
        .send()
        .await
        .unwrap();
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["accepted"], 1, "the 401 with the same key stored nothing");
}
