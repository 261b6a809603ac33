//! Webhook sink tests: config checks, rotation, and the classification table, headers, body, timeouts and
//! SSRF refusals against a tiny hand-written HTTP/1.1 server on 127.0.0.1; plus an ignored test against
//! the published Python verifiers. Signing vectors, the SSRF address table and `Retry-After` parsing are
//! tested inline in their modules.

use super::*;
use crate::{SinkConfig, SinkContext, SinkError};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tributary_core::{Delivery, DeliveryStatus, EventId, NewEvent, Sink, StoredEvent, Timestamp};

const REF_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const REF_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const REF_TS: i64 = 1614265330;
const REF_BODY: &[u8] = br#"{"test": 2432232314}"#;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_unix_secs(secs)
}

fn sink_config(value: serde_json::Value) -> Result<SinkConfig, serde_json::Error> {
    serde_json::from_value(value)
}

#[test]
fn config_defaults_durations_and_unknown_fields() {
    let config = sink_config(json!({"type": "webhook", "url": "https://example.com/hook"})).unwrap();
    #[allow(irrefutable_let_patterns)] // in a build with no other sink type
    let SinkConfig::Webhook(webhook) = &config else {
        panic!("a webhook config")
    };
    assert_eq!(webhook, &WebhookConfig::new("https://example.com/hook"));
    assert_eq!(webhook.timeout, Duration::from_secs(15));
    assert_eq!(webhook.connect_timeout, Duration::from_secs(10));
    assert!(!webhook.allow_private_networks);
    assert!(config.needs_generated_secret());
    assert_eq!(config.type_name(), "webhook");

    let config = sink_config(json!({
        "type": "webhook", "url": "https://example.com/hook", "secret": REF_SECRET,
        "timeout": "1m 30s", "connect_timeout": "2s",
        "previous_secrets": [{"secret": REF_SECRET, "expires_at": "2030-01-01T00:00:00Z"}],
        "headers": {"authorization": "Bearer abc"},
    }))
    .unwrap();
    #[allow(irrefutable_let_patterns)] // in a build with no other sink type
    let SinkConfig::Webhook(webhook) = &config else {
        panic!("a webhook config")
    };
    assert_eq!(webhook.timeout, Duration::from_secs(90));
    assert_eq!(webhook.connect_timeout, Duration::from_secs(2));
    assert_eq!(
        webhook.previous_secrets[0].expires_at,
        Timestamp::parse_rfc3339("2030-01-01T00:00:00Z").unwrap()
    );
    assert!(!config.needs_generated_secret());
    assert!(config.validate().is_ok());
    assert!(!format!("{config:?}").contains("MfKQ9r8"));
    assert!(!format!("{config:?}").contains("Bearer"));
    // Round-trips (the engine may persist sink configs).
    let again: SinkConfig = serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
    assert_eq!(again, config);

    let unknown = sink_config(json!({"type": "webhook", "url": "https://x.example", "retries": 3}));
    assert!(unknown.unwrap_err().to_string().contains("retries"));
    let unknown_type = sink_config(json!({"type": "carrier_pigeon", "url": "https://x.example"}));
    assert!(unknown_type.unwrap_err().to_string().contains("carrier_pigeon"));
}

