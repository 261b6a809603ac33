//! `Idempotency-Key` on POST: the same key and request within 24 hours returns the first answer (with
//! `Idempotent-Replayed: true`) instead of running again; the same key with another request is 422.
//!
//! - **Authenticated first.** The layer checks the bearer key before it reads anything of the body and
//!   hands the caller on to the handler. An unauthenticated request is answered 401 here and leaves no
//!   trace; a revoked key is refused before any stored answer could be replayed to it.
//! - **Per credential.** Records are catalog records ([`RecordKind::Idempotency`]) named
//!   `{bucket}/{credential}/{sha256(key)}`, where the
//!   credential is `admin` or `key-{id}` of a tenant key and the bucket is the 6-hour slot of the first
//!   answer. A lookup reads the 5 newest buckets (24 to 30 hours) and ignores records older than 24 h.
//! - **Nothing buffered.** The request body streams to the handler through a hashing wrapper; the
//!   record keeps sha256(method, path and query, body). When a record exists, the retried body is hashed
//!   as it is read and dropped.
//! - **Only successes are kept** (2xx). A 4xx changed nothing and may be retried with a corrected body.
//! - **No secret at rest.** An answer holding a secret shown once (a new API key, a rotated signing
//!   secret) is not kept: the record says only that the request succeeded, and a retry gets 409
//!   `idempotent_answer_not_kept` instead of the secret. Neither is an answer larger than 1 MiB kept; its
//!   retry gets the same 409 (the request is not run a second time). If keeping the answer fails, the
//!   answer is still returned: a committed write is never answered 5xx.
//! - **Purged.** A sweep every minute deletes the records of buckets older than 24 h, at most 1,000 per
//!   sweep ([`sweep`]); the store keeps a small tombstone of each (its name and version).
//!
//! [`RecordKind::Idempotency`]: tributary_core::RecordKind::Idempotency

use crate::ApiError;
use crate::auth::{self, Authenticated};
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tributary_core::catalog::{Entry, Expect, RecordKind};
use tributary_core::{Store, Timestamp};
use tributary_engine::Node;

const HOUR_MICROS: i64 = 3600 * 1_000_000;
const TTL_MICROS: i64 = 24 * HOUR_MICROS;
const BUCKET_MICROS: i64 = 6 * HOUR_MICROS;
/// Buckets a lookup reads: the current one and the 4 before it cover the last 24 hours.
const LOOKUP_BUCKETS: i64 = 5;
/// Largest answer kept for replay.
pub const MAX_ANSWER: usize = 1024 * 1024;
/// Largest retried body hashed to compare it with the first one.
const MAX_HASHED_BODY: u64 = 64 * 1024 * 1024;
/// Records turned into empty entries per sweep.
const PURGE_PER_SWEEP: usize = 1_000;
const SWEPT_KEY: &str = "idempotency-swept";

/// Marks an answer that holds a secret shown once: the layer does not keep it.
#[derive(Clone, Copy, Debug)]
pub struct SecretAnswer;

#[derive(Serialize, Deserialize)]
struct Stored {
    /// sha256 of method, path and query, and (when the handler read it) the body.
    request: String,
    /// Whether the first handler read the body (only then is the body part of `request`).
    #[serde(default)]
    body_read: bool,
    status: u16,
    /// The answer, when it was kept.
    #[serde(default)]
    body: Option<String>,
    /// Why the answer was not kept: `secret` or `too_large`.
    #[serde(default)]
    not_kept: Option<String>,
    at: Timestamp,
}

fn bucket(t: Timestamp) -> i64 {
    t.0.div_euclid(BUCKET_MICROS)
}

/// What the handler read of the body, hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum BodyHash {
    /// Never polled.
    Unread,
    /// Partly read.
    Partial,
    /// Read to its end: sha256 of its bytes.
    Complete([u8; 32]),
}

struct Hashing {
    inner: Body,
    hasher: Option<Sha256>,
    len: u64,
    limit: u64,
    out: Arc<Mutex<BodyHash>>,
}

