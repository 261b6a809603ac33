//! The handlers.

use crate::ApiError;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use tributary_core::{EventId, StoredEvent};
use tributary_engine::Node;
use tributary_engine::subscription::Control;
use tributary_sources::http::HttpIngestError;

type AppState = Arc<Node>;

/// All routes.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/v1/sources", get(list_sources))
        .route("/v1/sources/{name}/events", post(ingest))
        .route("/v1/sources/{name}/rejects", get(source_rejects))
        .route("/v1/events", get(list_events))
        .route("/v1/events/{id}", get(get_event))
        .route("/v1/subscriptions", get(list_subscriptions))
        .route("/v1/subscriptions/{name}", get(get_subscription))
        .route("/v1/subscriptions/{name}/secret", get(subscription_secret))
        .route("/v1/subscriptions/{name}/pause", post(pause))
        .route("/v1/subscriptions/{name}/resume", post(resume))
        .route("/v1/subscriptions/{name}/dead-letters", get(dead_letters))
        .route("/v1/subscriptions/{name}/attempts/{seq}", get(attempts))
        .with_state(node)
}

fn authorize(node: &Node, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = node.config.node.admin_key.as_deref() else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "no admin key is configured; set [node] admin_key or TRIBUTARY_ADMIN_KEY",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(k) if constant_time_eq(k.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the API key is not valid",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing header Authorization: Bearer <api key>",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn health(State(node): State<AppState>) -> Response {
    let store = match node.store.poisoned() {
        Some(reason) => json!({"status": "down", "reason": reason}),
        None => json!({"status": "ok"}),
    };
    let down = store["status"] == "down";
    let mut subs = serde_json::Map::new();
    for h in node.subscription_list() {
        let name = h.config.name.clone();
        let s = h.status.snapshot();
        let status = if s.paused {
            "paused"
        } else if s.breaker_open {
            "degraded"
        } else {
            "ok"
        };
        subs.insert(name.clone(), json!({"status": status}));
    }
    let body = json!({"status": if down { "down" } else { "ok" }, "components": {"store": store, "subscriptions": subs}});
    let code = if down {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

#[derive(Deserialize)]
struct IngestQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn ingest(
    State(node): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<IngestQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&node, &headers)?;
    let source = node.http_sources.get(&name).ok_or_else(|| {
        ApiError::not_found(format!(
            "no http source named {name:?}; define one under [[sources]] with type = \"http\""
        ))
    })?;
    let limit = source.max_body_bytes();
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "request body exceeds the source's max_body_bytes of {limit}; send smaller batches"
            ),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(too_large());
    }
    let bytes = to_bytes(body, limit).await.map_err(|_| too_large())?;
    match source.ingest(node.store.as_ref(), &bytes, q.dry_run).await {
        Ok(reply) => Ok((StatusCode::ACCEPTED, Json(reply)).into_response()),
        Err(HttpIngestError::Invalid(e)) => {
            let body = json!({"error": {
                "code": "invalid_event",
                "message": e.to_string(),
                "index": e.index,
                "field": e.field,
            }});
            Ok((StatusCode::BAD_REQUEST, Json(body)).into_response())
        }
        Err(HttpIngestError::Store(e)) => Err(e.into()),
    }
}

async fn list_sources(
    State(node): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&node, &headers)?;
    let mut out = Vec::new();
    for s in &node.config.sources {
        let checkpoints = node.store.checkpoints(s.name()).await?;
        out.push(json!({"name": s.name(), "type": s.type_name(), "checkpoints": checkpoints}));
    }
    Ok(Json(json!({"sources": out})))
}

#[derive(Deserialize)]
struct LimitQuery {
    #[serde(default = "default_limit")]
    limit: usize,
    #[serde(default)]
    after: u64,
}

fn default_limit() -> usize {
    100
}

async fn source_rejects(
    State(node): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<LimitQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&node, &headers)?;
    if !node.config.sources.iter().any(|s| s.name() == name) {
        return Err(ApiError::not_found(format!("no source named {name:?}")));
    }
    let rejects = node.store.rejects(&name, q.limit.min(1000)).await?;
    Ok(Json(json!({"rejects": rejects})))
}

