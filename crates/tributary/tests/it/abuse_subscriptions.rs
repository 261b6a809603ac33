//! Abuse of the subscription API on the running binary (issue 7, items 1, 2, 4, 13 and 14): every number a
//! client sets is bounded and a 422 names the field; a stored record that cannot be loaded is reported and
//! paused, never fatal at start; a tenant has a bounded number of subscriptions; secrets, URL passwords and
//! header values are never shown; a node-wide bound holds deliveries in flight.

use crate::SECRET;
use crate::control::{call, config, tenant_key};
use serde_json::{Value, json};
use std::time::Duration;
use tributary_testkit::{ADMIN_KEY, Receiver, Reply, TestNode, wait_until};

const T: Duration = Duration::from_secs(20);

fn webhook(url: &str) -> Value {
    json!({"type": "webhook", "url": url, "allow_private_networks": true})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_every_number_of_a_subscription_is_bounded_and_the_422_names_it() {
    let rx = Receiver::start(None, true).await.unwrap();
    let mut node = TestNode::start(crate::BIN, &config(&rx.url()));
    let many_kinds: Vec<String> = (0..2000).map(|i| format!("k{i}")).collect();
    let probes: Vec<(Value, &str)> = vec![
        (json!({"rate_limit": 1e-300}), "rate_limit"),
        (json!({"rate_limit": 1e300}), "rate_limit"),
        (json!({"max_in_flight": 1_000_000}), "max_in_flight"),
        (json!({"max_in_flight": 0}), "max_in_flight"),
        (json!({"retry": {"schedule": ["0s", "10000y"]}}), "retry.schedule[1]"),
        (json!({"retry": {"schedule": vec!["1s"; 100]}}), "retry.schedule"),
        (json!({"retry": {"jitter": 5.0}}), "retry.jitter"),
        (
            json!({"circuit_breaker": {"cooldown_ms": u64::MAX}}),
            "circuit_breaker.cooldown_ms",
        ),
        (
            json!({"circuit_breaker": {"failure_threshold": 0}}),
            "circuit_breaker.failure_threshold",
        ),
        (
            json!({"circuit_breaker": {"cooldown_ms": 5000, "max_cooldown_ms": 10}}),
            "circuit_breaker.max_cooldown_ms",
        ),
        (json!({"filter": {"kinds": many_kinds}}), "filter.kinds"),
        (json!({"name": "n".repeat(200)}), "name"),
        (
            json!({"sink": {"type": "webhook", "url": "http://127.0.0.1:1/", "timeout": "100h"}}),
            "sink.timeout",
        ),
        (
            json!({"sink": {"type": "webhook", "url": format!("http://127.0.0.1:1/{}", "a".repeat(5000))}}),
            "sink.url",
        ),
    ];
    for (i, (patch, field)) in probes.into_iter().enumerate() {
        let mut body = json!({"name": format!("probe-{i}"), "sink": webhook(&rx.url())});
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(body)).await;
        assert_eq!(status, 422, "probe {i} ({field}) was accepted: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(field),
            "probe {i}: the message should name {field}: {message}"
        );
        assert!(
            message.contains("expected"),
            "probe {i}: the message should say what is expected: {message}"
        );
    }
    // Nothing of it was kept: the node restarts, and only the config subscription exists.
    assert_eq!(node.terminate(), Some(0));
    node.spawn();
    let (s, list) = call(&node, "GET", "/v1/subscriptions", ADMIN_KEY, None).await;
    assert_eq!(s, 200);
    assert_eq!(list["subscriptions"].as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_stored_records_that_cannot_load_are_reported_paused_and_removable() {
    let rx = Receiver::start(None, true).await.unwrap();
    let mut node = TestNode::start(crate::BIN, &config(&rx.url()));
    let alpha = tenant_key(&node, "alpha").await;
    let (s, _) = call(
        &node,
        "POST",
        "/v1/subscriptions",
        ADMIN_KEY,
        Some(json!({"name": "fine", "tenant": "alpha", "sink": webhook(&rx.url())})),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(node.terminate(), Some(0));
    // What an earlier version could store: a rate limit that made every start panic, a record that no
    // longer parses at all, and one that names a source since removed from the config.
    {
        use tributary_core::{Catalog, Expect, RecordKind};
        let store = tributary_store::FjallStore::open(&node.dir.path().join("data")).unwrap();
        let put = |name: &'static str, value: String| {
            let store = &store;
            async move {
                let set = store.compare_and_set(RecordKind::Subscription, name, Expect::Absent, Some(&value));
                set.await.unwrap().unwrap();
            }
        };
        let sink = json!({"type": "webhook", "url": rx.url(), "secret": SECRET, "allow_private_networks": true});
        let evil = json!({"name": "evil", "tenant": "alpha", "rate_limit": 1e-300, "sink": sink});
        put("evil", evil.to_string()).await;
        let garbled = json!({"name": "garbled", "tenant": "alpha", "sink": 7});
        put("garbled", garbled.to_string()).await;
        put("truncated", "{\"name\": \"trunc".to_owned()).await;
        let gone = json!({"name": "gone-source", "filter": {"sources": ["removed"]}, "sink": sink});
        put("gone-source", gone.to_string()).await;
    }
    node.spawn();
    // The node started, says what is wrong, and keeps serving the healthy subscription.
    let (s, health) = call(&node, "GET", "/health", ADMIN_KEY, None).await;
    assert_eq!(s, 200, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    for name in ["evil", "garbled", "gone-source", "truncated"] {
        assert_eq!(health["subscriptions"][name]["status"], "failed", "{name}: {health}");
    }
    assert!(
        health["subscriptions"]["evil"]["reason"]
            .as_str()
            .unwrap()
            .contains("rate_limit"),
        "{health}"
    );
    let (s, evil) = call(&node, "GET", "/v1/subscriptions/evil", &alpha, None).await;
    assert_eq!(s, 200, "the owning tenant sees its broken subscription: {evil}");
    assert!(evil["problem"].as_str().unwrap().contains("rate_limit"), "{evil}");
    assert_eq!(evil["config"]["sink"]["secret"], "***", "{evil}");
    assert_eq!(evil["status"]["paused"], true);
    let (s, _) = call(&node, "GET", "/v1/subscriptions/gone-source", &alpha, None).await;
    assert_eq!(
        s, 404,
        "another tenant's (here: the admin's) broken subscription stays invisible"
    );
    let (s, _) = call(
        &node,
        "POST",
        "/v1/sources/shared/events",
        ADMIN_KEY,
        Some(json!({"kind": "a.b", "data": 1})),
    )
    .await;
    assert_eq!(s, 202);
    assert!(
        wait_until(T, || async { rx.received().len() >= 2 }).await,
        "from-config and fine deliver"
    );
    // The tenant fixes one and deletes the other; the admin deletes the third.
    // A public endpoint: a tenant may not deliver to loopback (422). The repaired subscription stays paused,
    // so nothing is sent to it.
    let fixed = json!({"tenant": "alpha", "rate_limit": 100.0, "sink": {"type": "webhook", "url": "https://hooks.example.com/x"}});
    let loopback = json!({"tenant": "alpha", "rate_limit": 100.0, "sink": {"type": "webhook", "url": rx.url()}});
    let (s, body) = call(&node, "PUT", "/v1/subscriptions/evil", &alpha, Some(loopback)).await;
    assert_eq!(s, 422, "{body}");
    let (s, body) = call(&node, "PUT", "/v1/subscriptions/evil", &alpha, Some(fixed)).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.get("problem").is_none(), "{body}");
    let (s, _) = call(&node, "DELETE", "/v1/subscriptions/garbled", &alpha, None).await;
    assert_eq!(s, 204);
    for name in ["gone-source", "truncated"] {
        let (s, _) = call(&node, "DELETE", &format!("/v1/subscriptions/{name}"), ADMIN_KEY, None).await;
        assert_eq!(s, 204, "{name}");
    }
    assert_eq!(node.terminate(), Some(0));
    node.spawn();
    let (_, health) = call(&node, "GET", "/health", ADMIN_KEY, None).await;
    let subs = health["subscriptions"].as_object().unwrap();
    assert!(subs.values().all(|c| c["status"] != "failed"), "{health}");
    for name in ["garbled", "gone-source", "truncated"] {
        assert!(!subs.contains_key(name), "{name}: {health}");
    }
    assert_eq!(health["subscriptions"]["evil"]["status"], "paused", "{health}");
    let (_, evil) = call(&node, "GET", "/v1/subscriptions/evil", ADMIN_KEY, None).await;
    assert_eq!(
        evil["status"]["paused"], true,
        "a repaired subscription starts paused: {evil}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_a_seven_day_retry_is_written_and_read_back_across_restarts() {
    let rx = Receiver::start(None, true).await.unwrap();
    rx.respond_with(|_| Reply::status(503));
    let mut node = TestNode::start(crate::BIN, &config(&rx.url()));
    let body = json!({"name": "slow", "retry": {"schedule": ["0s", "7d"], "jitter": 0.0},
        "filter": {"sources": ["shared"]}, "sink": webhook(&rx.url())});
    let (s, answer) = call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(body)).await;
    assert_eq!(s, 201, "{answer}");
    let (s, _) = call(
        &node,
        "POST",
        "/v1/sources/shared/events",
        ADMIN_KEY,
        Some(json!({"kind": "a.b", "data": 2})),
    )
    .await;
    assert_eq!(s, 202);
    let pending = || async {
        let (_, v) = call(&node, "GET", "/v1/subscriptions/slow", ADMIN_KEY, None).await;
        v["status"]["pending"] == 1
    };
    assert!(wait_until(T, pending).await);
    assert_eq!(node.terminate(), Some(0));
    node.spawn();
    let (s, v) = call(&node, "GET", "/v1/subscriptions/slow", ADMIN_KEY, None).await;
    assert_eq!((s, &v["status"]["pending"]), (200, &json!(1)), "{v}");
    assert!(v.get("problem").is_none(), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_tenants_have_a_bounded_number_of_subscriptions_and_never_see_credentials() {
    let rx = Receiver::start(None, true).await.unwrap();
    let body = format!("{}\n[limits]\nmax_subscriptions_per_tenant = 3\n", config(&rx.url()));
    let node = TestNode::start(crate::BIN, &body);
    let alpha = tenant_key(&node, "alpha").await;
    let beta = tenant_key(&node, "beta").await;
    for i in 0..3 {
        let s = json!({"name": format!("a-{i}"), "tenant": "alpha", "sink": webhook(&rx.url())});
        let (st, b) = call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(s)).await;
        assert_eq!(st, 201, "{b}");
    }
    let (st, b) = call(
        &node,
        "POST",
        "/v1/subscriptions",
        &alpha,
        Some(json!({"name": "a-3", "sink": {"type": "webhook", "url": "https://hooks.example.com/x"}})),
    )
    .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(b["error"]["code"], "too_many_subscriptions");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_subscriptions_per_tenant"),
        "{b}"
    );
    // Another tenant is not affected by alpha's limit.
    let mine = json!({"name": "b-0", "sink": {"type": "webhook", "url": "https://user:hunter2@hooks.example.com/x",
        "headers": {"X-Api-Key": "top-secret-value"}}});
    let (st, b) = call(&node, "POST", "/v1/subscriptions", &beta, Some(mine)).await;
    assert_eq!(st, 201, "{b}");
    for answer in [b, call(&node, "GET", "/v1/subscriptions/b-0", &beta, None).await.1] {
        let text = answer.to_string();
        assert!(
            !text.contains("hunter2") && !text.contains("top-secret-value"),
            "{text}"
        );
        assert_eq!(answer["config"]["sink"]["url"], "https://user:***@hooks.example.com/x");
        assert_eq!(answer["config"]["sink"]["headers"]["X-Api-Key"], "***");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_subscription_names_are_per_tenant_so_a_conflict_reveals_nothing() {
    let rx = Receiver::start(None, true).await.unwrap();
    let node = TestNode::start(crate::BIN, &config(&rx.url()));
    let alpha = tenant_key(&node, "alpha").await;
    let beta = tenant_key(&node, "beta").await;
    let hook = json!({"type": "webhook", "url": "https://hooks.example.com/x"});
    for key in [&alpha, &beta] {
        let (s, b) = call(
            &node,
            "POST",
            "/v1/subscriptions",
            key,
            Some(json!({"name": "orders", "sink": hook})),
        )
        .await;
        assert_eq!(s, 201, "both tenants may call a subscription orders: {b}");
        assert_eq!(b["name"], "orders");
        let (s, b) = call(
            &node,
            "POST",
            "/v1/subscriptions",
            key,
            Some(json!({"name": "orders", "sink": hook})),
        )
        .await;
        assert_eq!(s, 409, "only a tenant's own name conflicts: {b}");
    }
    // The name of the config file's subscription does not conflict either.
    let (s, _) = call(
        &node,
        "POST",
        "/v1/subscriptions",
        &alpha,
        Some(json!({"name": "from-config", "sink": hook})),
    )
    .await;
    assert_eq!(s, 201);
    let (_, mine) = call(&node, "GET", "/v1/subscriptions/orders", &alpha, None).await;
    assert_eq!(
        (mine["name"].as_str(), mine["tenant"].as_str()),
        (Some("orders"), Some("alpha")),
        "{mine}"
    );
    let (s, _) = call(&node, "POST", "/v1/subscriptions/orders/pause", &beta, None).await;
    assert_eq!(s, 200);
    let (_, a) = call(&node, "GET", "/v1/subscriptions/orders", &alpha, None).await;
    assert_eq!(a["status"]["paused"], false, "beta paused its own orders, not alpha's");
    let (s, _) = call(&node, "GET", "/v1/subscriptions/beta:orders", &alpha, None).await;
    assert_eq!(s, 404);
    // The admin sees both, by their full names.
    let (_, all) = call(&node, "GET", "/v1/subscriptions", ADMIN_KEY, None).await;
    let names: Vec<&str> = all["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for n in ["alpha:orders", "beta:orders", "alpha:from-config", "from-config"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    // The pause reaches beta's worker through its control channel: wait for it.
    let paused = || async {
        let (s, b) = call(&node, "GET", "/v1/subscriptions/beta:orders", ADMIN_KEY, None).await;
        s == 200 && b["status"]["paused"] == json!(true)
    };
    assert!(wait_until(T, paused).await);
}