impl HttpBody for Hashing {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        {
            let mut out = this.out.lock().expect("hash lock");
            if *out == BodyHash::Unread {
                *out = BodyHash::Partial;
            }
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(h)) = (frame.data_ref(), this.hasher.as_mut()) {
                    this.len += data.len() as u64;
                    h.update(data);
                    if this.len > this.limit {
                        this.hasher = None;
                        return Poll::Ready(Some(Err(axum::Error::new(format!(
                            "body larger than {} bytes",
                            this.limit
                        )))));
                    }
                }
            }
            Poll::Ready(None) => {
                if let Some(h) = this.hasher.take() {
                    *this.out.lock().expect("hash lock") = BodyHash::Complete(h.finalize().into());
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn hashing(body: Body, limit: u64) -> (Body, Arc<Mutex<BodyHash>>) {
    let out = Arc::new(Mutex::new(BodyHash::Unread));
    let body = Body::new(Hashing {
        inner: body,
        hasher: Some(Sha256::new()),
        len: 0,
        limit,
        out: out.clone(),
    });
    (body, out)
}

fn fingerprint(method: &Method, target: &str, body: Option<&[u8; 32]>) -> String {
    let mut h = Sha256::new();
    for part in [method.as_str().as_bytes(), target.as_bytes()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    if let Some(b) = body {
        h.update(b"body");
        h.update(b);
    }
    hex::encode(h.finalize())
}

fn invalid_key(message: &str) -> Response {
    ApiError::bad_request("invalid_idempotency_key", message).into_response()
}

/// The middleware.
pub async fn layer(State(node): State<Arc<Node>>, mut req: Request, next: Next) -> Response {
    let Some(raw) = req.headers().get("idempotency-key") else {
        return next.run(req).await;
    };
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Ok(key) = raw.to_str().map(str::to_owned) else {
        return invalid_key(
            "Idempotency-Key: expected visible ASCII characters (letters, digits, punctuation); encode other text, for example as hex",
        );
    };
    if key.is_empty() || key.len() > 255 {
        return invalid_key("Idempotency-Key: expected 1 to 255 characters");
    }
    let caller = match auth::authenticate(&node, req.headers()).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let suffix = format!("{}/{}", caller.credential, hex::encode(Sha256::digest(key.as_bytes())));
    req.extensions_mut().insert::<Authenticated>(caller);
    // One request per key at a time: a second one while the first runs gets 409.
    let Some(_in_flight) = InFlight::claim(&suffix) else {
        return ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is still running; retry when it has answered",
        )
        .into_response();
    };
    let now = Timestamp::now();
    let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
    let method = req.method().clone();
    match find(node.store.as_ref(), &suffix, now).await {
        Ok(Some(stored)) => return replay(stored, req, &method, &target).await,
        Ok(None) => {}
        Err(e) => return e.into_response(),
    }
    let (parts, body) = req.into_parts();
    let (body, hash) = hashing(body, u64::MAX);
    let resp = next.run(Request::from_parts(parts, body)).await;
    if !resp.status().is_success() {
        return resp;
    }
    let read = hash.lock().expect("hash lock").clone();
    let (request, body_read) = match &read {
        BodyHash::Unread => (fingerprint(&method, &target, None), false),
        BodyHash::Complete(h) => (fingerprint(&method, &target, Some(h)), true),
        BodyHash::Partial => {
            tracing::debug!(%target, "answered 2xx without reading the whole body; not kept for Idempotency-Key");
            return resp;
        }
    };
    let secret = resp.extensions().get::<SecretAnswer>().is_some();
    let status = resp.status();
    let (parts, body) = resp.into_parts();
    let answer = match to_bytes(body, usize::MAX).await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "could not read an answer to keep it for Idempotency-Key");
            return Response::from_parts(parts, Body::empty());
        }
    };
    let not_kept = if secret {
        Some("secret")
    } else if answer.len() > MAX_ANSWER {
        Some("too_large")
    } else {
        None
    };
    let stored = Stored {
        request,
        body_read,
        status: status.as_u16(),
        body: not_kept
            .is_none()
            .then(|| String::from_utf8_lossy(&answer).into_owned()),
        not_kept: not_kept.map(str::to_owned),
        at: now,
    };
    let name = format!("{}/{suffix}", bucket(now));
    let json = serde_json::to_string(&stored).expect("serializes");
    match node
        .store
        .compare_and_set(RecordKind::Idempotency, &name, Expect::Absent, Some(&json))
        .await
    {
        Ok(Ok(_)) => {}
        // Another node sharing the store answered the same key first: its answer is the one kept.
        Ok(Err(_)) => tracing::info!("an answer for this Idempotency-Key was kept already; keeping that one"),
        // The request is done: its answer goes out even though a retry will run it again.
        Err(e) => tracing::warn!(error = %e, "could not keep an answer for Idempotency-Key; a retry will run again"),
    }
    Response::from_parts(parts, Body::from(answer))
}