#[test]
fn config_errors_name_the_field_and_the_bad_value() {
    let err = |c: WebhookConfig| c.validate().unwrap_err().to_string();
    let e = err(WebhookConfig::new("ftp://example.com/hook"));
    assert!(
        e.starts_with("url: ") && e.contains("\"ftp://example.com/hook\""),
        "{e}"
    );
    let e = err(WebhookConfig::new("not a url"));
    assert!(e.starts_with("url: ") && e.contains("\"not a url\""), "{e}");

    let mut c = WebhookConfig::new("https://example.com");
    c.secret = Some("hunter2hunter2hunter2hunter2hunter2".into());
    let e = err(c);
    assert!(e.starts_with("secret: ") && e.contains("whsec_"), "{e}");
    assert!(!e.contains("hunter2"), "secrets are never echoed: {e}");

    let mut c = WebhookConfig::new("https://example.com");
    c.previous_secrets.push(PreviousSecret {
        secret: "whsec_c2hvcnQ=".into(),
        expires_at: at(0),
    });
    assert!(err(c).starts_with("previous_secrets[0].secret: "));

    let mut c = WebhookConfig::new("https://example.com");
    c.headers.insert("Webhook-Signature".into(), "x".into());
    let e = err(c);
    assert!(e.contains("cannot be overridden"), "{e}");

    let mut c = WebhookConfig::new("https://example.com");
    c.headers.insert("x-ok".into(), "line\nbreak".into());
    assert!(err(c).starts_with("headers.x-ok: "));
}

#[test]
fn build_needs_a_secret_from_config_or_context() {
    let config = SinkConfig::Webhook(WebhookConfig::new("https://example.com/hook"));
    let err = config.build(SinkContext::new("orders")).err().unwrap();
    assert!(
        matches!(err, SinkError::Config { ref field, .. } if field == "secret"),
        "{err}"
    );
    let sink = config
        .build(SinkContext::new("orders").with_secret(generate_secret()))
        .unwrap();
    assert_eq!(sink.describe(), "webhook https://example.com/hook");
    let err = config
        .build(SinkContext::new("orders").with_secret("nope"))
        .err()
        .unwrap();
    assert!(err.to_string().starts_with("generated secret: "), "{err}");
}

#[test]
fn rotation_signs_with_every_unexpired_secret() {
    let current = generate_secret();
    let (old_live, old_expired) = (generate_secret(), generate_secret());
    let mut config = WebhookConfig::new("https://example.com/hook");
    config.secret = Some(current.clone());
    config.previous_secrets = vec![
        PreviousSecret {
            secret: old_live.clone(),
            expires_at: at(REF_TS + 60),
        },
        PreviousSecret {
            secret: old_expired.clone(),
            expires_at: at(REF_TS),
        },
    ];
    let sink = config.build(SinkContext::new("orders")).unwrap();
    let header = sink.signature_header(REF_ID, REF_TS, REF_BODY);
    let parts: Vec<&str> = header.split(' ').collect();
    assert_eq!(parts.len(), 2, "{header}");
    assert_eq!(parts[0], sign(&current, REF_ID, REF_TS, REF_BODY).unwrap());
    let ts = REF_TS.to_string();
    for secret in [&current, &old_live] {
        let res = verify(secret, REF_ID, &ts, &header, REF_BODY, DEFAULT_TOLERANCE, at(REF_TS));
        assert_eq!(res, Ok(()));
    }
    let res = verify(
        &old_expired,
        REF_ID,
        &ts,
        &header,
        REF_BODY,
        DEFAULT_TOLERANCE,
        at(REF_TS),
    );
    assert_eq!(res, Err(VerifyError::NoMatch));
    // Once the second secret expires only one signature is left.
    let later = sink.signature_header(REF_ID, REF_TS + 60, REF_BODY);
    assert_eq!(later.split(' ').count(), 1);
}

// ---- a tiny HTTP/1.1 receiver -------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Captured {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

struct TestServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Captured>>>,
}

