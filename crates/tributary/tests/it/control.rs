//! The control plane on the running binary: tenant isolation on every endpoint, tenant subscriptions limited
//! to shared sources, API-created subscriptions (kept across restarts), secret rotation, test events.

use crate::{BIN, SECRET};
use serde_json::{Value, json};
use std::time::Duration;
use tributary_testkit::{ADMIN_KEY, Receiver, TestNode, wait_until};

const T: Duration = Duration::from_secs(20);

pub(crate) async fn call(node: &TestNode, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", node.url);
    let mut req = node.client().request(method.parse().unwrap(), url).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub(crate) fn config(url: &str) -> String {
    format!(
        "[[sources]]\nname = \"shared\"\ntype = \"http\"\ntenants = [\"*\"]\n\n[[sources]]\nname = \"private\"\ntype = \"http\"\n\n[[subscriptions]]\nname = \"from-config\"\n{}",
        tributary_testkit::webhook_sink(url, SECRET)
    )
}

/// A new tenant `name` and one API key of it.
pub(crate) async fn tenant_key(node: &TestNode, name: &str) -> String {
    let (s, _) = call(node, "POST", "/v1/tenants", ADMIN_KEY, Some(json!({"name": name}))).await;
    assert_eq!(s, 201);
    let (s, key) = call(node, "POST", &format!("/v1/tenants/{name}/keys"), ADMIN_KEY, None).await;
    assert_eq!(s, 201);
    key["key"].as_str().unwrap().to_owned()
}

fn sub(name: &str, url: &str) -> Value {
    json!({"name": name, "filter": {"sources": ["shared"]}, "sink": {"type": "webhook", "url": url}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_only_their_own_objects_and_get_404_for_others() {
    let rx = Receiver::start(None, true).await.unwrap();
    let node = TestNode::start(BIN, &config(&rx.url()));
    let a = tenant_key(&node, "alpha").await;
    let b = tenant_key(&node, "beta").await;
    // Tenants may not allow private networks: the admin creates their subscriptions on loopback.
    for (name, tenant) in [("sub-a", "alpha"), ("sub-b", "beta")] {
        let mut s = sub(name, &rx.url());
        s["tenant"] = tenant.into();
        s["sink"]["allow_private_networks"] = true.into();
        let (st, body) = call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(s)).await;
        assert_eq!(st, 201, "{body}");
    }
    let (_, shared) = call(
        &node,
        "POST",
        "/v1/sources/shared/events",
        ADMIN_KEY,
        Some(json!({"kind": "x.y", "data": 1})),
    )
    .await;
    let (_, private) = call(
        &node,
        "POST",
        "/v1/sources/private/events",
        ADMIN_KEY,
        Some(json!({"kind": "x.y", "data": 2})),
    )
    .await;
    let private_id = private["ids"][0].as_str().unwrap();
    let shared_id = shared["ids"][0].as_str().unwrap();

    // Lists show only A's objects.
    let (_, list) = call(&node, "GET", "/v1/subscriptions", &a, None).await;
    let names: Vec<&str> = list["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sub-a"]);
    let (_, stats) = call(&node, "GET", "/v1/dead-letters/stats", &a, None).await;
    assert_eq!(stats["subscriptions"].as_array().unwrap().len(), 1);
    let (_, sources) = call(&node, "GET", "/v1/sources", &a, None).await;
    assert_eq!(sources["sources"].as_array().unwrap().len(), 1);
    let (_, events) = call(&node, "GET", "/v1/events", &a, None).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1);
    assert_eq!(events["events"][0]["id"], shared_id);
    assert_eq!(
        call(&node, "GET", &format!("/v1/events/{shared_id}"), &a, None).await.0,
        200
    );

    // Every endpoint on B's objects (and the private source, and config subscriptions) answers 404.
    let cases: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/v1/subscriptions/sub-b".into(), None),
        (
            "PUT",
            "/v1/subscriptions/sub-b".into(),
            Some(sub("sub-b", "https://example.com/h")),
        ),
        ("DELETE", "/v1/subscriptions/sub-b".into(), None),
        ("GET", "/v1/subscriptions/sub-b/secret".into(), None),
        ("POST", "/v1/subscriptions/sub-b/rotate-secret".into(), Some(json!({}))),
        ("POST", "/v1/subscriptions/sub-b/pause".into(), None),
        ("POST", "/v1/subscriptions/sub-b/resume".into(), None),
        ("POST", "/v1/subscriptions/sub-b/test".into(), None),
        ("GET", "/v1/subscriptions/sub-b/deliveries".into(), None),
        ("GET", "/v1/subscriptions/sub-b/attempts/1".into(), None),
        (
            "POST",
            "/v1/subscriptions/sub-b/replay".into(),
            Some(json!({"from_seq": 1, "dry_run": true})),
        ),
        ("GET", "/v1/subscriptions/sub-b/dead-letters".into(), None),
        (
            "POST",
            "/v1/subscriptions/sub-b/dead-letters/replay".into(),
            Some(json!({"dry_run": true})),
        ),
        (
            "POST",
            "/v1/subscriptions/sub-b/dead-letters/purge".into(),
            Some(json!({"dry_run": true})),
        ),
        ("GET", "/v1/subscriptions/from-config".into(), None),
        ("GET", "/v1/sources/private".into(), None),
        ("GET", "/v1/sources/private/rejects".into(), None),
        (
            "POST",
            "/v1/sources/private/events".into(),
            Some(json!({"kind": "x.y", "data": 3})),
        ),
        ("GET", format!("/v1/events/{private_id}"), None),
    ];
    for (method, path, body) in cases {
        let (status, err) = call(&node, method, &path, &a, body).await;
        assert_eq!(status, 404, "{method} {path} as tenant alpha: {err}");
        assert_eq!(err["error"]["code"], "not_found", "{method} {path}");
    }
    // B's subscription is untouched; B sees it.
    assert_eq!(call(&node, "GET", "/v1/subscriptions/sub-b", &b, None).await.0, 200);
    // Admin-only routes are forbidden to tenants.
    assert_eq!(call(&node, "GET", "/v1/tenants", &a, None).await.0, 403);
    assert_eq!(call(&node, "POST", "/v1/tenants/alpha/keys", &a, None).await.0, 403);
    // A tenant creating a subscription gets its own tenant and no private networks.
    let (st, err) = call(&node, "POST", "/v1/subscriptions", &a, Some(json!({"name": "mine", "sink": {"type": "webhook", "url": "http://127.0.0.1:1/h", "allow_private_networks": true}}))).await;
    assert_eq!(st, 422, "{err}");
    let (st, created) = call(
        &node,
        "POST",
        "/v1/subscriptions",
        &a,
        Some(json!({"name": "mine", "sink": {"type": "webhook", "url": "https://example.com/h"}})),
    )
    .await;
    assert_eq!(st, 201, "{created}");
    assert_eq!(created["tenant"], "alpha");
    // A revoked key stops working at once.
    let (_, keys) = call(&node, "GET", "/v1/tenants/alpha/keys", ADMIN_KEY, None).await;
    let id = keys["keys"][0]["id"].as_str().unwrap().to_owned();
    assert!(keys["keys"][0].get("hash").is_none(), "hashes are never shown");
    assert_eq!(
        call(
            &node,
            "DELETE",
            &format!("/v1/tenants/alpha/keys/{id}"),
            ADMIN_KEY,
            None
        )
        .await
        .0,
        200
    );
    assert_eq!(call(&node, "GET", "/v1/subscriptions", &a, None).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_subscriptions_survive_restarts_rotate_and_test() {
    let rx = Receiver::start(None, true).await.unwrap();
    let mut node = TestNode::start(BIN, &config(&rx.url()));
    let mut s = sub("api-sub", &rx.url());
    s["sink"]["allow_private_networks"] = true.into();
    let (st, created) = call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(s.clone())).await;
    assert_eq!(st, 201, "{created}");
    assert_eq!(created["origin"], "api");
    assert_eq!(created["config"]["sink"]["secret"], "***");
    assert_eq!(
        call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(s)).await.0,
        409
    );
    let (_, secret) = call(&node, "GET", "/v1/subscriptions/api-sub/secret", ADMIN_KEY, None).await;
    let old = secret["secret"].as_str().unwrap().to_owned();
    assert!(old.starts_with("whsec_"));
    // Config-defined subscriptions are read-only.
    let (st, err) = call(
        &node,
        "PUT",
        "/v1/subscriptions/from-config",
        ADMIN_KEY,
        Some(sub("from-config", &rx.url())),
    )
    .await;
    assert_eq!((st, err["error"]["code"].as_str()), (409, Some("read_only")));
    // Rotation: the old secret keeps verifying during the overlap, the new one verifies too.
    let (st, rotated) = call(
        &node,
        "POST",
        "/v1/subscriptions/api-sub/rotate-secret",
        ADMIN_KEY,
        Some(json!({"overlap_seconds": 3600})),
    )
    .await;
    assert_eq!(st, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    let (_, test) = call(&node, "POST", "/v1/subscriptions/api-sub/test", ADMIN_KEY, None).await;
    assert_eq!(test["outcome"], "delivered", "{test}");
    assert!(
        rx.wait_for(T, |r| r
            .iter()
            .any(|x| x.body.as_ref().is_some_and(|b| b["type"] == "tributary.test")))
            .await
    );
    // Restart: the subscription comes back from the store with its rotated secrets.
    assert_eq!(node.terminate(), Some(0));
    node.spawn();
    let (st, again) = call(&node, "GET", "/v1/subscriptions/api-sub", ADMIN_KEY, None).await;
    assert_eq!((st, again["origin"].as_str()), (200, Some("api")));
    let (_, secret) = call(&node, "GET", "/v1/subscriptions/api-sub/secret", ADMIN_KEY, None).await;
    assert_eq!(secret["secret"], new.as_str());
    assert_eq!(secret["previous"][0]["secret"], old.as_str());
    let checker_old = Receiver::start(Some(old), true).await.unwrap();
    let checker_new = Receiver::start(Some(new), true).await.unwrap();
    // Point the subscription at a verifying receiver per secret and send a test event through each.
    for checker in [&checker_old, &checker_new] {
        let mut s = sub("api-sub", &checker.url());
        s["sink"]["allow_private_networks"] = true.into();
        let (st, body) = call(&node, "PUT", "/v1/subscriptions/api-sub", ADMIN_KEY, Some(s)).await;
        assert_eq!(st, 200, "{body}");
        let (_, test) = call(&node, "POST", "/v1/subscriptions/api-sub/test", ADMIN_KEY, None).await;
        assert_eq!(test["outcome"], "delivered", "{test}");
        assert_eq!(
            (checker.verified(), checker.failed()),
            (1, 0),
            "both signatures are sent during the overlap"
        );
    }
    assert_eq!(
        call(&node, "DELETE", "/v1/subscriptions/api-sub", ADMIN_KEY, None)
            .await
            .0,
        204
    );
    assert_eq!(
        call(&node, "GET", "/v1/subscriptions/api-sub", ADMIN_KEY, None).await.0,
        404
    );
    node.terminate();
    node.spawn();
    assert_eq!(
        call(&node, "GET", "/v1/subscriptions/api-sub", ADMIN_KEY, None).await.0,
        404,
        "deleted for good"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_subscriptions_never_see_unshared_sources_and_names_are_not_reused() {
    let rx = Receiver::start(None, true).await.unwrap();
    let node = TestNode::start(BIN, &config(&rx.url()));
    tenant_key(&node, "alpha").await;
    // No source filter at all: still only the sources shared with its tenant.
    let s = json!({"name": "a-all", "tenant": "alpha", "sink": {"type": "webhook", "url": rx.url(), "allow_private_networks": true}});
    assert_eq!(
        call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(s)).await.0,
        201
    );
    call(
        &node,
        "POST",
        "/v1/sources/private/events",
        ADMIN_KEY,
        Some(json!({"kind": "x.y", "data": "secret"})),
    )
    .await;
    call(
        &node,
        "POST",
        "/v1/sources/shared/events",
        ADMIN_KEY,
        Some(json!({"kind": "x.y", "data": "public"})),
    )
    .await;
    let deliveries = || async {
        let (_, d) = call(&node, "GET", "/v1/subscriptions/a-all/deliveries", ADMIN_KEY, None).await;
        d["deliveries"]
            .as_array()
            .map(|a| a.iter().map(|x| x["seq"].as_u64().unwrap()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    // The config subscription delivers both events; once it has, a-all has had its chance at both too.
    assert!(
        wait_until(T, || async {
            rx.received().len() >= 3 && !deliveries().await.is_empty()
        })
        .await
    );
    let (_, cfg) = call(
        &node,
        "GET",
        "/v1/subscriptions/from-config/deliveries",
        ADMIN_KEY,
        None,
    )
    .await;
    assert_eq!(cfg["deliveries"].as_array().unwrap().len(), 2);
    let seqs = deliveries().await;
    assert_eq!(seqs, [2], "only the shared source's event");
    let (_, replay) = call(
        &node,
        "POST",
        "/v1/subscriptions/a-all/replay",
        ADMIN_KEY,
        Some(json!({"from_seq": 1, "dry_run": true})),
    )
    .await;
    assert_eq!(replay["matched"], 1, "replays obey the tenant's sources too");
    // A deleted name keeps its history, so its tenant cannot take it again (names are per tenant: the
    // admin's own "a-all" is another subscription, with no history).
    assert_eq!(
        call(&node, "DELETE", "/v1/subscriptions/a-all", ADMIN_KEY, None)
            .await
            .0,
        204
    );
    let s = json!({"name": "a-all", "tenant": "alpha", "sink": {"type": "webhook", "url": "https://example.com/h"}});
    let (st, err) = call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(s)).await;
    assert_eq!(st, 409, "{err}");
    let s = json!({"name": "a-all", "sink": {"type": "webhook", "url": "https://example.com/h"}});
    let (st, fresh) = call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(s)).await;
    assert_eq!((st, &fresh["status"]["events_delivered"]), (201, &json!(0)), "{fresh}");
    // Concurrent creates of one name: exactly one wins.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (client, url) = (node.client().clone(), format!("{}/v1/subscriptions", node.url));
        set.spawn(async move {
            let body = json!({"name": "race", "sink": {"type": "webhook", "url": "https://example.com/h"}});
            client
                .post(url)
                .bearer_auth(ADMIN_KEY)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let statuses: Vec<u16> = set.join_all().await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 5, "{statuses:?}");
}

/// Catalog records are created by compare-and-set: of 16 concurrent creates of one tenant, and of one
/// subscription, exactly one succeeds and the others get 409; a deleted subscription's name stays taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_name_make_one_record() {
    let rx = Receiver::start(None, true).await.unwrap();
    let node = TestNode::start(BIN, &config(&rx.url()));
    let node = std::sync::Arc::new(node);
    let race = |path: &'static str, body: Value| {
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (node, body) = (node.clone(), body.clone());
                tokio::spawn(async move { call(&node, "POST", path, ADMIN_KEY, Some(body)).await.0 })
            })
            .collect();
        async move {
            let mut codes = Vec::new();
            for t in tasks {
                codes.push(t.await.unwrap());
            }
            codes.sort_unstable();
            codes
        }
    };
    let codes = race("/v1/tenants", json!({"name": "acme"})).await;
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 201 || *c == 409), "{codes:?}");
    let (_, tenants) = call(&node, "GET", "/v1/tenants", ADMIN_KEY, None).await;
    assert_eq!(tenants["tenants"].as_array().unwrap().len(), 1, "{tenants}");
    let sub = json!({"name": "once", "sink": {"type": "webhook", "url": rx.url(), "secret": SECRET, "allow_private_networks": true}});
    let codes = race("/v1/subscriptions", sub.clone()).await;
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 201 || *c == 409), "{codes:?}");
    let (st, _) = call(&node, "DELETE", "/v1/subscriptions/once", ADMIN_KEY, None).await;
    assert!(st == 200 || st == 204, "{st}");
    let (st, err) = call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(sub)).await;
    assert_eq!(st, 409, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deleted subscription"),
        "{err}"
    );
}
