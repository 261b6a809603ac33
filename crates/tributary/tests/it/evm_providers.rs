//! Several providers of one chain: the same log from two providers is one event with two observations;
//! a provider going down leaves the source following through the other (the source `degraded` in
//! `/health`, the provider `failing` in `/v1/sources`) and catches up when it comes back; a misbehaving
//! JSON-RPC server (truncated JSON, wrong types, huge answers, stalls) gets clear rejects and never stops
//! the source; a log whose signature matches an ABI entry but does not decode is rejected once.

use crate::evm_backfill::evm_source;
use crate::evm_peer::{Kind, Peer, all_events, assert_same, free_port, live_logs};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tributary_testkit::{TestNode, wait_until};

const T: Duration = Duration::from_secs(120);

/// A TCP proxy on a free loopback port in front of `target`, which can be taken down (listener closed,
/// open connections cut) and brought back up on the same port.
pub struct Proxy {
    pub port: u16,
    target: u16,
    tasks: Option<JoinSet<()>>,
}

impl Proxy {
    pub async fn start(target: u16) -> Self {
        let mut p = Self {
            port: free_port(),
            target,
            tasks: None,
        };
        p.up().await;
        p
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn up(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.expect("proxy port");
        let target = self.target;
        let mut tasks = JoinSet::new();
        let conns = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
        tasks.spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                conns.lock().await.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// Closes the listener and cuts every open connection (the connection tasks live in the accept
    /// task's set, dropped with it).
    pub async fn down(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.shutdown().await;
        }
    }
}

async fn observers(node: &TestNode, id: &str) -> Vec<String> {
    let (_, full) = node.get(&format!("/v1/events/{id}")).await;
    let mut o: Vec<String> = (full["observations"].as_array().cloned().unwrap_or_default())
        .iter()
        .map(|o| o["observer"].as_str().unwrap_or_default().to_owned())
        .collect();
    o.sort();
    o
}

/// Whether every stored event was seen by exactly the providers `want` (sorted).
async fn all_seen_by(node: &TestNode, want: &[String]) -> bool {
    for e in all_events(node, "anvil").await {
        if observers(node, e["id"].as_str().unwrap()).await != want {
            return false;
        }
    }
    true
}

async fn source_view(node: &TestNode) -> Value {
    node.get("/v1/sources/anvil").await.1
}

async fn health_of_source(node: &TestNode) -> Value {
    node.get("/health").await.1["sources"]["anvil"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_providers_give_one_event_two_observations_and_survive_one_going_down() {
    let anvil = Peer::start(Kind::Anvil).await;
    let contract = anvil.deploy().await;
    for _ in 0..10 {
        anvil.spray(&contract, 10).await;
    }
    let mut proxy = Proxy::start(anvil.port).await;
    let (direct, proxied) = (anvil.url.clone(), proxy.url());
    let config = evm_source("anvil", &[&direct, &proxied], &contract, "reorg_depth = 8");
    let node = TestNode::start(crate::BIN, &config);
    let mut both = vec![direct.clone(), proxied.clone()];
    both.sort();
    let ok = wait_until(T, || async {
        all_events(&node, "anvil").await.len() == 100 && all_seen_by(&node, &both).await
    })
    .await;
    assert!(ok, "not every log has an observation of each provider");
    let view = source_view(&node).await;
    for p in [&direct, &proxied] {
        let part = &view["parts"][p.as_str()];
        assert_eq!(part["state"], "following", "{view}");
        assert_eq!(part["head"], anvil.head().await, "{view}");
        assert_eq!(part["lag_blocks"], 0, "{view}");
    }

    // The proxied provider goes down: the source follows on through the direct one, and says which
    // provider fails.
    proxy.down().await;
    for _ in 0..5 {
        anvil.spray(&contract, 10).await;
    }
    let chain = anvil.transfer_logs(&contract).await;
    assert!(wait_until(T, || async { all_events(&node, "anvil").await.len() == chain.len() }).await);
    assert_same(&live_logs(&all_events(&node, "anvil").await), &chain, 31337);
    let degraded = wait_until(T, || async {
        let h = health_of_source(&node).await;
        h["status"] == "degraded" && h["reason"].as_str().unwrap_or("").contains(proxied.as_str())
    })
    .await;
    assert!(degraded, "{}", node.get("/health").await.1);
    let view = source_view(&node).await;
    let part = &view["parts"][proxied.as_str()];
    assert_eq!(part["state"], "failing", "{view}");
    assert!(part["errors"].as_u64().unwrap() >= 3, "{view}");
    assert!(
        part["last_error"]
            .as_str()
            .unwrap()
            .contains("cannot reach the provider"),
        "{view}"
    );
    assert_eq!(view["parts"][direct.as_str()]["state"], "following", "{view}");
    let (_, rejects) = node.get("/v1/sources/anvil/rejects").await;
    assert!(
        (rejects["rejects"].as_array().unwrap().iter()).any(|r| r["position"] == format!("provider {proxied}")),
        "{rejects}"
    );

    // Back up: it catches up from its checkpoint, every log gets its second observation, health is ok.
    proxy.up().await;
    assert!(wait_until(T, || async { all_seen_by(&node, &both).await }).await);
    assert!(wait_until(T, || async { health_of_source(&node).await["status"] == "ok" }).await);
    assert_eq!(all_events(&node, "anvil").await.len(), 150);
}

/// What the misbehaving server answers, in turn.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    Truncated,
    WrongType,
    Huge,
    Stall,
    NotJsonRpc,
    HttpError,
}

const MISBEHAVIOURS: [Misbehaviour; 6] = [
    Misbehaviour::Truncated,
    Misbehaviour::WrongType,
    Misbehaviour::Huge,
    Misbehaviour::Stall,
    Misbehaviour::NotJsonRpc,
    Misbehaviour::HttpError,
];

/// A JSON-RPC "provider" of chain 31337 that answers `eth_chainId` correctly and everything else badly,
/// cycling through [`MISBEHAVIOURS`].
async fn misbehaving_server() -> (String, Arc<AtomicU64>) {
    let calls = Arc::new(AtomicU64::new(0));
    async fn answer(State(calls): State<Arc<AtomicU64>>, body: Bytes) -> Response {
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let id = request.get("id").cloned().unwrap_or(json!(1));
        if request["method"] == "eth_chainId" {
            return axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": "0x7a69"})).into_response();
        }
        let n = calls.fetch_add(1, Relaxed);
        match MISBEHAVIOURS[(n % MISBEHAVIOURS.len() as u64) as usize] {
            Misbehaviour::Truncated => r#"{"jsonrpc":"2.0","id":1,"result":"0x1"#.into_response(),
            Misbehaviour::WrongType => {
                // A number where a hex quantity belongs, and a log whose fields have the wrong types.
                let result = if request.is_array() {
                    json!([{"jsonrpc": "2.0", "id": 0, "result": {"number": 5, "hash": 7}}])
                } else {
                    json!({"jsonrpc": "2.0", "id": id, "result": 12345})
                };
                axum::Json(result).into_response()
            }
            Misbehaviour::Huge => {
                // 4 MiB of array, over the source's max_response_bytes of 1 MiB.
                let item = "\"0x0000000000000000000000000000000000000000000000000000000000000000\",";
                let mut s = String::from(r#"{"jsonrpc":"2.0","id":1,"result":["#);
                while s.len() < 4 << 20 {
                    s.push_str(item);
                }
                s.push_str("\"0x\"]}");
                s.into_response()
            }
            Misbehaviour::Stall => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": "0x1"})).into_response()
            }
            Misbehaviour::NotJsonRpc => axum::Json(json!({"hello": "world"})).into_response(),
            Misbehaviour::HttpError => (axum::http::StatusCode::BAD_GATEWAY, "upstream down").into_response(),
        }
    }
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let app = axum::Router::new()
        .route("/", axum::routing::post(answer))
        .with_state(calls.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_provider_gets_clear_rejects_and_never_stops_the_source() {
    let anvil = Peer::start(Kind::Anvil).await;
    let contract = anvil.deploy().await;
    for _ in 0..5 {
        anvil.spray(&contract, 10).await;
    }
    // A log with Transfer's topic 0 whose data does not decode: a reject, not an event.
    anvil.odd(&contract).await;
    let (bad, calls) = misbehaving_server().await;
    let config = evm_source(
        "anvil",
        &[&anvil.url, &bad],
        &contract,
        "request_timeout_ms = 500\nmax_response_bytes = 1048576",
    );
    let node = TestNode::start(crate::BIN, &config);
    // Every misbehaviour came (the bad provider is retried with a growing backoff), and the good
    // provider delivered everything meanwhile.
    assert!(wait_until(T, || async { calls.load(Relaxed) >= MISBEHAVIOURS.len() as u64 }).await);
    for _ in 0..3 {
        anvil.spray(&contract, 10).await;
    }
    let mut chain = anvil.transfer_logs(&contract).await;
    // The odd log is not an event (it is rejected); the rest are.
    chain.retain(|l| l["data"].as_str().unwrap().len() == 66);
    assert_eq!(chain.len(), 80);
    assert!(wait_until(T, || async { all_events(&node, "anvil").await.len() == chain.len() }).await);
    assert_same(&live_logs(&all_events(&node, "anvil").await), &chain, 31337);

    let (_, rejects) = node.get("/v1/sources/anvil/rejects?limit=1000").await;
    let rejects = rejects["rejects"].as_array().unwrap().clone();
    let of_bad: Vec<&str> = (rejects.iter())
        .filter(|r| r["position"] == format!("provider {bad}"))
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    let text = of_bad.join("\n");
    for expected in [
        "not JSON",
        "larger than max_response_bytes (1048576 bytes)",
        "within 500 ms (request_timeout_ms)",
        "HTTP 502",
    ] {
        assert!(text.contains(expected), "no reject says {expected:?}:\n{text}");
    }
    assert!(of_bad.iter().all(|r| r.contains(bad.as_str())), "{text}");
    // The undecodable log: one reject naming its position and why.
    let odd: Vec<&Value> = rejects
        .iter()
        .filter(|r| r["reason"].as_str().unwrap().contains("Transfer"))
        .collect();
    assert_eq!(odd.len(), 1, "{rejects:?}");
    let view = source_view(&node).await;
    assert_eq!(view["parts"][anvil.url.as_str()]["state"], "following", "{view}");
    assert_eq!(view["status"]["failure"], Value::Null, "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_log_is_rejected_once_though_two_providers_serve_it() {
    let anvil = Peer::start(Kind::Anvil).await;
    let contract = anvil.deploy().await;
    anvil.spray(&contract, 3).await;
    anvil.odd(&contract).await;
    anvil.spray(&contract, 3).await;
    let other = format!("http://localhost:{}", anvil.port);
    let config = evm_source("anvil", &[&anvil.url, &other], &contract, "");
    let node = TestNode::start(crate::BIN, &config);
    assert!(wait_until(T, || async { all_events(&node, "anvil").await.len() == 6 }).await);
    let both = wait_until(T, || async {
        let v = source_view(&node).await;
        [&anvil.url, &other]
            .iter()
            .all(|p| v["parts"][p.as_str()]["next_block"].as_u64() > Some(3))
    })
    .await;
    assert!(both, "{}", source_view(&node).await);
    let (_, rejects) = node.get("/v1/sources/anvil/rejects").await;
    let rejects = rejects["rejects"].as_array().unwrap();
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    let r = &rejects[0];
    assert_eq!(r["position"], "3:0", "block 3 holds the odd log: {r}");
    assert!(r["reason"].as_str().unwrap().contains("Transfer"), "{r}");
    assert!(r["excerpt"].as_str().unwrap().contains("\"block_number\":3"), "{r}");
}
