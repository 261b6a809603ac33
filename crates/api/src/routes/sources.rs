//! `/v1/sources`: status, the http source's ingest endpoint, rejects.

use super::Err;
use crate::ApiError;
use crate::auth::Principal;
use axum::Extension;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tributary_core::store::Checkpoint;
use tributary_engine::Node;
use tributary_engine::source_status::SourceSnapshot;
use tributary_plugin::{Path, Query};
use tributary_sources::http::{HttpIngestError, MemoryBudget, Refusal, Reservation};
use tributary_sources::json_event::ItemError;
use utoipa::{IntoParams, ToSchema};

/// A source and its status.
#[derive(Serialize, ToSchema)]
pub struct SourceView {
    /// Its name.
    pub name: String,
    /// Its type (`http`, `file`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its checkpoints, by partition.
    #[schema(value_type = Vec<Object>)]
    pub checkpoints: Vec<Checkpoint>,
    /// Live status: connected, last event time, events/s, errors, stalled.
    #[schema(value_type = Object)]
    pub status: SourceSnapshot,
    /// What the source reports about each of its parts (an `evm` source: each provider's head, lag
    /// and errors), by part; empty for sources without parts.
    #[schema(value_type = Object)]
    pub parts: std::collections::BTreeMap<String, serde_json::Value>,
    /// The current problems of its parts, by part (each also makes the source `degraded` in `/health`).
    pub problems: std::collections::BTreeMap<String, String>,
}

/// The list.
#[derive(Serialize, ToSchema)]
pub struct SourceList {
    /// The sources the caller may see.
    pub sources: Vec<SourceView>,
}

async fn view(node: &Node, name: &str) -> Result<SourceView, ApiError> {
    let s = node
        .sources
        .get(name)
        .ok_or_else(|| ApiError::not_found(format!("no source named {name:?}")))?;
    Ok(SourceView {
        name: name.to_owned(),
        kind: s.config.type_name().to_owned(),
        checkpoints: node.store.checkpoints(name).await?,
        status: s.status.snapshot(s.config.stall_after()),
        parts: s.report.details(),
        problems: s.report.problems(),
    })
}

/// Sources the caller may see, with their status.
#[utoipa::path(get, path = "/v1/sources", tag = "sources", security(("bearer" = [])),
    responses((status = 200, body = SourceList), (status = 401, body = Err)))]
pub async fn list_sources(State(node): State<Arc<Node>>, p: Principal) -> Result<Json<SourceList>, ApiError> {
    let mut sources = Vec::new();
    for name in node.sources.keys() {
        if p.sees_source(&node, name) {
            sources.push(view(&node, name).await?);
        }
    }
    Ok(Json(SourceList { sources }))
}

/// One source's status.
#[utoipa::path(get, path = "/v1/sources/{name}", tag = "sources", security(("bearer" = [])),
    params(("name" = String, Path, description = "source name")),
    responses((status = 200, body = SourceView), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn get_source(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<Json<SourceView>, ApiError> {
    if !p.sees_source(&node, &name) {
        return Err(ApiError::not_found(format!("no source named {name:?}")));
    }
    Ok(Json(view(&node, &name).await?))
}

/// Options of the ingest endpoint.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IngestQuery {
    /// Validate and compute ids without storing anything.
    #[serde(default)]
    pub dry_run: bool,
}

/// The answer to an accepted batch.
#[derive(Serialize, ToSchema)]
pub struct IngestAccepted {
    /// New events stored.
    pub accepted: usize,
    /// Events known already (an observation was added).
    pub duplicates: usize,
    /// The id of every event, in request order.
    pub ids: Vec<String>,
}

/// Posts events to an `http` source: one JSON event or an array. Answers 202 once the batch is durable.
#[utoipa::path(post, path = "/v1/sources/{name}/events", tag = "sources", security(("bearer" = [])),
    params(("name" = String, Path, description = "http source name"), IngestQuery),
    request_body(content = Object, description = "one event `{kind, data, id?, key?, occurred_at?}` or an array of them, with `Content-Type: application/json`"),
    responses(
        (status = 202, body = IngestAccepted, description = "durable"),
        (status = 400, body = Err, description = "a malformed event: the message names its index and field"),
        (status = 401, body = Err), (status = 404, body = Err),
        (status = 413, body = Err, description = "over a limit of the source (body, events per request, `data`, `key` or `kind` length) or of the node's ingest memory; the message names it"),
        (status = 415, body = Err, description = "Content-Type is missing or not application/json"),
        (status = 422, body = Err, description = "Idempotency-Key reused with another body"),
        (status = 429, body = Err, description = "the node's ingest memory is in use by other requests; retry after Retry-After seconds"),
        (status = 503, body = Err, description = "the store cannot write")))]
