//! The sink compliance kit (ADR 0006): the same checks for every sink type, on the real binary and the
//! sink's real server. A sink's integration test calls [`check_sink`] with a destination of its own and a
//! way to read back the event ids written there.
//!
//! Checked, in order:
//! 1. every standard series of the subscription is on `/metrics` at 0 before the first event;
//! 2. a tenant key cannot create the sink (`422 sink.type: only the admin may create …`) unless granted;
//! 3. nothing acknowledged is lost: 1,000 events posted in ten batches with a SIGKILL of the node after
//!    the fifth, and every acknowledged event arrives, exactly once (or at least once, for a sink that
//!    does not promise more), and nothing else;
//! 4. the counters moved: `events_delivered` in the view and on `/metrics` after the restart;
//! 5. a name template that does not resolve is a `rejected` dead letter naming the placeholder;
//! 6. SIGTERM with deliveries in flight ends the node within `shutdown_grace_ms` (plus start-up slack).

use crate::{ADMIN_KEY, TestNode, wait_until};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(90);
/// The grace period of every test node ([`TestNode::start`]).
const GRACE_MS: u64 = 5000;

/// A sink type under test.
pub struct SinkCase {
    /// The sink type as written in config (`redis`).
    pub type_name: &'static str,
    /// The `[subscriptions.sink]` keys (TOML lines, `type` included) of a destination unique to this run.
    pub sink: String,
    /// The same destination with a name template that does not resolve (`{data.missing}`), for sinks
    /// with templates.
    pub unresolved: Option<String>,
    /// Whether the destination holds each event exactly once across a crash (false: at least once).
    pub exactly_once: bool,
}

