//! `tributary validate`: the example config is valid; a broken one reports every problem with its path.

use crate::BIN;
use std::process::Command;

#[test]
fn example_config_validates() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/tributary.example.toml");
    let out = Command::new(BIN)
        .args(["validate", "--config", example])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[node]
listen = "nowhere"

[[sources]]
name = "in"
type = "http"

[[subscriptions]]
name = "s"
filter = { kinds = ["ln..x"], where = [{ path = "a", op = "between", value = 1 }] }
retry = { schedule = ["soon"] }
[subscriptions.sink]
type = "webhook"
url = "ftp://example.com"
secret = "not-a-secret"
"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["validate", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "node.listen",
        "subscriptions[0].filter.kinds[0]",
        "subscriptions[0].filter.where[0].op",
        "subscriptions[0].retry.schedule[0]",
        "subscriptions[0].sink",
    ] {
        assert!(err.contains(needle), "missing {needle} in:\n{err}");
    }
}

#[test]
fn demo_runs_and_every_signature_verifies() {
    let out = Command::new(BIN).args(["demo", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The 139-message sample imported from two collectors as real ln.* events: 37 channel announcements,
    // 38 node announcements, 27 channel updates and 37 channel_amount records; one update's channel is
    // not in the sample (an unknown_channel problem). The second pass only adds observations.
    assert_eq!(report["events_received"], 278);
    assert_eq!(report["accepted"], 138);
    assert_eq!(report["problems"], 1);
    assert_eq!(report["duplicates_dropped"], 138);
    assert_eq!(report["delivered"], 139);
    assert_eq!(report["graph_channels"], 37);
    assert_eq!(report["signatures_failed"], 0);
}

#[test]
fn environment_overrides_config_keys() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/tributary.example.toml");
    let out = Command::new(BIN)
        .args(["validate", "--config", example])
        .env("TRIBUTARY__NODE__LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("node.listen") && err.contains("not-an-address"), "{err}");
    let out = Command::new(BIN)
        .args(["validate", "--config", example])
        .env("TRIBUTARY_ADMIN_KEY", "short")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("node.admin_key: expected at least 8 characters"));
}
