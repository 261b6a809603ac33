//! `/health` reports the store `down` (503) once a write failed and the store refuses writes.

use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tributary_engine::{Config, Node};
use tributary_store::MemoryStore;

#[tokio::test]
async fn a_poisoned_store_makes_health_down() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = Config::from_toml(
        "[node]\nstore = \"memory\"\nadmin_key = \"health-test-key\"\n\n[[sources]]\nname = \"in\"\ntype = \"http\"\n",
    )
    .unwrap();
    let store = Arc::new(MemoryStore::new());
    let node = Arc::new(Node::start_with_store(config, store.clone()).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(tributary_api::serve(node.clone(), listener, stop.clone()));
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    store.poison("disk full (simulated)");
    // Without a key: the status only, with the same code.
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "down"}));
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth("health-test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "down");
    assert_eq!(body["store"]["status"], "down");
    assert!(
        body["store"]["reason"].as_str().unwrap().contains("disk full"),
        "{body}"
    );
    stop.cancel();
}
