//! `/v1/sources`: status, the http source's ingest endpoint, rejects.

use super::Err;
use crate::ApiError;
use crate::auth::Principal;
use crate::extract::{Path, Query};
use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tributary_core::store::Checkpoint;
use tributary_engine::Node;
use tributary_engine::source_status::SourceSnapshot;
use tributary_sources::http::HttpIngestError;
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
    request_body(content = Object, description = "one event `{kind, data, id?, key?, occurred_at?}` or an array of them"),
    responses(
        (status = 202, body = IngestAccepted, description = "durable"),
        (status = 400, body = Err, description = "a malformed event: the message names its index and field"),
        (status = 401, body = Err), (status = 404, body = Err), (status = 413, body = Err),
        (status = 422, body = Err, description = "Idempotency-Key reused with another body"),
        (status = 503, body = Err, description = "the store cannot write")))]
pub async fn ingest(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
    Query(q): Query<IngestQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let handle = node.sources.get(&name).filter(|_| p.sees_source(&node, &name));
    let Some((source, store)) = handle.and_then(|h| h.push.as_ref().map(|s| (s, h.store.clone()))) else {
        return Err(ApiError::not_found(format!(
            "no http source named {name:?}; define one under [[sources]] with type = \"http\""
        )));
    };
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
    let bytes = to_bytes(body, limit).await.map_err(|_| too_large())?;
    match source.ingest(store.as_ref(), &bytes, q.dry_run).await {
        Ok(reply) => Ok((StatusCode::ACCEPTED, Json(reply)).into_response()),
        Err(HttpIngestError::Invalid(e)) => {
            let mut err = ApiError::bad_request("invalid_event", e.to_string());
            let mut extra = serde_json::Map::new();
            extra.insert("index".into(), serde_json::json!(e.index));
            extra.insert("field".into(), serde_json::json!(e.field));
            err.extra = Some(extra);
            Err(err)
        }
        Err(HttpIngestError::Store(e)) => Err(e.into()),
    }
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

/// Input the source could not turn into events, newest last, with the reason and position.
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
    Ok(Json(RejectList {
        rejects: node.store.rejects(&name, q.limit.clamp(1, 1000)).await?,
    }))
}