/// The newest record younger than 24 h for this credential and key.
async fn find(store: &dyn Store, suffix: &str, now: Timestamp) -> Result<Option<Stored>, ApiError> {
    let current = bucket(now);
    for b in (current - LOOKUP_BUCKETS + 1..=current).rev() {
        let Some(raw) = store.record(RecordKind::Idempotency, &format!("{b}/{suffix}")).await? else {
            continue;
        };
        if let Ok(stored) = serde_json::from_str::<Stored>(&raw.value)
            && now.0 - stored.at.0 < TTL_MICROS
        {
            return Ok(Some(stored));
        }
    }
    Ok(None)
}

async fn replay(stored: Stored, req: Request, method: &Method, target: &str) -> Response {
    let request = if stored.body_read {
        let (body, hash) = hashing(req.into_body(), MAX_HASHED_BODY);
        if to_sink(body).await.is_err() {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body: more than {MAX_HASHED_BODY} bytes; send a smaller request"),
            )
            .into_response();
        }
        let read = hash.lock().expect("hash lock").clone();
        match read {
            BodyHash::Complete(h) => fingerprint(method, target, Some(&h)),
            _ => String::new(),
        }
    } else {
        fingerprint(method, target, None)
    };
    if request != stored.request {
        return ApiError::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was used with another request in the last 24 hours; use a new key",
        )
        .into_response();
    }
    let Some(body) = stored.body else {
        let why = match stored.not_kept.as_deref() {
            Some("secret") => "its answer held a secret that is shown only once and never stored",
            _ => {
                "its answer was larger than 1 MiB and was not kept (for ingest, POST the same body with ?dry_run=true to get its ids without storing anything)"
            }
        };
        return ApiError::new(
            StatusCode::CONFLICT,
            "idempotent_answer_not_kept",
            format!(
                "the first request with this Idempotency-Key succeeded ({}) and is not run again, but {why}; use a new key to make a new request",
                stored.status
            ),
        )
        .into_response();
    };
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

/// Reads a body to its end, dropping every chunk.
async fn to_sink(mut body: Body) -> Result<(), axum::Error> {
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        frame?;
    }
    Ok(())
}

/// Purges records older than 24 h: every minute until `shutdown`, the buckets that are wholly older than
/// 24 h (tracked in the state entry `idempotency-swept`) lose at most 1,000 records. On the first run it
/// also deletes records of the layout before buckets (which could hold API keys).
pub async fn sweep(node: Arc<Node>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if node.store.poisoned().is_some() {
            continue;
        }
        match sweep_once(&node.store, Timestamp::now(), PURGE_PER_SWEEP).await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "purged idempotency records older than 24 h"),
            Err(error) => tracing::warn!(%error, "could not purge idempotency records; retrying in a minute"),
        }
    }
}

/// One sweep; returns how many records it emptied.
async fn sweep_once(
    store: &Arc<dyn Store>,
    now: Timestamp,
    budget: usize,
) -> Result<usize, tributary_core::StoreError> {
    let newest_old = bucket(now) - LOOKUP_BUCKETS;
    let mut purged = 0;
    let swept = match store.get_meta(SWEPT_KEY).await? {
        Some(s) => s.parse::<i64>().unwrap_or(newest_old - 1),
        None => {
            // First sweep on this store: records of the old layout ({caller}/{hash}, no bucket).
            let legacy: Vec<(String, u64)> = live(store, "")
                .await?
                .into_iter()
                .filter(|(k, _)| k.split('/').count() == 2)
                .collect();
            purged += empty_all(store, legacy).await?;
            // A week back covers any bucket a node could have written before.
            newest_old - 4 * 7
        }
    };
    let mut done = swept;
    for b in swept + 1..=newest_old {
        let live = live(store, &format!("{b}/")).await?;
        let room = budget.saturating_sub(purged);
        let all = live.len() <= room;
        purged += empty_all(store, live.into_iter().take(room).collect()).await?;
        if !all {
            break;
        }
        done = b;
    }
    if done != swept || store.get_meta(SWEPT_KEY).await?.is_none() {
        store.put_meta(SWEPT_KEY, &done.to_string()).await?;
    }
    Ok(purged)
}

