//! Standard Webhooks conformance: real deliveries checked by the published verifiers on PyPI,
//! `standardwebhooks` and `svix`, run in `scripts/conformance_receiver.py`. Both must accept every
//! delivery — including one signed during a secret rotation, where the receiver still knows only the old
//! secret — and both must reject the same delivery with a tampered body or a stale timestamp.

use crate::BIN;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tributary_testkit::{TestNode, wait_until};

const OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn python() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let p = std::env::var_os("TRIBUTARY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join(".venv/bin/python"));
    assert!(
        p.exists(),
        "{} not found: run ./scripts/python-env.sh (it installs standardwebhooks and svix into .venv)",
        p.display()
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_verifiers_accept_deliveries_and_reject_tampering() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deliveries.jsonl");
    let mut receiver = Command::new(python())
        .arg(repo.join("scripts/conformance_receiver.py"))
        .args(["--port", "0", "--secret", OLD, "--out"])
        .arg(&out)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the Python receiver");
    let mut line = String::new();
    BufReader::new(receiver.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("LISTENING ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected {line:?}"));
    let url = format!("http://127.0.0.1:{port}/hook");
    let new_secret = tributary_sinks::generate_secret();
    let config = format!(
        r#"[[sources]]
name = "ingest"
type = "http"

[[subscriptions]]
name = "plain"
[subscriptions.sink]
type = "webhook"
url = "{url}"
secret = "{OLD}"
allow_private_networks = true

[[subscriptions]]
name = "rotated"
[subscriptions.sink]
type = "webhook"
url = "{url}"
secret = "{new_secret}"
previous_secrets = [{{ secret = "{OLD}", expires_at = "2099-01-01T00:00:00Z" }}]
allow_private_networks = true
"#
    );
    let node = TestNode::start(BIN, &config);
    let events = json!([
        {"kind": "orders.created", "key": "o-1", "data": {"amount": 12.5, "note": "café ✓ \"quoted\"", "nested": {"a": [1, 2, {"b": null}]}}},
        {"kind": "ln.raw", "data": {"raw_hex": "0102abcdef"}, "occurred_at": "2026-11-22T05:32:28.123456Z"},
        {"kind": "x.y", "key": "k", "data": "a plain string"}
    ]);
    let (status, _) = node.post_events("ingest", &events).await;
    assert_eq!(status, 202);
    let read = || -> Vec<Value> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(30), || async { read().len() >= 6 }).await,
        "6 deliveries expected, got {}",
        read().len()
    );
    let lines = read();
    for l in &lines {
        assert_eq!(l["standardwebhooks_ok"], true, "{l}");
        assert_eq!(l["svix_ok"], true, "{l}");
        assert_eq!(l["tampered_rejected_by_both"], true, "{l}");
        assert_eq!(l["stale_rejected_by_both"], true, "{l}");
    }
    let ids: std::collections::HashSet<_> = lines
        .iter()
        .map(|l| l["webhook_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 6, "one webhook-id per (subscription, event)");
    let _ = receiver.kill();
    let _ = receiver.wait();
}