fn event_json(e: &StoredEvent) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}

async fn list_events(
    State(node): State<AppState>,
    Query(q): Query<LimitQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&node, &headers)?;
    let events = node
        .store
        .read_from(q.after + 1, q.limit.clamp(1, 1000))
        .await?;
    let next = events.last().map(|e| e.seq);
    Ok(Json(
        json!({"events": events.iter().map(event_json).collect::<Vec<_>>(), "next_after": next}),
    ))
}

async fn get_event(
    State(node): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&node, &headers)?;
    let id: EventId = id
        .parse()
        .map_err(|e| ApiError::bad_request("invalid_id", format!("event id: {e}")))?;
    let event = node
        .store
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no event with id {id}")))?;
    let observations = node.store.observations(&id).await?;
    let mut v = event_json(&event);
    v["observations"] = serde_json::to_value(observations).unwrap_or(Value::Null);
    Ok(Json(v))
}

fn subscription_json(node: &Node, name: &str) -> Option<Value> {
    let h = node.subscription(name)?;
    let s = h.status.snapshot();
    let backlog = node.store.last_seq().saturating_sub(s.cursor);
    Some(json!({
        "name": name,
        "tenant": h.config.tenant,
        "sink": h.sink.describe(),
        "origin": h.origin,
        "ordering": h.config.ordering,
        "filter": h.config.filter,
        "backlog": backlog,
        "status": s,
    }))
}

async fn list_subscriptions(
    State(node): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&node, &headers)?;
    let subs: Vec<Value> = node
        .subscription_list()
        .iter()
        .filter_map(|h| subscription_json(&node, &h.config.name))
        .collect();
    Ok(Json(json!({"subscriptions": subs})))
}

fn no_subscription(name: &str) -> ApiError {
    ApiError::not_found(format!("no subscription named {name:?}"))
}

async fn get_subscription(
    State(node): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&node, &headers)?;
    subscription_json(&node, &name)
        .map(Json)
        .ok_or_else(|| no_subscription(&name))
}

async fn subscription_secret(
    State(node): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&node, &headers)?;
    let h = node
        .subscription(&name)
        .ok_or_else(|| no_subscription(&name))?;
    let tributary_sinks::SinkConfig::Webhook(webhook) = &h.config.sink;
    let secret = match &webhook.secret {
        Some(s) => Some(s.clone()),
        None => {
            node.store
                .get_meta(&format!("subscription/{name}/secret"))
                .await?
        }
    };
    Ok(Json(json!({"subscription": name, "secret": secret})))
}

async fn control(
    node: &Node,
    name: &str,
    headers: &HeaderMap,
    cmd: Control,
) -> Result<Json<Value>, ApiError> {
    authorize(node, headers)?;
    let h = node
        .subscription(name)
        .ok_or_else(|| no_subscription(name))?;
    let requested = format!("{cmd:?}").to_lowercase();
    h.control.send(cmd).await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "worker_stopped",
            "the subscription's worker is not running",
        )
    })?;
    Ok(Json(json!({"subscription": name, "requested": requested})))
}

async fn pause(
    State(node): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    control(&node, &name, &headers, Control::Pause).await
}

async fn resume(
    State(node): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    control(&node, &name, &headers, Control::Resume).await
}

async fn dead_letters(
    State(node): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<LimitQuery>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&node, &headers)?;
    node.subscription(&name)
        .ok_or_else(|| no_subscription(&name))?;
    let dead = node
        .store
        .dead_letters(&name, q.after, q.limit.clamp(1, 1000))
        .await?;
    Ok(Json(json!({"dead_letters": dead})))
}

async fn attempts(
    State(node): State<AppState>,
    Path((name, seq)): Path<(String, u64)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&node, &headers)?;
    node.subscription(&name)
        .ok_or_else(|| no_subscription(&name))?;
    let attempts = node.store.attempts(&name, seq).await?;
    Ok(Json(json!({"seq": seq, "attempts": attempts})))
}
