//! The client commands (`tributary subscriptions ...`, `events`, `dlq`, `replay`, `tenants`, `sources`) run as
//! the real binary against a running node: their output, `--json` and exit codes.

use crate::{BIN, SECRET, http_to_webhook};
use serde_json::{Value, json};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tributary_testkit::{ADMIN_KEY, Receiver, Reply, TestNode, wait_until, webhook_sink};

const T: Duration = Duration::from_secs(20);

/// What a CLI run printed and how it ended.
#[derive(Debug)]
pub(crate) struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// Exit code 1 and exactly one stderr line, which is returned.
    pub fn failed(self) -> String {
        assert_eq!(self.code, 1, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {:?}", self.stderr);
        lines[0].to_owned()
    }
}

fn command(url: &str, key: &str, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(BIN);
    c.args(args)
        .args(["--url", url, "--key", key])
        .env_remove("TRIBUTARY_URL")
        .env_remove("TRIBUTARY_KEY")
        .env_remove("TRIBUTARY_ADMIN_KEY")
        .kill_on_drop(true);
    c
}

pub(crate) async fn cli_at(url: &str, key: &str, args: &[&str]) -> Out {
    let o = command(url, key, args).output().await.expect("run the cli");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

pub(crate) async fn admin(node: &TestNode, args: &[&str]) -> Out {
    cli_at(&node.url, ADMIN_KEY, args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_tenants_keys_and_isolation() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    let node = TestNode::start(BIN, "[[sources]]\nname = \"ingest\"\ntype = \"http\"\n");
    let out = admin(&node, &["tenants", "create", "acme"]).await.ok();
    assert!(out.stdout.contains("created tenant acme"), "{}", out.stdout);
    let out = admin(&node, &["tenants", "keys", "create", "acme"]).await.ok();
    let key = out.stdout.trim().to_owned();
    assert!(
        key.starts_with("trb_") && !key.contains(' '),
        "the key alone on stdout: {key}"
    );
    assert!(out.stderr.contains("cannot be shown again"), "{}", out.stderr);
    let keys = admin(&node, &["tenants", "keys", "list", "acme", "--json"])
        .await
        .ok()
        .json();
    let id = keys["keys"][0]["id"].as_str().unwrap().to_owned();
    assert!(key.contains(&id));
    let listing = admin(&node, &["tenants", "keys", "list", "acme"]).await.ok().stdout;
    assert!(
        listing.starts_with("ID") && listing.contains(&id) && !listing.contains(&key),
        "{listing}"
    );
    let tenants = admin(&node, &["tenants", "list", "--json"]).await.ok().json();
    assert_eq!(tenants["tenants"][0]["name"], "acme");

    let url = rx.url();
    let mut create = vec!["subscriptions", "create", "--name", "acme-hook", "--endpoint", &url];
    create.extend(["--tenant", "acme", "--allow-private-networks"]);
    admin(&node, &create).await.ok();
    let other = [
        "subscriptions",
        "create",
        "--name",
        "other-hook",
        "--endpoint",
        &url,
        "--allow-private-networks",
    ];
    admin(&node, &other).await.ok();

    let mine = cli_at(&node.url, &key, &["subscriptions", "list"]).await.ok().stdout;
    assert!(mine.contains("acme-hook") && !mine.contains("other-hook"), "{mine}");
    let all = admin(&node, &["subscriptions", "list"]).await.ok().stdout;
    assert!(all.contains("acme-hook") && all.contains("other-hook"), "{all}");
    let err = cli_at(&node.url, &key, &["subscriptions", "get", "other-hook"])
        .await
        .failed();
    assert_eq!(err, "error: 404 not_found: no subscription named \"other-hook\"");
    let err = cli_at(&node.url, &key, &["tenants", "list"]).await.failed();
    assert!(err.starts_with("error: 403 forbidden: "), "{err}");

    admin(&node, &["tenants", "keys", "revoke", "acme", &id]).await.ok();
    let err = cli_at(&node.url, &key, &["subscriptions", "list"]).await.failed();
    assert!(err.starts_with("error: 401 unauthorized: "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_subscriptions_lifecycle() {
    let rx = Receiver::start(None, true).await.unwrap();
    let node = TestNode::start(BIN, "[[sources]]\nname = \"ingest\"\ntype = \"http\"\n");
    let file = node.dir.path().join("sub.toml");
    let toml = format!(
        "name = \"orders\"\nfilter = {{ kinds = [\"orders.*\"] }}\n[sink]\ntype = \"webhook\"\nurl = \"{}\"\nallow_private_networks = true\n",
        rx.url()
    );
    std::fs::write(&file, toml).unwrap();
    let out = admin(&node, &["subscriptions", "create", "--file", file.to_str().unwrap()])
        .await
        .ok();
    assert!(out.stdout.contains("created subscription orders"), "{}", out.stdout);
    assert!(out.stdout.contains("signing secret: whsec_"), "{}", out.stdout);
    let err = admin(&node, &["subscriptions", "create", "--file", file.to_str().unwrap()])
        .await
        .failed();
    assert!(err.starts_with("error: 409 conflict: "), "{err}");

    let state = |want: &'static str| {
        let url = node.url.clone();
        async move {
            let out = cli_at(&url, ADMIN_KEY, &["subscriptions", "list"]).await.ok().stdout;
            out.lines().any(|l| l.starts_with("orders ") && l.contains(want))
        }
    };
    assert!(state("active").await);
    assert!(
        admin(&node, &["subscriptions", "pause", "orders"])
            .await
            .ok()
            .stdout
            .contains("paused")
    );
    assert!(wait_until(T, || state("paused")).await);
    admin(&node, &["subscriptions", "resume", "orders"]).await.ok();
    assert!(wait_until(T, || state("active")).await);

    let old = admin(&node, &["subscriptions", "secret", "orders"]).await.ok().stdout;
    let out = admin(&node, &["subscriptions", "rotate-secret", "orders", "--overlap", "1h"])
        .await
        .ok();
    assert!(out.stdout.starts_with("new signing secret: whsec_"), "{}", out.stdout);
    let current = admin(&node, &["subscriptions", "secret", "orders"]).await.ok();
    assert_eq!(
        current.stdout.lines().count(),
        1,
        "only the current secret: {current:?}"
    );
    assert!(current.stderr.contains("--all"), "{current:?}");
    let now = admin(&node, &["subscriptions", "secret", "orders", "--all"])
        .await
        .ok()
        .stdout;
    assert_eq!(now.lines().count(), 2, "the new secret and the previous one: {now}");
    assert!(now.starts_with(current.stdout.trim()), "{now}");
    assert!(now.lines().nth(1).unwrap().starts_with(old.trim()), "{now}");

    let out = admin(&node, &["subscriptions", "test", "orders"]).await.ok();
    assert!(out.stdout.starts_with("delivered: status 204"), "{}", out.stdout);
    assert!(
        rx.wait_for(T, |r| r
            .iter()
            .any(|x| x.body.as_ref().is_some_and(|b| b["type"] == "tributary.test")))
            .await
    );

    admin(
        &node,
        &[
            "subscriptions",
            "update",
            "orders",
            "--kinds",
            "orders.created,orders.paid",
        ],
    )
    .await
    .ok();
    let got = admin(&node, &["subscriptions", "get", "orders", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(
        got["config"]["filter"]["kinds"],
        json!(["orders.created", "orders.paid"])
    );
    assert_eq!(
        got["config"]["sink"]["secret"], "***",
        "the secret survived the update, redacted"
    );

    node.post_events("ingest", &json!({"kind": "orders.created", "data": 1}))
        .await;
    assert!(rx.wait_for(T, |r| r.iter().any(|x| x.seq == 1 && x.status < 300)).await);
    let deliveries = |url: String| async move {
        let out = cli_at(&url, ADMIN_KEY, &["subscriptions", "deliveries", "orders"])
            .await
            .ok();
        out.stdout
            .lines()
            .any(|l| l.starts_with("1 ") && l.contains("delivered"))
    };
    assert!(wait_until(T, || deliveries(node.url.clone())).await);

    let err = admin(&node, &["subscriptions", "delete", "orders"]).await.failed();
    assert!(err.contains("add --yes to confirm"), "{err}");
    assert!(
        admin(&node, &["subscriptions", "get", "orders"]).await.code == 0,
        "still there"
    );
    admin(&node, &["subscriptions", "delete", "orders", "--yes"]).await.ok();
    let err = admin(&node, &["subscriptions", "get", "orders"]).await.failed();
    assert_eq!(err, "error: 404 not_found: no subscription named \"orders\"");
    let err = admin(&node, &["subscriptions", "create", "--name", "x"]).await.failed();
    assert!(err.contains("--endpoint"), "{err}");
    let err = cli_at("http://127.0.0.1:1", ADMIN_KEY, &["subscriptions", "list"])
        .await
        .failed();
    assert_eq!(
        err,
        "error: cannot reach http://127.0.0.1:1: connection refused; is tributary running? (--url, TRIBUTARY_URL)"
    );
    let err = cli_at(&node.url, "wrong", &["sources", "status"]).await.failed();
    assert!(err.starts_with("error: 401 unauthorized: "), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_events_list_get_tail_and_sources() {
    let node = TestNode::start(BIN, "[[sources]]\nname = \"ingest\"\ntype = \"http\"\n");
    let batch = json!([
        {"kind": "orders.created", "key": "o-1", "data": {"n": 1}},
        {"kind": "orders.paid", "key": "o-1", "data": {"n": 2}},
        {"kind": "users.created", "key": "u-1", "data": {"n": 3}}
    ]);
    let (_, body) = node.post_events("ingest", &batch).await;
    let ids: Vec<String> = serde_json::from_value(body["ids"].clone()).unwrap();

    let out = admin(&node, &["events", "list"]).await.ok().stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("SEQ") && lines.len() == 4, "{out}");
    assert!(lines[3].starts_with("3 ") && lines[3].contains("users.created") && lines[3].contains(&ids[2]));
    let page = admin(
        &node,
        &["events", "list", "--kind", "orders.*", "--since", "1h", "--json"],
    )
    .await
    .ok()
    .json();
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_after"], 3);
    let by_key = admin(&node, &["events", "list", "--event-key", "u-1", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(by_key["events"][0]["kind"], "users.created");
    assert_eq!(by_key["events"].as_array().unwrap().len(), 1);
    let out = admin(&node, &["events", "list", "--limit", "1", "--after", "1"])
        .await
        .ok();
    assert!(
        out.stdout.contains("orders.paid") && out.stderr.contains("more: --after 2"),
        "{}",
        out.stderr
    );

    let out = admin(&node, &["events", "get", &ids[0]]).await.ok().stdout;
    assert!(
        out.contains("kind:") && out.contains("orders.created") && out.contains("\"n\": 1"),
        "{out}"
    );
    assert!(out.contains("OBSERVER"), "observations: {out}");
    let err = admin(&node, &["events", "get", &"0".repeat(64)]).await.failed();
    assert!(err.starts_with("error: 404 not_found: no event with id"), "{err}");

    let sources = admin(&node, &["sources", "status"]).await.ok().stdout;
    assert!(
        sources.lines().nth(1).unwrap().starts_with("ingest  http  connected"),
        "{sources}"
    );
    let one = admin(&node, &["sources", "status", "ingest", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(one["status"]["stored"], 3);
    let err = admin(&node, &["sources", "status", "nope"]).await.failed();
    assert_eq!(err, "error: 404 not_found: no source named \"nope\"");

    // tail: starts at the end of the log, then prints each new event as it arrives.
    let mut tail = command(
        &node.url,
        ADMIN_KEY,
        &["events", "tail", "--kind", "orders.*", "--interval", "50ms"],
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + T;
    let mut n = 0;
    let first = loop {
        // Post until the tail, which may still be finding the end of the log, shows one.
        n += 1;
        let e = json!([{"kind": "users.created", "data": n}, {"kind": "orders.created", "data": n}]);
        node.post_events("ingest", &e).await;
        match tokio::time::timeout(Duration::from_millis(300), lines.next_line()).await {
            Ok(line) => break line.unwrap().expect("a line"),
            Err(_) => assert!(Instant::now() < deadline, "tail printed nothing"),
        }
    };
    let seq: u64 = first.split(' ').next().unwrap().parse().unwrap();
    assert!(seq > 3 && first.contains("orders.created"), "only new events: {first}");
    node.post_events("ingest", &json!({"kind": "orders.paid", "key": "o-9", "data": "last"}))
        .await;
    let next = loop {
        let line = tokio::time::timeout(T, lines.next_line())
            .await
            .expect("in time")
            .unwrap()
            .unwrap();
        if line.contains("orders.paid") {
            break line;
        }
        assert!(line.contains("orders.created"), "the kind filter holds: {line}");
    };
    assert!(next.contains(" o-9 ") && next.ends_with("\"last\""), "{next}");
    tail.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_dead_letters_and_replay() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    let failing = Arc::new(AtomicBool::new(true));
    let f = failing.clone();
    rx.respond_with(move |_| {
        if f.load(Ordering::SeqCst) {
            Reply::status(400)
        } else {
            Reply::ok()
        }
    });
    let second = format!(
        "\n[[subscriptions]]\nname = \"audit\"\n{}",
        webhook_sink(&rx.url(), SECRET)
    );
    let node = TestNode::start(BIN, &(http_to_webhook(&rx.url(), "") + &second));
    let batch = json!([{"kind": "a.b", "data": 1}, {"kind": "a.b", "data": 2}, {"kind": "a.b", "data": 3}]);
    node.post_events("ingest", &batch).await;
    let dead = |sub: &'static str, n: u64| {
        let node = &node;
        async move {
            let (_, s) = node.get("/v1/dead-letters/stats").await;
            let subs = s["subscriptions"].as_array().cloned().unwrap_or_default();
            subs.iter().any(|x| x["subscription"] == sub && x["count"] == n)
        }
    };
    assert!(wait_until(T, || dead("hook", 3)).await && wait_until(T, || dead("audit", 3)).await);

    let stats = admin(&node, &["dlq", "stats"]).await.ok().stdout;
    assert!(
        stats.starts_with("SUBSCRIPTION") && stats.lines().any(|l| l.starts_with("hook ") && l.contains(" 3 ")),
        "{stats}"
    );
    let list = admin(&node, &["dlq", "list", "--subscription", "hook", "--since", "1h"])
        .await
        .ok()
        .stdout;
    assert_eq!(
        list.lines()
            .filter(|l| l.starts_with("hook ") && l.contains(" 400 "))
            .count(),
        3,
        "{list}"
    );
    let page = admin(&node, &["dlq", "list", "-s", "audit", "--limit", "2"]).await.ok();
    assert_eq!(page.stdout.lines().count(), 3, "{}", page.stdout);
    assert_eq!(page.stderr.trim(), "more: --subscription audit --after 2");
    let all = admin(&node, &["dlq", "list", "--json"]).await.ok().json();
    assert_eq!(all["dead_letters"].as_array().unwrap().len(), 6);

    let out = admin(&node, &["dlq", "replay", "--dry-run"]).await.ok().stdout;
    assert!(
        out.contains("dry run: 6 dead letters would be replayed (2 subscriptions)"),
        "{out}"
    );
    assert!(dead("hook", 3).await, "a dry run changes nothing");
    failing.store(false, Ordering::SeqCst);
    let out = admin(&node, &["dlq", "replay", "--subscription", "hook", "--since", "24h"])
        .await
        .ok()
        .stdout;
    assert_eq!(out.trim(), "replayed 3 of 3 matching dead letters (1 subscription)");
    assert!(wait_until(T, || dead("hook", 0)).await);
    assert!(
        rx.wait_for(T, |r| r.iter().filter(|x| x.status < 300).count() == 3)
            .await
    );

    let err = admin(&node, &["dlq", "purge"]).await.failed();
    assert!(err.contains("--yes"), "{err}");
    let purged = admin(&node, &["dlq", "purge", "--yes", "--json"]).await.ok().json();
    assert_eq!(
        (purged["matched"].clone(), purged["affected"].clone()),
        (json!(3), json!(3))
    );
    assert!(wait_until(T, || dead("audit", 0)).await);

    let replay = ["replay", "--subscription", "hook", "--from", "1", "--to", "2"];
    let out = admin(&node, &[&replay[..], &["--dry-run"]].concat()).await.ok().stdout;
    assert_eq!(out.trim(), "dry run: 2 events would be delivered again to hook");
    let out = admin(&node, &replay).await.ok().stdout;
    assert_eq!(out.trim(), "queued 2 of 2 matching events for delivery to hook");
    assert!(
        rx.wait_for(T, |r| r.iter().filter(|x| x.status < 300).count() == 5)
            .await
    );
    let err = admin(&node, &["replay", "--subscription", "hook"]).await.failed();
    assert!(err.contains("give a range"), "{err}");
    let err = admin(&node, &["replay", "--subscription", "nope", "--from", "1"])
        .await
        .failed();
    assert_eq!(err, "error: 404 not_found: no subscription named \"nope\"");
}
