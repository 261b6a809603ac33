//! The `redis` sink on the running binary against the machine's Redis (`TRIBUTARY_REDIS_URL`, by default
//! `redis://127.0.0.1:6379`; `./scripts/test.sh` starts it when it can): events posted to an http source
//! arrive as stream entries exactly once, across a SIGKILL during delivery; the sink is the admin's
//! (a tenant key gets a 422 naming `sink.type`).

use crate::BIN;
use crate::control::{call, tenant_key};
use redis::AsyncCommands;
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;
use tributary_testkit::{ADMIN_KEY, TestNode, wait_until};

const T: Duration = Duration::from_secs(60);

fn url() -> String {
    std::env::var("TRIBUTARY_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn redis() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap_or_else(|e| {
        panic!(
            "no Redis at {} ({e}): start one (redis-server --port 6379) or set TRIBUTARY_REDIS_URL; ./scripts/test.sh does this",
            url()
        )
    })
}

fn unique(prefix: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    let n = RandomState::new().hash_one(std::time::SystemTime::now());
    format!("{prefix}-{}-{n:016x}", std::process::id())
}

/// The `id` field of every entry of `stream`.
async fn ids(conn: &mut redis::aio::MultiplexedConnection, stream: &str) -> Vec<String> {
    let reply: redis::streams::StreamRangeReply = conn.xrange_all(stream).await.unwrap();
    reply
        .ids
        .iter()
        .map(|e| e.get::<String>("id").expect("every entry has an id field"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sink_writes_each_event_once_across_a_sigkill() {
    let mut conn = redis().await;
    let base = unique("tributary-it");
    let config = format!(
        "[[sources]]\nname = \"orders\"\ntype = \"http\"\ntenants = [\"*\"]\n\n[[subscriptions]]\nname = \"to-redis\"\nmax_in_flight = 16\n[subscriptions.sink]\ntype = \"redis\"\nurl = {:?}\nstream = \"{base}:{{data.chain_id}}\"\n",
        url()
    );
    let mut node = TestNode::start(BIN, &config);
    let mut acked = BTreeSet::new();
    for batch in 0..20 {
        let events: Vec<_> = (0..100)
            .map(|i| json!({"kind": "order.created", "key": format!("o-{batch}-{i}"), "data": {"chain_id": 1, "n": batch * 100 + i}}))
            .collect();
        let (st, body) = node.post_events("orders", &json!(events)).await;
        assert_eq!(st, 202, "{body}");
        acked.extend(
            body["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned()),
        );
        if batch == 10 {
            node.kill(); // during delivery: some entries are written, their cursor may not be
            node.spawn();
        }
    }
    assert_eq!(acked.len(), 2000);
    let stream = format!("{base}:1");
    assert!(
        wait_until(T, || async { ids(&mut redis().await, &stream).await.len() >= 2000 }).await,
        "every acknowledged event reaches the stream"
    );
    // Let the worker settle, then check: nothing more, nothing twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = ids(&mut conn, &stream).await;
    let distinct: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(
        got.len(),
        2000,
        "each event exactly once (entries: {}, distinct: {})",
        got.len(),
        distinct.len()
    );
    assert_eq!(distinct, acked);
    let (_, sub) = node.get("/v1/subscriptions/to-redis").await;
    assert_eq!(sub["sink"], format!("redis {} stream {base}:{{data.chain_id}}", url()));
    let _: () = conn.del(&stream).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sink_is_for_the_admin_and_an_unresolved_stream_is_a_dead_letter() {
    let mut conn = redis().await;
    let base = unique("tributary-it-admin");
    let node = TestNode::start(
        BIN,
        "[limits.tenant_sinks]\nglobex = [\"redis\"]\n\n[[sources]]\nname = \"orders\"\ntype = \"http\"\ntenants = [\"*\"]\n",
    );
    let key = tenant_key(&node, "acme").await;
    let sub = json!({
        "name": "mine",
        "sink": {"type": "redis", "url": url(), "stream": format!("{base}:{{data.chain_id}}")},
    });
    let (st, err) = call(&node, "POST", "/v1/subscriptions", &key, Some(sub.clone())).await;
    assert_eq!(st, 422, "{err}");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("sink.type: only the admin may create redis subscriptions")
            && msg.contains("[limits.tenant_sinks] acme = [\"redis\"]"),
        "{msg}"
    );
    // A tenant the config grants the type may create one.
    let granted = tenant_key(&node, "globex").await;
    let mut own = sub.clone();
    own["name"] = json!("granted");
    let (st, view) = call(&node, "POST", "/v1/subscriptions", &granted, Some(own)).await;
    assert_eq!(st, 201, "{view}");
    let (st, _) = call(&node, "DELETE", "/v1/subscriptions/granted", &granted, None).await;
    assert_eq!(st, 204);
    let (st, view) = call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(sub)).await;
    assert_eq!(st, 201, "{view}");
    assert!(
        view["config"]["sink"].get("secret").is_none(),
        "a redis sink has no secret: {view}"
    );
    let (st, err) = call(&node, "GET", "/v1/subscriptions/mine/secret", ADMIN_KEY, None).await;
    assert_eq!((st, err["error"]["code"].as_str()), (409, Some("no_secret")), "{err}");
    // One event resolves the template, one does not: a dead letter naming the placeholder.
    let (st, _) = node
        .post_events(
            "orders",
            &json!([{"kind": "a", "data": {"chain_id": 5}}, {"kind": "b", "data": {}}]),
        )
        .await;
    assert_eq!(st, 202);
    let stream = format!("{base}:5");
    assert!(wait_until(T, || async { ids(&mut redis().await, &stream).await.len() == 1 }).await);
    let dead = || async {
        let (_, d) = call(&node, "GET", "/v1/subscriptions/mine/dead-letters", ADMIN_KEY, None).await;
        d
    };
    assert!(
        wait_until(T, || async {
            dead().await["dead_letters"].as_array().is_some_and(|a| a.len() == 1)
        })
        .await
    );
    let d = dead().await;
    let error = d["dead_letters"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("{data.chain_id} does not resolve: no field \"chain_id\""),
        "{d}"
    );
    let _: () = conn.del(&stream).await.unwrap();
}

/// The compliance kit (ADR 0006) against the machine's Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sink_passes_the_compliance_kit() {
    let base = unique("tributary-compliance");
    let stream = format!("{base}:1");
    let case = tributary_testkit::compliance::SinkCase {
        type_name: "redis",
        sink: format!(
            "type = \"redis\"\nurl = {:?}\nstream = \"{base}:{{data.chain_id}}\"\n",
            url()
        ),
        unresolved: Some(format!(
            "type = \"redis\"\nurl = {:?}\nstream = \"{base}:{{data.missing}}\"\n",
            url()
        )),
        exactly_once: true,
    };
    tributary_testkit::compliance::check_sink(BIN, &case, || {
        let stream = stream.clone();
        async move { ids(&mut redis().await, &stream).await }
    })
    .await;
    let _: () = redis().await.del(&stream).await.unwrap();
}
