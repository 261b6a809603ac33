//! `Idempotency-Key` on POST: the same key and body within 24 hours returns the first answer (with
//! `Idempotent-Replayed: true`); the same key with another body is 422. Answers are kept in the store,
//! per caller (keyed by a hash of its `Authorization` header), so they survive restarts.

use crate::ApiError;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tributary_core::Timestamp;
use tributary_engine::Node;

const TTL_MICROS: i64 = 24 * 3600 * 1_000_000;
const MAX_BODY: usize = 64 * 1024 * 1024;
const MAX_ANSWER: usize = 1024 * 1024;

#[derive(Serialize, Deserialize)]
struct Stored {
    request: String,
    status: u16,
    body: String,
    at: Timestamp,
}

fn hex_sha(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// The middleware.
pub async fn layer(State(node): State<Arc<Node>>, req: Request, next: Next) -> Response {
    let Some(key) = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(req).await;
    };
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    if key.is_empty() || key.len() > 255 {
        return ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key: expected 1 to 255 characters",
        )
        .into_response();
    }
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "request body too large",
        )
        .into_response();
    };
    let caller = &hex_sha(&[&auth])[..16];
    let meta_key = format!("idempotency/{caller}/{}", hex_sha(&[key.as_bytes()]));
    let target = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let fingerprint = hex_sha(&[parts.method.as_str().as_bytes(), target.as_bytes(), &bytes]);
    // One request per key at a time: a second one while the first runs gets 409.
    let Some(_in_flight) = InFlight::claim(&meta_key) else {
        return ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_use",
            "a request with this Idempotency-Key is still running; retry when it has answered",
        )
        .into_response();
    };
    let now = Timestamp::now();
    match node.store.get_meta(&meta_key).await {
        Ok(Some(raw)) => {
            if let Ok(stored) = serde_json::from_str::<Stored>(&raw)
                && now.0 - stored.at.0 < TTL_MICROS
            {
                if stored.request != fingerprint {
                    return ApiError::unprocessable(
                        "idempotency_key_reused",
                        "this Idempotency-Key was used with another request in the last 24 hours; use a new key",
                    )
                    .into_response();
                }
                let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
                let mut resp = (status, stored.body).into_response();
                resp.headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/json"));
                resp.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                return resp;
            }
        }
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }
    let resp = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let status = resp.status();
    // Server errors may succeed on retry; answers to unauthenticated callers are not worth keeping.
    if status.is_server_error() || status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(answer) = to_bytes(body, MAX_ANSWER).await else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "answer too large to keep for Idempotency-Key",
        )
        .into_response();
    };
    let stored = Stored {
        request: fingerprint,
        status: status.as_u16(),
        body: String::from_utf8_lossy(&answer).into_owned(),
        at: now,
    };
    if let Err(e) = node
        .store
        .put_meta(&meta_key, &serde_json::to_string(&stored).expect("serializes"))
        .await
    {
        tracing::warn!(error = %e, "could not keep an idempotent answer");
    }
    Response::from_parts(parts, Body::from(answer))
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
