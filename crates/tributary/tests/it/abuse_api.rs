//! Abuse of the API and ingest on the running binary (issue 7 items 3, 6, 7, 8, 9 and parts of 13): each
//! probe gets its documented answer, memory stays bounded, and the node keeps answering.

use crate::BIN;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tributary_testkit::{ADMIN_KEY, TestNode, wait_until};

const T: Duration = Duration::from_secs(30);
const SOURCE: &str = "[[sources]]\nname = \"in\"\ntype = \"http\"\ntenants = [\"*\"]\n";

fn addr(node: &TestNode) -> String {
    node.url.trim_start_matches("http://").to_owned()
}

async fn post_raw(node: &TestNode, path: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = node.client().post(format!("{}{path}", node.url)).bearer_auth(ADMIN_KEY);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let resp = req.body(body).send().await.expect("post");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

async fn alive(node: &TestNode) {
    let (status, _) = node.get("/v1/sources").await;
    assert_eq!(status, 200, "the node still answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_api_ingest_limits_answer_413_and_415_with_the_limit_named() {
    let node = TestNode::start(
        BIN,
        &format!(
            "{SOURCE}max_events_per_request = 5\nmax_event_bytes = 100\nmax_key_bytes = 8\nmax_body_bytes = 4096\n"
        ),
    );
    let path = "/v1/sources/in/events";
    let events = |n: usize| json!((0..n).map(|i| json!({"kind": "a.b", "data": i})).collect::<Vec<_>>());
    let (st, _) = node.post_events("in", &events(5)).await;
    assert_eq!(st, 202);
    let cases = [
        (events(6), "max_events_per_request", None),
        (
            json!({"kind": "a", "data": "x".repeat(200)}),
            "max_event_bytes of 100",
            Some("data"),
        ),
        (
            json!([{"kind": "a", "data": 1, "key": "123456789"}]),
            "max_key_bytes of 8",
            Some("key"),
        ),
        (json!({"kind": "k".repeat(300), "data": 1}), "most of 256", Some("kind")),
        (
            json!([{"kind": "a", "data": "x".repeat(5000)}]),
            "max_body_bytes of 4096",
            None,
        ),
    ];
    for (body, needle, field) in cases {
        let (st, err) = node.post_events("in", &body).await;
        assert_eq!(st, 413, "{err}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle} in {message}");
        if let Some(f) = field {
            assert_eq!(err["error"]["field"], f, "{err}");
        }
    }
    let body = br#"{"kind":"a","data":1}"#.to_vec();
    for ct in [None, Some("application/x-www-form-urlencoded"), Some("text/plain")] {
        let (st, err) = post_raw(&node, path, ct, body.clone()).await;
        assert_eq!(
            (st, err["error"]["code"].as_str()),
            (415, Some("unsupported_media_type")),
            "{ct:?}"
        );
        assert!(err["error"]["message"].as_str().unwrap().contains("application/json"));
    }
    let (st, _) = post_raw(&node, path, Some("application/json; charset=utf-8"), body).await;
    assert_eq!(st, 202);
    alive(&node).await;
}

/// Holds a request whose body is declared but not yet sent, so its reservation stays in the budget.
async fn hold_declared(node: &TestNode, len: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr(node)).await.unwrap();
    let head = format!(
        "POST /v1/sources/in/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n["
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_api_ingest_memory_budget_answers_429_with_retry_after_then_recovers() {
    let node = TestNode::start_with_node(BIN, "max_ingest_in_flight_bytes = 1048576", SOURCE);
    let mut held = hold_declared(&node, 900_000).await;
    let small: Vec<Value> = (0..10).map(|i| json!({"kind": "a", "data": i})).collect();
    let body = serde_json::to_vec(&json!(small)).unwrap();
    // The held request's reservation is taken once its head is read: poll until the budget refuses.
    let deadline = Instant::now() + T;
    let busy = loop {
        // A probe that reserved first makes the held request itself the one refused (answered at once,
        // then closed): hold another one.
        let mut peek = [0u8; 1];
        match held.try_read(&mut peek) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => held = hold_declared(&node, 900_000).await,
        }
        let mut padded = body.clone();
        padded.resize(200_000, b' ');
        let resp = node
            .client()
            .post(format!("{}/v1/sources/in/events", node.url))
            .bearer_auth(ADMIN_KEY)
            .header("content-type", "application/json")
            .body(padded)
            .send()
            .await
            .unwrap();
        if resp.status().as_u16() == 429 {
            break Some((
                resp.headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned()),
                resp.json::<Value>().await.unwrap(),
            ));
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (retry_after, err) = busy.expect("a 429 while the held request keeps its reservation");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(err["error"]["code"], "ingest_busy");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_ingest_in_flight_bytes = 1048576")
    );
    // Alone larger than the whole budget: 413, not a 429 that could never succeed.
    let (st, err) = post_raw(
        &node,
        "/v1/sources/in/events",
        Some("application/json"),
        vec![b' '; 2_000_000],
    )
    .await;
    assert_eq!((st, err["error"]["code"].as_str()), (413, Some("too_large")), "{err}");
    drop(held);
    assert!(
        wait_until(T, || async { node.post_events("in", &json!(small)).await.0 == 202 }).await,
        "the budget is given back when the held request goes away"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_api_peak_memory_stays_below_512_mb_with_four_maximum_batches_at_once() {
    let node = TestNode::start(BIN, SOURCE);
    let url = format!("{}/v1/sources/in/events", node.url);
    let max_body = 16 * 1024 * 1024;
    // Shapes of maximum-size bodies (16 MiB, 10,000 events): tiny events padded with whitespace; events
    // of one long string; events of many small objects (the worst decoded size per byte); and 16 MiB of
    // tiny events, far more than 10,000.
    let padded = {
        let mut b = serde_json::to_vec(&json!(
            (0..10_000).map(|i| json!({"kind": "t", "data": i})).collect::<Vec<_>>()
        ))
        .unwrap();
        b.resize(max_body - 16, b' ');
        b
    };
    let strings = serde_json::to_vec(&json!(
        (0..10_000)
            .map(|i| json!({"kind": "s", "data": format!("{i}{}", "x".repeat(1_600))}))
            .collect::<Vec<_>>()
    ))
    .unwrap();
    let objects = serde_json::to_vec(&json!(
        (0..10_000)
            .map(|i| json!({"kind": "o", "data": (0..100).map(|j| json!({"a": i * 1000 + j})).collect::<Vec<_>>()}))
            .collect::<Vec<_>>()
    ))
    .unwrap();
    let tiny = {
        let one = br#"{"kind":"t","data":1},"#;
        let mut b = b"[".to_vec();
        while b.len() + one.len() < max_body - 64 {
            b.extend_from_slice(one);
        }
        b.extend_from_slice(br#"{"kind":"t","data":1}]"#);
        b
    };
    for body in [&padded, &strings, &objects, &tiny] {
        assert!(body.len() <= max_body, "{}", body.len());
    }
    let mut report = Vec::new();
    for (name, body) in [
        ("padded", padded),
        ("strings", strings),
        ("objects", objects),
        ("tiny", tiny),
    ] {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (client, url, body) = (node.client().clone(), url.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let resp = client
                    .post(url)
                    .bearer_auth(ADMIN_KEY)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                resp.status().as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        statuses.sort();
        assert!(
            statuses.iter().all(|s| [202, 413, 429].contains(s)),
            "{name}: {statuses:?}"
        );
        if name == "tiny" {
            assert!(
                statuses.iter().all(|&s| s == 413),
                "more than 10,000 events: {statuses:?}"
            );
        } else if name != "objects" {
            assert!(statuses.contains(&202), "{name}: {statuses:?}");
        }
        let peak = node.memory("VmHWM").unwrap();
        report.push(format!("{name}: {statuses:?}, peak {} MB", peak / 1_000_000));
    }
    let peak = node.memory("VmHWM").unwrap();
    let idle = node.memory("VmRSS").unwrap();
    eprintln!(
        "four maximum batches at once: {}; idle RSS {} MB",
        report.join("; "),
        idle / 1_000_000
    );
    assert!(peak < 512 * 1024 * 1024, "peak RSS {peak} bytes: {report:?}");
    alive(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_api_idempotency_authenticates_first_and_keeps_no_secret() {
    let mut node = TestNode::start(BIN, SOURCE);
    let post = |path: String, bearer: String, key: &'static str, body: Value| {
        node.client()
            .post(format!("{}{path}", node.url))
            .bearer_auth(bearer)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    // Unauthenticated: 401 before the body is read; nothing kept under the key.
    let big = json!({"kind": "a", "data": "x".repeat(512 * 1024)});
    let r = post("/v1/sources/in/events".into(), "wrong".into(), "k1", big)
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = post("/v1/nowhere".into(), "wrong".into(), "k1", json!({}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = post(
        "/v1/sources/in/events".into(),
        ADMIN_KEY.into(),
        "k1",
        json!({"kind": "a", "data": 1}),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 202, "no 401 was kept under k1");
    // A non-ASCII key is refused, not ignored.
    let r = node
        .client()
        .post(format!("{}/v1/sources/in/events", node.url))
        .bearer_auth(ADMIN_KEY)
        .header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes("clé".as_bytes()).unwrap(),
        )
        .json(&json!({"kind": "a", "data": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "invalid_idempotency_key");

    // A tenant key created with an Idempotency-Key: its retry gets 409, never the key again.
    let (st, _) = crate::control::call(&node, "POST", "/v1/tenants", ADMIN_KEY, Some(json!({"name": "acme"}))).await;
    assert_eq!(st, 201);
    let r = post("/v1/tenants/acme/keys".into(), ADMIN_KEY.into(), "mk-1", json!({}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let created: Value = r.json().await.unwrap();
    let tenant_key = created["key"].as_str().unwrap().to_owned();
    let r = post("/v1/tenants/acme/keys".into(), ADMIN_KEY.into(), "mk-1", json!({}))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "idempotent_answer_not_kept", "{err}");
    assert!(!err.to_string().contains(&tenant_key));
    let (_, keys) = node.get("/v1/tenants/acme/keys").await;
    assert_eq!(
        keys["keys"].as_array().unwrap().len(),
        1,
        "the retry made no second key"
    );

    // The tenant's answers are kept per key and never replayed once the key is revoked.
    let r = post(
        "/v1/sources/in/events".into(),
        tenant_key.clone(),
        "t-1",
        json!({"kind": "a", "data": 3}),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let r = post(
        "/v1/sources/in/events".into(),
        tenant_key.clone(),
        "t-1",
        json!({"kind": "a", "data": 3}),
    )
    .await
    .unwrap();
    assert_eq!(
        r.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let r = post(
        "/v1/sources/in/events".into(),
        ADMIN_KEY.into(),
        "t-1",
        json!({"kind": "a", "data": 4}),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 202, "another credential has its own keys");
    let id = created["id"].as_str().unwrap();
    let (st, _) = crate::control::call(&node, "DELETE", &format!("/v1/tenants/acme/keys/{id}"), ADMIN_KEY, None).await;
    assert_eq!(st, 200);
    let r = post(
        "/v1/sources/in/events".into(),
        tenant_key.clone(),
        "t-1",
        json!({"kind": "a", "data": 3}),
    )
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 401, "a revoked key gets no replay");

    // No secret in clear anywhere in the data directory.
    node.terminate();
    let mut found = Vec::new();
    let mut dirs = vec![node.dir.path().join("data")];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if std::fs::read(&p)
                .unwrap()
                .windows(tenant_key.len())
                .any(|w| w == tenant_key.as_bytes())
            {
                found.push(p);
            }
        }
    }
    assert!(found.is_empty(), "the tenant key is stored in clear in {found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_api_a_committed_batch_with_an_answer_too_large_to_keep_is_answered_202_once() {
    let node = TestNode::start(BIN, &format!("{SOURCE}max_events_per_request = 20000\n"));
    let events: Vec<Value> = (0..17_000).map(|i| json!({"kind": "a", "data": i})).collect();
    let post = || {
        node.client()
            .post(format!("{}/v1/sources/in/events", node.url))
            .bearer_auth(ADMIN_KEY)
            .header("idempotency-key", "big-1")
            .json(&events)
            .send()
    };
    let r = post().await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let reply: Value = r.json().await.unwrap();
    assert_eq!(reply["accepted"], 17_000);
    assert!(
        reply.to_string().len() > 1024 * 1024,
        "the answer is over the 1 MiB kept"
    );
    let r = post().await.unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "idempotent_answer_not_kept");
    assert!(err["error"]["message"].as_str().unwrap().contains("dry_run"), "{err}");
    let (_, page) = node.get("/v1/events?limit=1").await;
    assert_eq!(page["last_seq"], 17_000, "the retry wrote nothing");
}

/// Opens a connection that sends part of a request head and then nothing.
async fn slow_header(node: &TestNode) -> TcpStream {
    let mut s = TcpStream::connect(addr(node)).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    s
}

/// Whether the server closed the connection (EOF or reset) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(within, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        // hyper may answer 408 before closing; what matters is that the connection ends.
        Ok(Ok(_)) => matches!(
            tokio::time::timeout(within, s.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        ),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_api_slow_headers_are_cut_and_connections_are_limited() {
    let node = TestNode::start_with_node(BIN, "header_read_timeout_ms = 1500\nmax_connections = 8", SOURCE);
    alive(&node).await;
    let base_fds = node.open_fds().unwrap();
    let mut slow = Vec::new();
    for _ in 0..8 {
        slow.push(slow_header(&node).await);
    }
    // 40 more clients wait in the listen backlog: they use no descriptor of the node.
    let mut waiting = Vec::new();
    for _ in 0..40 {
        waiting.push(TcpStream::connect(addr(&node)).await.unwrap());
    }
    let fds = node.open_fds().unwrap();
    assert!(
        fds <= base_fds + 8 + 4,
        "{fds} descriptors open, {base_fds} before: over max_connections"
    );
    // A request waiting for a slot is served once the slow ones are cut.
    let url = format!("{}/health", node.url);
    let started = Instant::now();
    let served = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    for s in &mut slow {
        assert!(closed_within(s, T).await, "a slow-header connection was not closed");
    }
    let cut_after = started.elapsed();
    drop(waiting);
    assert_eq!(served.await.unwrap().unwrap(), 200);
    assert!(
        cut_after >= Duration::from_millis(500),
        "cut after {cut_after:?}, not at once"
    );
    alive(&node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_api_shutdown_does_not_wait_for_slow_connections() {
    let mut node = TestNode::start_with_node(BIN, "header_read_timeout_ms = 600000", SOURCE);
    let _slow = slow_header(&node).await;
    let mut idle = TcpStream::connect(addr(&node)).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(
        idle.read(&mut buf).await.unwrap() > 0,
        "an idle keep-alive connection after one answer"
    );
    let started = Instant::now();
    assert_eq!(node.terminate(), Some(0));
    let took = started.elapsed();
    // shutdown_grace_ms is 5,000 in the test config; the header timeout is 10 minutes.
    assert!(took < Duration::from_secs(20), "shutdown took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_api_health_details_and_metrics_need_the_admin_key_or_metrics_token() {
    let token = "metrics-token-0123456789";
    let node = TestNode::start_with_node(
        BIN,
        &format!("metrics_token = \"{token}\""),
        &format!(
            "{SOURCE}\n[[subscriptions]]\nname = \"secret-name\"\n[subscriptions.sink]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nallow_private_networks = true\n"
        ),
    );
    let (st, _) = crate::control::call(&node, "POST", "/v1/tenants", ADMIN_KEY, Some(json!({"name": "acme"}))).await;
    assert_eq!(st, 201);
    let (_, created) = node.post("/v1/tenants/acme/keys").await;
    let tenant = created["key"].as_str().unwrap().to_owned();
    let get = |path: &str, bearer: Option<&str>| {
        let mut r = node.client().get(format!("{}{path}", node.url));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        async move {
            let resp = r.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    for who in [None, Some(tenant.as_str()), Some("wrong")] {
        let (st, body) = get("/health", who).await;
        assert_eq!(st, 200);
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"status": "ok"}),
            "{who:?}"
        );
        let (st, body) = get("/metrics", who).await;
        assert_eq!(st, 401, "{who:?}");
        assert!(body.contains("metrics_token"), "{body}");
    }
    for who in [ADMIN_KEY, token] {
        let (st, body) = get("/health", Some(who)).await;
        assert_eq!(st, 200);
        assert!(body.contains("secret-name"), "{body}");
        let (st, body) = get("/metrics", Some(who)).await;
        assert_eq!(st, 200);
        assert!(body.contains("tributary_"), "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_api_integers_beyond_64_bits_are_kept_exactly_across_a_restart() {
    let mut node = TestNode::start(BIN, SOURCE);
    let body = br#"{"kind":"a.big","data":{"n":12345678901234567890123,"m":9007199254740993,"f":1.50}}"#.to_vec();
    let (st, reply) = post_raw(&node, "/v1/sources/in/events", Some("application/json"), body).await;
    assert_eq!(st, 202, "{reply}");
    let id = reply["ids"][0].as_str().unwrap().to_owned();
    // The id is that of the canonical form, where 1.50 is 1.5 as before.
    let canonical = r#"{"data":{"f":1.5,"m":9007199254740993,"n":12345678901234567890123},"key":null,"kind":"a.big"}"#;
    assert_eq!(id, tributary_core::EventId::sha256(canonical.as_bytes()).to_hex());
    for round in 0..2 {
        let text = node
            .client()
            .get(format!("{}/v1/events/{id}", node.url))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("\"n\":12345678901234567890123"), "round {round}: {text}");
        assert!(text.contains("\"m\":9007199254740993"), "round {round}: {text}");
        node.terminate();
        node.spawn();
    }
}

/// An answer given before the body was read (401 here) closes the connection and says so, and the
/// client reads it whole: no reset, and no next request sent on a connection the server is closing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_api_early_answers_say_connection_close_and_arrive_whole() {
    let node = TestNode::start(BIN, SOURCE);
    // On the wire: the head, part of a 4 MiB body, then the answer is read to the end.
    let mut s = TcpStream::connect(addr(&node)).await.unwrap();
    let head = "POST /v1/sources/in/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n";
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![b' '; 256 * 1024]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut answer))
        .await
        .expect("the server ends the connection")
        .expect("the answer arrives, not a reset");
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 401"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    // With a pooling client: each early answer is followed by a request that succeeds.
    let client = node.client();
    for _ in 0..20 {
        let r = client
            .post(format!("{}/v1/sources/in/events", node.url))
            .bearer_auth("wrong")
            .header("content-type", "application/json")
            .body(vec![b' '; 512 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
        let r = client
            .get(format!("{}/v1/subscriptions", node.url))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401);
    }
    alive(&node).await;
}