impl TestServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, seen.clone()));
            }
        });
        Self { addr, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Captured> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Vec<Captured>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next().unwrap().split(' ').nth(1).unwrap().to_owned();
    let mut headers = HeaderMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            HeaderValue::from_str(value.trim()).unwrap(),
        );
    }
    let length: usize = headers
        .get("content-length")
        .map(|v| v.to_str().unwrap().parse().unwrap())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buf[head_end..head_end + length].to_vec();
    seen.lock().unwrap().push(Captured {
        path: path.clone(),
        headers,
        body,
    });
    let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
    let (status, extra, body): (&str, String, String) = match path.as_str() {
        "/ok" => ("200 OK", String::new(), "thanks".into()),
        "/accepted" => ("202 Accepted", String::new(), String::new()),
        "/moved" => (
            "301 Moved Permanently",
            "location: https://elsewhere.example/hook\r\n".into(),
            String::new(),
        ),
        "/gone" => ("410 Gone", String::new(), "endpoint deleted".into()),
        "/slow-down" => ("429 Too Many Requests", "retry-after: 120\r\n".into(), String::new()),
        "/bad" => ("400 Bad Request", String::new(), r#"{"error":"bad payload"}"#.into()),
        "/unavailable" => (
            "503 Service Unavailable",
            format!("retry-after: {later}\r\n"),
            "x".repeat(5000),
        ),
        "/hang" => return std::future::pending().await,
        _ => ("404 Not Found", String::new(), String::new()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn delivery(message_id: &str) -> Delivery {
    Delivery {
        subscription: "orders".into(),
        message_id: message_id.into(),
        event: Arc::new(StoredEvent {
            seq: 7,
            source: "shop".into(),
            ingested_at: Timestamp::parse_rfc3339("2026-01-02T03:04:05Z").unwrap(),
            event: NewEvent {
                id: EventId::sha256(b"order 42"),
                kind: "order.created".into(),
                key: Some("order-42".into()),
                occurred_at: None,
                position: Some("line 3".into()),
                payload: Vec::new(),
                data: json!({"total": 12.5, "items": ["a", "b"]}),
                tenant: None,
                retracts: None,
            },
        }),
        attempt: 1,
    }
}

fn sink_to(url: &str, secret: &str, allow_private: bool, timeout: Duration) -> Arc<dyn Sink> {
    let mut config = WebhookConfig::new(url);
    config.allow_private_networks = allow_private;
    config.timeout = timeout;
    config.headers.insert("x-team".into(), "payments".into());
    SinkConfig::Webhook(config)
        .build(SinkContext::new("orders").with_secret(secret))
        .unwrap()
}

#[tokio::test]
async fn delivered_requests_carry_standard_webhook_headers_and_body() {
    let server = TestServer::start().await;
    let secret = generate_secret();
    let sink = sink_to(&server.url("/ok"), &secret, true, Duration::from_secs(5));
    let d = delivery("msg_orders_0001");
    let first = sink.deliver(&d).await;
    assert_eq!(first.status, DeliveryStatus::Delivered, "{first:?}");
    assert_eq!(first.code, Some(200));
    assert!(first.error.is_none() && first.response_excerpt.is_none());
    let retry = sink
        .deliver(&Delivery {
            attempt: 2,
            ..d.clone()
        })
        .await;
    assert_eq!(retry.status, DeliveryStatus::Delivered);

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for req in &requests {
        assert_eq!(req.path, "/ok");
        assert_eq!(req.headers["webhook-id"], "msg_orders_0001");
        assert_eq!(req.headers["content-type"], "application/json");
        assert_eq!(req.headers["x-team"], "payments");
        let ts: i64 = req.headers["webhook-timestamp"].to_str().unwrap().parse().unwrap();
        assert!((Timestamp::now().unix_secs() - ts).abs() <= 5);
        let verified = verify_headers(&secret, &req.headers, &req.body, DEFAULT_TOLERANCE, Timestamp::now());
        assert_eq!(verified, Ok(()));
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["type"], "order.created");
        assert!(Timestamp::parse_rfc3339(body["timestamp"].as_str().unwrap()).is_ok());
        assert_eq!(
            body["data"],
            json!({
                "id": EventId::sha256(b"order 42").to_hex(),
                "source": "shop",
                "key": "order-42",
                "occurred_at": null,
                "ingested_at": "2026-01-02T03:04:05Z",
                "seq": 7,
                "data": {"total": 12.5, "items": ["a", "b"]},
            })
        );
    }
}

#[tokio::test]
async fn responses_are_classified() {
    let server = TestServer::start().await;
    let secret = generate_secret();
    let deliver = |path: &str| {
        let sink = sink_to(&server.url(path), &secret, true, Duration::from_secs(5));
        async move { sink.deliver(&delivery("msg_1")).await }
    };

    let r = deliver("/accepted").await;
    assert_eq!((r.status, r.code), (DeliveryStatus::Delivered, Some(202)));

    let r = deliver("/moved").await;
    assert_eq!((r.status, r.code), (DeliveryStatus::Retriable, Some(301)));
    let e = r.error.unwrap();
    assert!(e.starts_with(&format!("HTTP 301 from {}", server.url("/moved"))), "{e}");
    assert!(e.contains("https://elsewhere.example/hook"), "{e}");

    let r = deliver("/gone").await;
    assert_eq!((r.status, r.code), (DeliveryStatus::Pause, Some(410)));
    assert_eq!(r.response_excerpt.as_deref(), Some("endpoint deleted"));

    let r = deliver("/slow-down").await;
    assert_eq!((r.status, r.code), (DeliveryStatus::Retriable, Some(429)));
    assert_eq!(r.retry_after, Some(Duration::from_secs(120)));

    let r = deliver("/bad").await;
    assert_eq!((r.status, r.code), (DeliveryStatus::Rejected, Some(400)));
    assert_eq!(r.error.unwrap(), format!("HTTP 400 from {}", server.url("/bad")));
    assert_eq!(r.response_excerpt.as_deref(), Some(r#"{"error":"bad payload"}"#));
    assert_eq!(r.retry_after, None);

    let r = deliver("/unavailable").await;
    assert_eq!((r.status, r.code), (DeliveryStatus::Retriable, Some(503)));
    let wait = r.retry_after.unwrap();
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    assert_eq!(r.response_excerpt.unwrap().len(), 1024);

    // No request is ever repeated by following a redirect.
    let moved = server.requests().iter().filter(|c| c.path == "/moved").count();
    assert_eq!(moved, 1);
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_retriable() {
    let server = TestServer::start().await;
    let secret = generate_secret();
    let sink = sink_to(&server.url("/hang"), &secret, true, Duration::from_millis(300));
    let r = sink.deliver(&delivery("msg_1")).await;
    assert_eq!((r.status, r.code), (DeliveryStatus::Retriable, None));
    let e = r.error.unwrap();
    assert_eq!(e, format!("timed out after 300ms waiting for {}", server.url("/hang")));
    assert!(r.latency >= Duration::from_millis(300), "{:?}", r.latency);

    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let sink = sink_to(&format!("http://{addr}/hook"), &secret, true, Duration::from_secs(5));
    let r = sink.deliver(&delivery("msg_1")).await;
    assert_eq!((r.status, r.code), (DeliveryStatus::Retriable, None));
    let e = r.error.unwrap();
    assert!(
        e.starts_with(&format!("could not connect to http://{addr}/hook: ")),
        "{e}"
    );
}

#[tokio::test]
async fn private_destinations_are_rejected_unless_allowed() {
    let server = TestServer::start().await;
    let port = server.addr.port();
    let secret = generate_secret();
    let cases = [
        (format!("http://127.0.0.1:{port}/ok"), "127.0.0.1 is loopback"),
        ("https://10.0.0.5/hook".to_owned(), "10.0.0.5 is private"),
        (format!("http://[::1]:{port}/ok"), "::1 is loopback"),
        // A name goes through the guarded resolver instead of the literal check.
        (format!("http://localhost:{port}/ok"), "is loopback"),
    ];
    for (url, expected) in &cases {
        let sink = sink_to(url, &secret, false, Duration::from_secs(5));
        let r = sink.deliver(&delivery("msg_1")).await;
        assert_eq!((r.status, r.code), (DeliveryStatus::Rejected, None), "{url}: {r:?}");
        let e = r.error.unwrap();
        assert!(e.starts_with(&format!("webhook {url}: address ")), "{e}");
        assert!(e.contains(expected), "{e}");
        assert!(
            e.ends_with("set allow_private_networks = true on the subscription sink to allow it"),
            "{e}"
        );
    }
    assert!(server.requests().is_empty(), "nothing may reach a refused address");
    assert_eq!(
        format!(
            "webhook https://10.0.0.5/hook: address 10.0.0.5 is private; set allow_private_networks = \
             true on the subscription sink to allow it"
        ),
        {
            let sink = sink_to("https://10.0.0.5/hook", &secret, false, Duration::from_secs(5));
            sink.deliver(&delivery("msg_1")).await.error.unwrap()
        }
    );

    let sink = sink_to(
        &format!("http://localhost:{port}/ok"),
        &secret,
        true,
        Duration::from_secs(5),
    );
    let r = sink.deliver(&delivery("msg_1")).await;
    assert_eq!(r.status, DeliveryStatus::Delivered, "{r:?}");
}

/// Real peers: the published Python verifiers (`standardwebhooks`, `svix`) through
/// `scripts/conformance_receiver.py`. Needs python3 (and network the first time `scripts/python-env.sh`
/// builds the venv): `cargo test -p tributary-sinks -- --ignored`.
#[tokio::test]
#[ignore = "needs python3 and the standardwebhooks/svix packages (scripts/python-env.sh)"]
async fn published_verifiers_accept_our_deliveries() {
    use tokio::io::AsyncBufReadExt;
    use tokio::process::Command;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let env = Command::new(root.join("scripts/python-env.sh")).output().await.unwrap();
    assert!(env.status.success(), "{}", String::from_utf8_lossy(&env.stderr));
    let python = String::from_utf8(env.stdout).unwrap().trim().to_owned();

    let receiver_secret = generate_secret();
    let out = std::env::temp_dir().join(format!(
        "tributary-conformance-{}-{}.jsonl",
        std::process::id(),
        Timestamp::now().0
    ));
    let mut child = Command::new(python)
        .arg(root.join("scripts/conformance_receiver.py"))
        .args(["--port", "0", "--secret", &receiver_secret, "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the receiver prints LISTENING within 30 s")
        .unwrap()
        .unwrap();
    let port = first.strip_prefix("LISTENING ").unwrap();
    let url = format!("http://127.0.0.1:{port}/hook");

    // One sink signs with the receiver's secret; the other rotated away from it and still signs with it.
    let plain = sink_to(&url, &receiver_secret, true, Duration::from_secs(10));
    let mut rotated = WebhookConfig::new(&url);
    rotated.allow_private_networks = true;
    rotated.secret = Some(generate_secret());
    rotated.previous_secrets = vec![PreviousSecret {
        secret: receiver_secret.clone(),
        expires_at: Timestamp::now().plus(Duration::from_secs(3600)),
    }];
    let rotated = SinkConfig::Webhook(rotated).build(SinkContext::new("orders")).unwrap();
    for (sink, id) in [(plain, "msg_plain"), (rotated, "msg_rotated")] {
        let r = sink.deliver(&delivery(id)).await;
        assert_eq!((r.status, r.code), (DeliveryStatus::Delivered, Some(204)), "{r:?}");
    }

    let written = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let records: Vec<serde_json::Value> = written.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 2, "{written}");
    for (record, id) in records.iter().zip(["msg_plain", "msg_rotated"]) {
        assert_eq!(record["webhook_id"], id);
        for check in [
            "standardwebhooks_ok",
            "svix_ok",
            "tampered_rejected_by_both",
            "stale_rejected_by_both",
        ] {
            assert_eq!(record[check], true, "{check}: {record}");
        }
        assert_eq!(record["body"]["type"], "order.created");
        assert_eq!(record["body"]["data"]["seq"], 7);
    }
}
