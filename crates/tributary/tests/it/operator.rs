//! What a new operator meets (issue 15), on the real binary: counters that agree between the subscription
//! view, the CLI and `/metrics` after retries and replays; the final attempt shown as final; `validate`
//! reporting every problem in one run; tenants refused private endpoints and unknown tenants refused; and
//! messages that say what is expected.

use crate::BIN;
use crate::cli::{admin, cli_at};
use serde_json::{Value, json};
use std::time::Duration;
use tributary_testkit::{ADMIN_KEY, Receiver, TestNode, wait_until};

const T: Duration = Duration::from_secs(30);

/// The value of one `/metrics` series (labels as written by the exporter, in any order), summed over the
/// series that carry every label in `labels`.
fn series(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn metrics(node: &TestNode) -> String {
    let resp = node
        .client()
        .get(format!("{}/metrics", node.url))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    resp.text().await.unwrap()
}

async fn status(node: &TestNode, name: &str) -> Value {
    let (st, v) = node.get(&format!("/v1/subscriptions/{name}")).await;
    assert_eq!(st, 200, "{v}");
    v["status"].clone()
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_counters_agree_after_retries_a_dlq_replay_and_a_replay() {
    let rx = Receiver::start(None, true).await.unwrap();
    let node = TestNode::start(BIN, "[[sources]]\nname = \"orders\"\ntype = \"http\"\n");
    // The Operating walkthrough: an endpoint that is down, two attempts per round.
    let down = format!("http://127.0.0.1:{}/hook", closed_port());
    let create = [
        "subscriptions",
        "create",
        "ops",
        "--kinds",
        "orders.*",
        "--endpoint",
        &down,
        "--allow-private-networks",
        "--retry",
        "0s,100ms",
    ];
    admin(&node, &create).await.ok();
    let send = |n: u32| {
        let data = format!("{{\"n\": {n}}}");
        let url = node.url.clone();
        async move {
            let args = [
                "events",
                "send",
                "--source",
                "orders",
                "--kind",
                "orders.created",
                "--data",
                &data,
            ];
            cli_at(&url, ADMIN_KEY, &args).await.ok()
        }
    };
    let dead = |n: u64| {
        let node = &node;
        move || async move { status(node, "ops").await["dead_letters"] == n }
    };
    send(1).await;
    assert!(wait_until(T, dead(1)).await, "{}", status(&node, "ops").await);
    let (_, health) = node.get("/health").await;
    let reason = health["subscriptions"]["ops"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(reason, "1 dead letter > 0", "{health}");
    send(2).await;
    assert!(wait_until(T, dead(2)).await, "{}", status(&node, "ops").await);

    // The final attempt of a dead-lettered event says so; long errors are clipped unless --wide.
    let table = admin(&node, &["subscriptions", "deliveries", "ops"]).await.ok();
    let rows: Vec<&str> = table.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{}", table.stdout);
    for (row, outcome) in rows.iter().zip(["retriable", "exhausted", "retriable", "exhausted"]) {
        assert!(row.split_whitespace().nth(3) == Some(outcome), "{outcome} in {row}");
    }
    let (_, attempts) = node.get("/v1/subscriptions/ops/attempts/1").await;
    let error = attempts["attempts"][1]["error"].as_str().unwrap().to_owned();
    assert_eq!(attempts["attempts"][1]["outcome"], "exhausted", "{attempts}");
    assert!(error.chars().count() > 80, "a long error to clip: {error}");
    assert!(
        !table.stdout.contains(&error) && table.stderr.contains("--wide"),
        "{table:?}"
    );
    let wide = admin(&node, &["subscriptions", "deliveries", "ops", "--wide"])
        .await
        .ok();
    assert!(wide.stdout.contains(&error), "{}", wide.stdout);
    let dlq = admin(&node, &["dlq", "list", "--wide"]).await.ok().stdout;
    assert!(dlq.contains(&error), "{dlq}");

    // Fix the endpoint (the worker restarts; counters carry over), replay the dead letters, send a
    // third event, then replay the first two again: 3 distinct events, 5 successful attempts.
    admin(&node, &["subscriptions", "update", "ops", "--endpoint", &rx.url()])
        .await
        .ok();
    assert_eq!(status(&node, "ops").await["attempts"]["exhausted"], 2);
    let out = admin(&node, &["dlq", "replay", "--subscription", "ops"]).await.ok();
    assert!(
        out.stdout.contains("replayed 2 of 2 matching dead letters"),
        "{}",
        out.stdout
    );
    send(3).await;
    let delivered = |n: u64| {
        let node = &node;
        move || async move { status(node, "ops").await["attempts"]["delivered"] == n }
    };
    assert!(wait_until(T, delivered(3)).await, "{}", status(&node, "ops").await);
    let out = admin(&node, &["replay", "--subscription", "ops", "--from", "1", "--to", "2"])
        .await
        .ok();
    assert!(out.stdout.starts_with("queued 2 of 2"), "{}", out.stdout);
    assert!(wait_until(T, delivered(5)).await, "{}", status(&node, "ops").await);
    assert_eq!(rx.received().len(), 5);

    let st = status(&node, "ops").await;
    assert_eq!(st["events_delivered"], 3, "{st}");
    assert_eq!(
        st["attempts"],
        json!({"delivered": 5, "retriable": 2, "exhausted": 2, "rejected": 0}),
        "{st}"
    );
    assert_eq!(
        (&st["events_dead_lettered"], &st["dead_letters"]),
        (&json!(2), &json!(0)),
        "{st}"
    );
    let got = admin(&node, &["subscriptions", "get", "ops"]).await.ok().stdout;
    let field = |name: &str| {
        let line = got
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap_or_default();
        line.split_once(':')
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(field("events delivered"), "3", "{got}");
    assert_eq!(
        field("attempts"),
        "9 (5 delivered, 2 retriable, 2 exhausted, 0 rejected)",
        "{got}"
    );
    assert_eq!(field("events dead-lettered"), "2", "{got}");
    let list = admin(&node, &["subscriptions", "list"]).await.ok().stdout;
    let header: Vec<&str> = list
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header[5..8],
        ["EVENTS DELIVERED", "FAILED ATTEMPTS", "DEAD LETTERS"],
        "{list}"
    );
    let row: Vec<&str> = list.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[5..8], ["3", "4", "0"], "{list}");
    let m = metrics(&node).await;
    let sub = "subscription=\"ops\"";
    assert_eq!(series(&m, "tributary_sink_events_delivered_total", &[sub]), 3.0, "{m}");
    for (outcome, n) in [
        ("delivered", 5.0),
        ("retriable", 2.0),
        ("exhausted", 2.0),
        ("rejected", 0.0),
    ] {
        let label = format!("outcome=\"{outcome}\"");
        let got = series(&m, "tributary_delivery_attempts_total", &[sub, &label]);
        assert_eq!(got, n, "{outcome}: {m}");
    }
    assert_eq!(series(&m, "tributary_sink_events_dropped_total", &[sub]), 2.0, "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_validate_reports_every_problem_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.toml");
    std::fs::write(
        &config,
        r#"[node]
listen = "127.0.0.1:8080"
colour = "blue"

[[sources]]
name = "ingest"
type = "http"

[[subscriptions]]
name = "orders"
filtr = { kinds = ["orders.*"] }
filter = { kinds = ["orders..*"] }

[subscriptions.sink]
type = "webhook"
url = "http://localhost:9000/hook"
"#,
    )
    .unwrap();
    let path = config.to_str().unwrap();
    let out = cli_at("http://127.0.0.1:1", ADMIN_KEY, &["validate", "--config", path]).await;
    assert_eq!(out.code, 1, "{out:?}");
    for needle in [
        "node.colour: unknown field, expected one of",
        "subscriptions[0].filtr: unknown field; did you mean \"filter\"?",
        "subscriptions[0].filter.kinds[0]: invalid kind pattern \"orders..*\"",
        "subscriptions[0].sink.url: address localhost is loopback, so every delivery would be refused; set allow_private_networks = true",
    ] {
        assert!(out.stderr.contains(needle), "{needle:?} in {}", out.stderr);
    }
    assert!(out.stderr.contains("4 problem(s)"), "{}", out.stderr);
    let json = cli_at(
        "http://127.0.0.1:1",
        ADMIN_KEY,
        &["validate", "--config", path, "--json"],
    )
    .await;
    assert_eq!(json.code, 1, "{json:?}");
    let v = json.json();
    assert_eq!(v["error"]["code"], "invalid_config", "{v}");
    assert_eq!(v["error"]["problems"].as_array().map(Vec::len), Some(4), "{v}");

    let fixed = std::fs::read_to_string(&config)
        .unwrap()
        .replace("colour = \"blue\"\n", "")
        .replace("filtr = { kinds = [\"orders.*\"] }\n", "")
        .replace("orders..*", "orders.*")
        + "allow_private_networks = true\n";
    std::fs::write(&config, fixed).unwrap();
    let out = cli_at("http://127.0.0.1:1", ADMIN_KEY, &["validate", "--config", path])
        .await
        .ok();
    assert_eq!(out.stdout.trim(), format!("{path}: ok (1 sources, 1 subscriptions)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_tenants_get_advice_they_can_follow_and_no_orphans() {
    let node = TestNode::start(
        BIN,
        "[[sources]]\nname = \"orders\"\ntype = \"http\"\ntenants = [\"*\"]\n",
    );
    admin(&node, &["tenants", "create", "acme"]).await.ok();
    let key = admin(&node, &["tenants", "keys", "create", "acme"])
        .await
        .ok()
        .stdout
        .trim()
        .to_owned();
    let call = |method: &'static str, path: &'static str, key: String, body: Value| {
        let (client, url) = (node.client().clone(), format!("{}{path}", node.url));
        async move {
            let req = client
                .request(method.parse().unwrap(), url)
                .bearer_auth(key)
                .json(&body);
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or_default())
        }
    };
    let sub = |url: &str| json!({"name": "mine", "sink": {"type": "webhook", "url": url}});
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9000/x",
        "http://10.1.2.3/x",
        "http://[::1]:80/x",
    ] {
        let (st, err) = call("POST", "/v1/subscriptions", key.clone(), sub(url)).await;
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(st, 422, "{url}: {err}");
        assert!(
            message.starts_with("sink.url: address ")
                && message.contains("a tenant cannot deliver to private networks"),
            "{url}: {message}"
        );
    }
    // A public endpoint is accepted (nothing is sent: no event matches); changing it to a private one is not.
    let (st, v) = call(
        "POST",
        "/v1/subscriptions",
        key.clone(),
        sub("https://hooks.example.com/x"),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (st, err) = call(
        "PUT",
        "/v1/subscriptions/mine",
        key.clone(),
        sub("http://192.168.1.5/x"),
    )
    .await;
    assert_eq!(st, 422, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains("sink.url"), "{err}");
    // The admin is not a tenant: a loopback endpoint without allow_private_networks is its choice.
    let (st, v) = call(
        "POST",
        "/v1/subscriptions",
        ADMIN_KEY.into(),
        sub("http://127.0.0.1:9/hook"),
    )
    .await;
    assert_eq!(st, 201, "{v}");

    // No orphans: a subscription of a tenant that does not exist is refused, by the API and the CLI.
    let body = json!({"name": "orphan", "tenant": "nosuch", "sink": {"type": "webhook", "url": "https://hooks.example.com/x"}});
    let (st, err) = call("POST", "/v1/subscriptions", ADMIN_KEY.into(), body).await;
    assert_eq!(st, 404, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no tenant named \"nosuch\""),
        "{err}"
    );
    let args = [
        "subscriptions",
        "create",
        "orphan",
        "--tenant",
        "nosuch",
        "--endpoint",
        "https://hooks.example.com/x",
    ];
    let line = admin(&node, &args).await.failed();
    assert!(
        line.starts_with("error: 404 not_found: no tenant named \"nosuch\""),
        "{line}"
    );
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let out = admin(&node, &json_args).await;
    assert_eq!((out.code, out.stderr.as_str()), (1, ""), "{out:?}");
    assert_eq!(out.json()["error"]["code"], "not_found", "{}", out.stdout);
    let (st, _) = node.get("/v1/subscriptions/orphan").await;
    assert_eq!(st, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_messages_say_what_is_expected() {
    let node = TestNode::start(BIN, "[[sources]]\nname = \"orders\"\ntype = \"http\"\n");
    let resp = node
        .client()
        .get(format!("{}/v1/subscriptions", node.url))
        .header("Authorization", ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let v: Value = resp.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no Bearer scheme") && message.contains("Authorization: Bearer <api key>"),
        "{v}"
    );
    let (st, v) = node.get("/v1/lightning/graph?at=yesterday").await;
    assert_eq!(st, 400, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("query: at: expected Unix seconds such as 1700000002"),
        "{message}"
    );
    assert!(message.contains("\"yesterday\""), "{message}");
}

/// Issue 8 item 4: every standard series of every configured source and subscription is on `/metrics`
/// (at 0) as soon as the node listens, before any event; a subscription created through the API too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_metrics_are_present_at_zero_from_the_start() {
    let rx = Receiver::start(None, false).await.unwrap();
    let config = format!(
        "[[sources]]\nname = \"ingest\"\ntype = \"http\"\n\n[[subscriptions]]\nname = \"hook\"\n{}",
        tributary_testkit::webhook_sink(&rx.url(), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    );
    let node = TestNode::start(BIN, &config);
    let text = metrics(&node).await;
    let zero = |text: &str, line: &str| {
        assert!(
            text.lines().any(|l| l == format!("{line} 0")),
            "{line} 0 is missing from /metrics:\n{text}"
        )
    };
    for line in [
        r#"tributary_source_events_received_total{source="ingest"}"#,
        r#"tributary_source_events_stored_total{source="ingest"}"#,
        r#"tributary_source_events_dropped_total{source="ingest",reason="duplicate"}"#,
        r#"tributary_source_errors_total{source="ingest",stage="store"}"#,
        r#"tributary_sink_events_received_total{subscription="hook"}"#,
        r#"tributary_sink_events_delivered_total{subscription="hook"}"#,
        r#"tributary_sink_events_dropped_total{subscription="hook",reason="rejected"}"#,
        r#"tributary_sink_errors_total{subscription="hook",stage="deliver"}"#,
        r#"tributary_subscription_backlog_events{subscription="hook"}"#,
        r#"tributary_subscription_dead_letters{subscription="hook"}"#,
    ] {
        zero(&text, line);
    }
    assert_eq!(
        series(&text, "tributary_delivery_attempts_total", &[r#"subscription="hook""#]),
        0.0
    );
    assert!(
        text.contains(
            r#"tributary_delivery_attempts_total{subscription="hook",outcome="delivered",status_class="none"} 0"#
        ),
        "{text}"
    );
    let sub = json!({"name": "later", "sink": {"type": "webhook", "url": rx.url(), "allow_private_networks": true}});
    let (st, v) = crate::control::call(&node, "POST", "/v1/subscriptions", ADMIN_KEY, Some(sub)).await;
    assert_eq!(st, 201, "{v}");
    zero(
        &metrics(&node).await,
        r#"tributary_sink_events_delivered_total{subscription="later"}"#,
    );
}