pub async fn ingest(
    State(node): State<Arc<Node>>,
    Extension(budget): Extension<Arc<MemoryBudget>>,
    p: Principal,
    Path(name): Path<String>,
    Query(q): Query<IngestQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let handle = node.sources.get(&name).filter(|_| p.sees_source(&node, &name));
    let Some((source, store)) = handle.and_then(|h| h.push.as_ref().map(|s| (s.clone(), h.store.clone()))) else {
        return Err(ApiError::not_found(format!(
            "no http source named {name:?}; define one under [[sources]] with type = \"http\""
        )));
    };
    check_content_type(&headers)?;
    let limit = source.max_body_bytes();
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds the source's max_body_bytes of {limit}; send smaller batches"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut reservation = budget.reservation();
    let bytes = read_body(body, limit, declared, &mut reservation, &budget)
        .await
        .map_err(|e| e.unwrap_or_else(too_large))?;
    // Parsing a large body takes milliseconds of CPU: off the async runtime.
    let parser = source.clone();
    let (parsed, bytes, reservation) = tokio::task::spawn_blocking(move || {
        let parsed = parser.parse(&bytes, &mut reservation);
        (parsed, bytes, reservation)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("ingest parser failed: {e}"),
        )
    })?;
    // The body's share of the reservation stays held: the store's encoded records take about as much.
    drop(bytes);
    let result = match parsed {
        Ok(events) => source.append(store.as_ref(), events, q.dry_run).await,
        Err(e) => Err(e),
    };
    let answer = match result {
        Ok(reply) => Ok((StatusCode::ACCEPTED, Json(reply)).into_response()),
        Err(HttpIngestError::Invalid(e)) => Err(item_error(StatusCode::BAD_REQUEST, "invalid_event", e)),
        Err(HttpIngestError::TooLarge(e)) => Err(item_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e)),
        Err(HttpIngestError::OverBudget(r)) => Err(refused(r, &budget, reservation.held())),
        Err(HttpIngestError::Store(e)) => Err(e.into()),
    };
    drop(reservation);
    answer
}

fn item_error(status: StatusCode, code: &'static str, e: ItemError) -> ApiError {
    let mut err = ApiError::new(status, code, e.to_string());
    let mut extra = serde_json::Map::new();
    extra.insert("index".into(), serde_json::json!(e.index));
    extra.insert("field".into(), serde_json::json!(e.field));
    err.extra = Some(extra);
    err
}

/// 415 unless the body is declared as JSON (`application/json`, parameters allowed, or `application/*+json`).
/// A missing Content-Type is refused too: `curl -d` sends `application/x-www-form-urlencoded`.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let essence = given
        .map(|g| g.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    if essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json")) {
        return Ok(());
    }
    let got = match given {
        None => "no Content-Type".to_owned(),
        Some(g) => format!("Content-Type {g:?}"),
    };
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "expected a JSON body with Content-Type: application/json, got {got} (with curl, add -H 'Content-Type: application/json')"
        ),
    ))
}

/// 429 (with Retry-After) or 413 for a reservation the ingest memory budget refused.
fn refused(r: Refusal, budget: &MemoryBudget, held: usize) -> ApiError {
    let limit = budget.limit();
    let mut e = match r {
        Refusal::Busy => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "ingest_busy",
            format!(
                "the node's ingest memory ([node] max_ingest_in_flight_bytes = {limit}) is in use by other requests; retry after {RETRY_AFTER_S} s or send smaller batches"
            ),
        ),
        Refusal::TooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "this request needs more than {held} bytes of memory while it is ingested (body and decoded events), over the node's max_ingest_in_flight_bytes of {limit}; send smaller batches"
            ),
        ),
    };
    if r == Refusal::Busy {
        e.retry_after = Some(RETRY_AFTER_S);
    }
    e
}

const RETRY_AFTER_S: u64 = 1;

/// Reads the body, reserving each chunk in the budget first. `Err(None)` is over `limit` (413).
async fn read_body(
    mut body: Body,
    limit: usize,
    declared: Option<usize>,
    reservation: &mut Reservation,
    budget: &MemoryBudget,
) -> Result<Vec<u8>, Option<ApiError>> {
    use http_body::Body as _;
    if let Some(len) = declared {
        reservation.grow(len).map_err(|r| Some(refused(r, budget, len)))?;
    }
    let mut out = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| Some(ApiError::bad_request("invalid_body", format!("body: {e}"))))?;
        let Ok(data) = frame.into_data() else { continue };
        if out.len() + data.len() > limit {
            return Err(None);
        }
        let beyond = (out.len() + data.len()).saturating_sub(reservation.held());
        if beyond > 0 {
            reservation
                .grow(beyond)
                .map_err(|r| Some(refused(r, budget, out.len() + data.len())))?;
        }
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// Rejected input of a source.
#[derive(Serialize, ToSchema)]
pub struct RejectList {
    /// Newest last.
    #[schema(value_type = Vec<Object>)]
    pub rejects: Vec<tributary_core::Reject>,
}

/// Limit of the rejects listing.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RejectQuery {
    /// At most this many, newest last (1–1000). Default 100.
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    100
}

/// Input the source could not turn into events, newest last, with the reason and position. A tenant sees
/// the excerpt of the input only for a source shared with it alone.
#[utoipa::path(get, path = "/v1/sources/{name}/rejects", tag = "sources", security(("bearer" = [])),
    params(("name" = String, Path, description = "source name"), RejectQuery),
    responses((status = 200, body = RejectList), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn source_rejects(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
    Query(q): Query<RejectQuery>,
) -> Result<Json<RejectList>, ApiError> {
    if !node.sources.contains_key(&name) || !p.sees_source(&node, &name) {
        return Err(ApiError::not_found(format!("no source named {name:?}")));
    }
    let mut rejects = node.store.rejects(&name, q.limit.clamp(1, 1000)).await?;
    // A source shared with several tenants may reject one tenant's input (an outbox row with its tenant
    // column): another tenant sees where and why, not the input itself.
    if let Principal::Tenant(t) = &p
        && node
            .sources
            .get(&name)
            .is_some_and(|s| !matches!(s.config.tenants(), [only] if only == t))
    {
        for r in &mut rejects {
            r.excerpt.clear();
        }
    }
    Ok(Json(RejectList { rejects }))
}
