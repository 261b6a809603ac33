//! The OpenAPI document covers every route, and PyPI `schemathesis` fuzzing the running node from it
//! finds no server error and no answer that contradicts the document.

use crate::BIN;
use std::path::PathBuf;
use std::process::Command;
use tributary_testkit::{ADMIN_KEY, TestNode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_5xx_and_no_schema_violation() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let venv = std::env::var_os("TRIBUTARY_PYTHON")
        .map(PathBuf::from)
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| repo.join(".venv/bin"));
    let st = venv.join("schemathesis");
    assert!(
        st.exists(),
        "{} not found: run ./scripts/python-env.sh (it installs schemathesis into .venv)",
        st.display()
    );
    let node = TestNode::start(
        BIN,
        "[[sources]]\nname = \"ingest\"\ntype = \"http\"\ntenants = [\"*\"]\n\n[[subscriptions]]\nname = \"hook\"\n[subscriptions.sink]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nallow_private_networks = true\n",
    );
    let (status, doc) = node.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/health",
        "/metrics",
        "/v1/sources",
        "/v1/sources/{name}/events",
        "/v1/events",
        "/v1/events/{id}",
        "/v1/subscriptions",
        "/v1/subscriptions/{name}",
        "/v1/subscriptions/{name}/rotate-secret",
        "/v1/subscriptions/{name}/replay",
        "/v1/subscriptions/{name}/dead-letters/replay",
        "/v1/dead-letters/stats",
        "/v1/tenants/{name}/keys/{id}",
    ] {
        assert!(paths.contains_key(p), "{p} missing from /openapi.json");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(&st)
        .current_dir(dir.path())
        .args(["run", &format!("{}/openapi.json", node.url), "-H", &format!("Authorization: Bearer {ADMIN_KEY}")])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"])
        .args(["--max-examples", "25", "--seed", "1"])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
}
