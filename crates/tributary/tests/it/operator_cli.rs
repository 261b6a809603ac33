//! CLI conventions an operator brings from kubectl and the stripe CLI (issue 15), on the real binary:
//! global flags anywhere, one spelling per thing, `sources list`, `delete --yes`, JSON errors under
//! `--json`, and `events send` for one event or an NDJSON file.

use crate::BIN;
use crate::cli::{Out, admin, cli_at};
use serde_json::json;
use tributary_testkit::{ADMIN_KEY, TestNode};

/// The binary with exactly these arguments (no `--url`/`--key` appended) and no client environment.
async fn raw(args: &[&str]) -> Out {
    let o = tokio::process::Command::new(BIN)
        .args(args)
        .env_remove("TRIBUTARY_URL")
        .env_remove("TRIBUTARY_KEY")
        .env_remove("TRIBUTARY_ADMIN_KEY")
        .output()
        .await
        .expect("run the cli");
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_cli_global_flags_one_spelling_and_json_errors() {
    let node = TestNode::start(BIN, "[[sources]]\nname = \"orders\"\ntype = \"http\"\n");
    let help = raw(&["--help"]).await.ok().stdout;
    for flag in ["--url <URL>", "--key <KEY>", "--json"] {
        assert!(help.contains(flag), "{flag} in tributary --help: {help}");
    }
    // Before the command, between, after; `--api-key` is the old spelling of `--key`.
    let url = node.url.as_str();
    for args in [
        &["--url", url, "--key", ADMIN_KEY, "--json", "sources", "list"][..],
        &["sources", "--url", url, "list", "--key", ADMIN_KEY, "--json"][..],
        &["--json", "sources", "status", "--api-key", ADMIN_KEY, "--url", url][..],
    ] {
        let v = raw(args).await.ok().json();
        assert_eq!(v["sources"][0]["name"], "orders", "{args:?}: {v}");
    }
    let status = admin(&node, &["sources", "status"]).await.ok().stdout;
    let list = admin(&node, &["sources", "list"]).await.ok().stdout;
    assert_eq!(status.lines().next(), list.lines().next());
    assert!(list.contains("orders"), "{list}");

    // The subscription name is the first argument everywhere (`--name` still works for old scripts).
    let create = [
        "subscriptions",
        "create",
        "first",
        "--endpoint",
        "http://127.0.0.1:9/h",
        "--allow-private-networks",
    ];
    admin(&node, &create).await.ok();
    let old = [
        "subscriptions",
        "create",
        "--name",
        "second",
        "--endpoint",
        "http://127.0.0.1:9/h",
    ];
    admin(&node, &old).await.ok();
    let names = admin(&node, &["subscriptions", "list", "--json"]).await.ok().json();
    assert_eq!(names["subscriptions"].as_array().map(Vec::len), Some(2), "{names}");
    // One spelling for event keys: `--event-key` in `events list` and in a subscription's filter.
    let keyed = ["subscriptions", "update", "first", "--event-key", "o-1,o-2"];
    admin(&node, &keyed).await.ok();
    let got = admin(&node, &["subscriptions", "get", "first", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(got["config"]["filter"]["keys"], json!(["o-1", "o-2"]), "{got}");

    // `update --help` has no create-only text.
    let update = raw(&["subscriptions", "update", "--help"]).await.ok().stdout;
    for create_only in ["--start", "--tenant", "on create", "a generated one"] {
        assert!(
            !update.contains(create_only),
            "{create_only} in update --help: {update}"
        );
    }
    assert!(update.contains("--secret") && update.contains("--endpoint"), "{update}");

    // delete asks for --yes, like dlq purge.
    let line = admin(&node, &["subscriptions", "delete", "second"]).await.failed();
    assert!(line.contains("add --yes to confirm"), "{line}");
    admin(&node, &["subscriptions", "delete", "second", "--yes"]).await.ok();

    // Under --json a failure is JSON on stdout, with the same exit code; nothing on stderr.
    for (args, code) in [
        (&["subscriptions", "get", "nosuch", "--json"][..], "not_found"),
        (&["--json", "subscriptions", "delete", "first"][..], "invalid_argument"),
    ] {
        let out = admin(&node, args).await;
        assert_eq!((out.code, out.stderr.as_str()), (1, ""), "{args:?}: {out:?}");
        let v = out.json();
        assert_eq!(v["error"]["code"], code, "{args:?}: {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }
    // A command line the parser refuses: JSON too, with the parser's exit code (2), and text without --json.
    for args in [
        &["subscriptions", "get", "--json", "--no-such-flag"][..],
        &["--json", "subscriptions", "frobnicate"][..],
        &["--json", "dlq", "list", "--limit", "lots"][..],
    ] {
        let out = admin(&node, args).await;
        assert_eq!((out.code, out.stderr.as_str()), (2, ""), "{args:?}: {out:?}");
        let v = out.json();
        assert_eq!(v["error"]["code"], "invalid_argument", "{args:?}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(!msg.is_empty() && !msg.contains('\n'), "{args:?}: {v}");
    }
    let out = admin(&node, &["subscriptions", "frobnicate"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stdout.is_empty() && out.stderr.contains("frobnicate"), "{out:?}");
    let out = cli_at(&node.url, "wrong", &["tenants", "list", "--json"]).await;
    assert_eq!(
        (out.code, out.json()["error"]["code"].clone()),
        (1, json!("unauthorized")),
        "{out:?}"
    );
    let out = cli_at("http://127.0.0.1:1", ADMIN_KEY, &["sources", "list", "--json"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "unreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_cli_events_send_one_event_and_a_file() {
    let node = TestNode::start(BIN, "[[sources]]\nname = \"ingest\"\ntype = \"http\"\n");
    let one = [
        "events",
        "send",
        "--source",
        "ingest",
        "--kind",
        "orders.created",
        "--event-key",
        "order-42",
        "--data",
        r#"{"order": 42, "amount": 1250}"#,
    ];
    let first = admin(&node, &one).await.ok().stdout;
    assert!(first.starts_with("accepted 1, duplicates 0: "), "{first}");
    let id = first.trim().rsplit(' ').next().unwrap().to_owned();
    assert_eq!(id.len(), 64, "{first}");
    let again = admin(&node, &one).await.ok().stdout;
    assert_eq!(again.trim(), format!("accepted 0, duplicates 1: {id}"));
    let (_, e) = node.get(&format!("/v1/events/{id}")).await;
    assert_eq!(
        (&e["kind"], &e["key"], &e["data"]["amount"]),
        (&json!("orders.created"), &json!("order-42"), &json!(1250))
    );
    // The same event as a JSON object; --json prints the API's answer.
    let object = r#"{"kind": "orders.created", "key": "order-42", "data": {"order": 42, "amount": 1250}}"#;
    let v = admin(&node, &["events", "send", "-s", "ingest", object, "--json"])
        .await
        .ok()
        .json();
    assert_eq!(
        (&v["accepted"], &v["duplicates"], &v["ids"][0]),
        (&json!(0), &json!(1), &json!(id))
    );

    // A file: 1,200 new events and one duplicate, in batches, empty lines skipped.
    let file = node.dir.path().join("events.ndjson");
    let mut lines: Vec<String> = (0..1200)
        .map(|n| json!({"kind": "orders.paid", "key": format!("o-{n}"), "data": {"n": n}}).to_string())
        .collect();
    lines.insert(600, String::new());
    lines.push(object.to_owned());
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let path = file.to_str().unwrap();
    let out = admin(&node, &["events", "send", "--source", "ingest", "--file", path])
        .await
        .ok();
    assert_eq!(
        out.stdout.trim(),
        format!("sent 1201 events from {path} in 3 requests: accepted 1200, duplicates 1")
    );
    let (_, s) = node.get("/v1/sources/ingest").await;
    assert_eq!(s["status"]["stored"], 1201, "{s}");

    // A bad line names its line; the batches before it were sent.
    let bad = node.dir.path().join("bad.ndjson");
    std::fs::write(&bad, format!("{object}\n{{\"kind\": \"x\", \"data\": 1}}\nnot json\n")).unwrap();
    let line = admin(
        &node,
        &["events", "send", "--source", "ingest", "--file", bad.to_str().unwrap()],
    )
    .await
    .failed();
    assert!(line.contains("bad.ndjson:3: not a JSON event"), "{line}");
    // An event the node refuses names its line too.
    std::fs::write(&bad, format!("{object}\n{{\"kind\": \"x..y\", \"data\": 1}}\n")).unwrap();
    let line = admin(
        &node,
        &["events", "send", "--source", "ingest", "--file", bad.to_str().unwrap()],
    )
    .await
    .failed();
    assert!(line.contains("bad.ndjson: line 2: 400 invalid_event"), "{line}");
    let line = admin(&node, &["events", "send", "--source", "ingest"]).await.failed();
    assert!(line.contains("give the event: --kind KIND"), "{line}");
}