/// Runs every check against `case`; `read_ids` returns the event ids (hex) now in the destination, one
/// per message (so duplicates show).
pub async fn check_sink<F, Fut>(bin: &str, case: &SinkCase, mut read_ids: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Vec<String>>,
{
    let config = format!(
        "[[sources]]\nname = \"in\"\ntype = \"http\"\ntenants = [\"*\"]\n\n[[subscriptions]]\nname = \"compliance\"\nmax_in_flight = 16\n[subscriptions.sink]\n{}\n",
        case.sink
    );
    let mut node = TestNode::start(bin, &config);
    let what = case.type_name;

    // 1. The series are there from the start.
    let text = metrics(&node).await;
    for series in [
        "tributary_sink_events_received_total{subscription=\"compliance\"} 0",
        "tributary_sink_events_delivered_total{subscription=\"compliance\"} 0",
        "tributary_sink_errors_total{subscription=\"compliance\",stage=\"deliver\"} 0",
        "tributary_source_events_received_total{source=\"in\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == series),
            "{what}: {series} missing from /metrics at start:\n{text}"
        );
    }

    // 2. The sink is the admin's.
    let admin_only = sink_json(&case.sink);
    let (st, _) = call(
        &node,
        "POST",
        "/v1/tenants",
        ADMIN_KEY,
        Some(json!({"name": "compliance-tenant"})),
    )
    .await;
    assert_eq!(st, 201, "{what}: create tenant");
    let (st, key) = call(&node, "POST", "/v1/tenants/compliance-tenant/keys", ADMIN_KEY, None).await;
    assert_eq!(st, 201, "{what}: create key");
    let key = key["key"].as_str().expect("a key").to_owned();
    let sub = json!({"name": "tenant-try", "sink": admin_only});
    let (st, err) = call(&node, "POST", "/v1/subscriptions", &key, Some(sub)).await;
    let msg = err["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(st, 422, "{what}: a tenant key must not create the sink: {err}");
    assert!(
        msg.starts_with(&format!("sink.type: only the admin may create {what} subscriptions")),
        "{what}: {msg}"
    );

    // 3. Nothing acknowledged is lost across a SIGKILL during delivery.
    let mut acked = BTreeSet::new();
    for batch in 0..10 {
        let events: Vec<Value> = (0..100)
            .map(|i| json!({"kind": "compliance.event", "key": format!("k-{batch}-{i}"), "data": {"n": batch * 100 + i, "chain_id": 1}}))
            .collect();
        let (st, body) = node.post_events("in", &json!(events)).await;
        assert_eq!(st, 202, "{what}: {body}");
        acked.extend(
            body["ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|v| v.as_str().expect("id").to_owned()),
        );
        if batch == 4 {
            node.kill();
            node.spawn();
        }
    }
    assert_eq!(acked.len(), 1000, "{what}: distinct events acknowledged");
    let arrived = wait_until(T, || {
        let fut = read_ids();
        let acked = &acked;
        async move { fut.await.iter().collect::<BTreeSet<_>>().len() >= acked.len() }
    })
    .await;
    let got = read_ids().await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for id in &got {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    assert!(
        arrived,
        "{what}: only {} of {} acknowledged events arrived",
        counts.len(),
        acked.len()
    );
    let distinct: BTreeSet<String> = counts.keys().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        distinct, acked,
        "{what}: the destination holds exactly the acknowledged events"
    );
    if case.exactly_once {
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).take(5).collect();
        assert!(twice.is_empty(), "{what}: events written more than once: {twice:?}");
    }

    // 4. The counters moved (they count since the restart).
    let (st, body) = node
        .post_events(
            "in",
            &json!([{"kind": "compliance.event", "data": {"n": -1, "chain_id": 1}}]),
        )
        .await;
    assert_eq!(st, 202, "{what}: {body}");
    assert!(
        wait_until(T, || async {
            let (_, v) = node.get("/v1/subscriptions/compliance").await;
            v["status"]["events_delivered"].as_u64().unwrap_or(0) >= 1
        })
        .await,
        "{what}: events_delivered did not move"
    );
    let text = metrics(&node).await;
    assert!(
        !text
            .lines()
            .any(|l| l == "tributary_sink_events_delivered_total{subscription=\"compliance\"} 0"),
        "{what}: /metrics did not move:\n{text}"
    );

    // 5. An unresolved name is a rejected dead letter naming the placeholder.
    if let Some(unresolved) = &case.unresolved {
        let sub = json!({"name": "unresolved", "filter": {"kinds": ["compliance.unresolved"]}, "sink": sink_json(unresolved)});
        let (st, v) = call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(sub)).await;
        assert_eq!(st, 201, "{what}: {v}");
        let (st, _) = node
            .post_events("in", &json!([{"kind": "compliance.unresolved", "data": {}}]))
            .await;
        assert_eq!(st, 202);
        let dead = || async {
            let (_, d) = node.get("/v1/subscriptions/unresolved/dead-letters").await;
            d
        };
        assert!(
            wait_until(T, || async {
                dead().await["dead_letters"].as_array().is_some_and(|a| !a.is_empty())
            })
            .await,
            "{what}: no dead letter for an unresolved template"
        );
        let d = dead().await;
        let letter = &d["dead_letters"][0];
        // Rejected: dead after its first attempt (a retriable failure would follow the retry schedule).
        assert_eq!(letter["attempts"], 1, "{what}: {d}");
        assert!(
            letter["error"].as_str().is_some_and(|e| e.contains("{data.missing}")),
            "{what}: {d}"
        );
    }

    // 6. Shutdown within the grace period, with deliveries in flight.
    let events: Vec<Value> = (0..500)
        .map(|i| json!({"kind": "compliance.event", "data": {"n": 10_000 + i, "chain_id": 1}}))
        .collect();
    let (st, _) = node.post_events("in", &json!(events)).await;
    assert_eq!(st, 202);
    let started = Instant::now();
    let code = node.terminate();
    let took = started.elapsed();
    assert_eq!(code, Some(0), "{what}: SIGTERM exit code");
    assert!(
        took < Duration::from_millis(GRACE_MS) + Duration::from_secs(5),
        "{what}: the node took {took:?} to stop with shutdown_grace_ms = {GRACE_MS}"
    );
}

/// The sink's TOML lines as the API's JSON.
fn sink_json(lines: &str) -> Value {
    let table: toml::Table = toml::from_str(lines).expect("the case's sink lines are TOML");
    serde_json::to_value(table).expect("TOML converts to JSON")
}

/// The node's `/metrics` text (read with the admin key).
pub(crate) async fn metrics(node: &TestNode) -> String {
    let resp = node
        .client()
        .get(format!("{}/metrics", node.url))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("metrics");
    resp.text().await.expect("metrics text")
}

async fn call(node: &TestNode, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = node
        .client()
        .request(method, format!("{}{path}", node.url))
        .bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}