/// The names and versions of the idempotency records under `prefix` (an unreadable one included: it is
/// purged like the others once its bucket is old).
async fn live(store: &Arc<dyn Store>, prefix: &str) -> Result<Vec<(String, u64)>, tributary_core::StoreError> {
    let mut out = Vec::new();
    for entry in store.records(RecordKind::Idempotency, prefix).await? {
        match entry {
            Entry::Ok { name, record } => out.push((name, record.version)),
            Entry::Broken { name, error } => {
                tracing::warn!(%name, %error, "an idempotency record cannot be read back; it is overwritten by the purge");
                out.push((name, 0));
            }
        }
    }
    Ok(out)
}

/// Deletes these records, 64 at a time so that their synced writes share commits.
async fn empty_all(store: &Arc<dyn Store>, keys: Vec<(String, u64)>) -> Result<usize, tributary_core::StoreError> {
    let n = keys.len();
    for chunk in keys.chunks(64) {
        let mut set = tokio::task::JoinSet::new();
        for (k, version) in chunk {
            let (store, k, version) = (store.clone(), k.clone(), *version);
            set.spawn(async move {
                let expect = if version == 0 {
                    Expect::Any
                } else {
                    Expect::Version(version)
                };
                // A conflict means the record changed or went meanwhile: nothing to purge.
                store
                    .compare_and_set(RecordKind::Idempotency, &k, expect, None)
                    .await
                    .map(|_| ())
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("a purge task panicked")?;
        }
    }
    Ok(n)
}

/// Keys whose first request is running in this process.
static IN_FLIGHT: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::LazyLock::new(Default::default);

struct InFlight(String);

impl InFlight {
    fn claim(key: &str) -> Option<Self> {
        IN_FLIGHT
            .lock()
            .expect("in-flight lock")
            .insert(key.to_owned())
            .then(|| Self(key.to_owned()))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.lock().expect("in-flight lock").remove(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_store::MemoryStore;

    fn record(at: Timestamp) -> String {
        serde_json::to_string(&Stored {
            request: "r".into(),
            body_read: true,
            status: 202,
            body: Some("{}".into()),
            not_kept: None,
            at,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn lookups_see_24_hours_and_sweeps_purge_older_buckets_within_budget() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let now = Timestamp(1_800_000_000_000_000);
        let at = |hours_ago: i64| Timestamp(now.0 - hours_ago * HOUR_MICROS);
        let put = |name: String, value: String| {
            let store = store.clone();
            async move {
                let set = store.compare_and_set(RecordKind::Idempotency, &name, Expect::Absent, Some(&value));
                set.await.unwrap().unwrap();
            }
        };
        for (i, h) in [1, 23, 25, 40, 40, 40].into_iter().enumerate() {
            let t = at(h);
            put(format!("{}/admin/k{i}", bucket(t)), record(t)).await;
        }
        put("0123456789abcdef/ffff".into(), "{\"legacy\":1}".into()).await;
        assert!(
            find(store.as_ref(), "admin/k1", now).await.unwrap().is_some(),
            "23 h old"
        );
        assert!(
            find(store.as_ref(), "admin/k2", now).await.unwrap().is_none(),
            "25 h old"
        );
        // Budget 2: the legacy record and one of the 40-hour-old ones first.
        assert_eq!(sweep_once(&store, now, 2).await.unwrap(), 2);
        let legacy = store
            .record(RecordKind::Idempotency, "0123456789abcdef/ffff")
            .await
            .unwrap();
        assert_eq!(legacy, None);
        let live =
            |store: Arc<dyn Store>| async move { store.records(RecordKind::Idempotency, "").await.unwrap().len() };
        assert_eq!(live(store.clone()).await, 5);
        while sweep_once(&store, now, 2).await.unwrap() > 0 {}
        // Left: the records of the last 24 hours and those of the bucket that still holds some (25 h).
        let left = live(store.clone()).await;
        assert!((2..=3).contains(&left), "{left}");
        assert!(find(store.as_ref(), "admin/k0", now).await.unwrap().is_some());
        assert!(find(store.as_ref(), "admin/k1", now).await.unwrap().is_some());
    }
}
