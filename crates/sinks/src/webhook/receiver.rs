//! A webhook receiver that verifies every delivery's Standard Webhooks signature.
//!
//! Used by `tributary demo`, `tributary bench` and the integration tests (through the test kit). It records
//! what arrived (optionally with bodies), counts signatures verified and failed, and answers with a
//! programmable [`Responder`] so tests can make an endpoint fail, slow down or disappear.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tributary_core::Timestamp;

/// One delivery as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The `webhook-id` header.
    pub webhook_id: String,
    /// The event id from the body (`data.id`).
    pub event_id: String,
    /// The event's key from the body (`data.key`).
    pub key: Option<String>,
    /// The event's sequence number from the body (`data.seq`).
    pub seq: u64,
    /// The parsed body (in recorded deliveries).
    pub body: Option<serde_json::Value>,
    /// Whether its signature verified.
    pub verified: bool,
    /// When it arrived.
    pub at: Timestamp,
    /// How many times this `webhook-id` has arrived, this one included.
    pub nth: u32,
    /// The status the receiver answered.
    pub status: u16,
}

/// What the receiver answers: status, optional `Retry-After` seconds, optional delay before answering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After` header, in seconds.
    pub retry_after: Option<u64>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
}

impl Reply {
    /// 204 No Content.
    pub fn ok() -> Self {
        Self {
            status: 204,
            retry_after: None,
            delay: None,
        }
    }
    /// Any status.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            retry_after: None,
            delay: None,
        }
    }
}

/// Decides the answer to each delivery.
pub type Responder = Arc<dyn Fn(&Received) -> Reply + Send + Sync>;

struct Inner {
    secret: Option<String>,
    record: bool,
    received: Mutex<Vec<Received>>,
    seen: Mutex<HashMap<String, u32>>,
    responder: Mutex<Responder>,
    verified: AtomicU64,
    failed: AtomicU64,
    total: AtomicU64,
    notify: Notify,
}

/// A running receiver on `127.0.0.1`.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: CancellationToken,
}

impl Receiver {
    /// Starts a receiver on a free port. With a `secret`, signatures are verified (±5 min tolerance).
    /// `record = true` keeps every request (with its body and the status answered) for [`Self::received`];
    /// `false` keeps only counters and lets the [`Responder`] see each delivery (for long benchmarks).
    pub async fn start(secret: Option<String>, record: bool) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            secret,
            record,
            received: Mutex::new(Vec::new()),
            seen: Mutex::new(HashMap::new()),
            responder: Mutex::new(Arc::new(|_: &Received| Reply::ok())),
            verified: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            total: AtomicU64::new(0),
            notify: Notify::new(),
        });
        let app = Router::new().route("/hook", post(handle)).with_state(inner.clone());
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
        Ok(Self { addr, inner, shutdown })
    }

    /// The URL to deliver to.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Replaces the answer policy.
    pub fn respond_with(&self, responder: impl Fn(&Received) -> Reply + Send + Sync + 'static) {
        *self.inner.responder.lock().expect("responder lock") = Arc::new(responder);
    }

    /// Every request received so far, in arrival order, with the status answered (when recording).
    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().expect("received lock").clone()
    }

    /// Requests received.
    pub fn total(&self) -> u64 {
        self.inner.total.load(Relaxed)
    }

    /// Signatures verified.
    pub fn verified(&self) -> u64 {
        self.inner.verified.load(Relaxed)
    }

    /// Signatures that failed verification.
    pub fn failed(&self) -> u64 {
        self.inner.failed.load(Relaxed)
    }

    /// Distinct `webhook-id`s received.
    pub fn distinct(&self) -> usize {
        self.inner.seen.lock().expect("seen lock").len()
    }

    /// Waits until `pred` holds for the received list, or `timeout` passes. Returns whether it held.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Received]) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.notify.notified();
            if pred(&self.inner.received.lock().expect("received lock")) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return pred(&self.inner.received.lock().expect("received lock"));
            }
        }
    }

    /// Stops listening.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn handle(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let at = Timestamp::now();
    inner.total.fetch_add(1, Relaxed);
    let verified = match &inner.secret {
        Some(secret) => crate::verify_headers(secret, &headers, &body, Duration::from_secs(300), at).is_ok(),
        None => false,
    };
    if inner.secret.is_some() {
        if verified { &inner.verified } else { &inner.failed }.fetch_add(1, Relaxed);
    }
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let data = &parsed["data"];
    let nth = {
        let mut seen = inner.seen.lock().expect("seen lock");
        let n = seen.entry(webhook_id.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let received = Received {
        webhook_id,
        event_id: data["id"].as_str().unwrap_or_default().to_owned(),
        key: data["key"].as_str().map(str::to_owned),
        seq: data["seq"].as_u64().unwrap_or(0),
        body: None,
        verified,
        at,
        nth,
        status: 0,
    };
    let responder = inner.responder.lock().expect("responder lock").clone();
    let reply = responder(&received);
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    if inner.record {
        let mut stored = received;
        stored.status = reply.status;
        stored.body = Some(parsed);
        inner.received.lock().expect("received lock").push(stored);
    }
    inner.notify.notify_waiters();
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = status.into_response();
    if let Some(ra) = reply.retry_after
        && let Ok(v) = HeaderValue::from_str(&ra.to_string())
    {
        resp.headers_mut().insert("retry-after", v);
    }
    resp
}
