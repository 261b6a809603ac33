//! `/v1/events`: the durable log, in sequence order, with filters and cursor paging.

use super::Err;
use crate::ApiError;
use crate::auth::Principal;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tributary_core::{EventId, FilterConfig, Observation, StoredEvent, Timestamp};
use tributary_engine::Node;
use tributary_plugin::{Path, Query};
use utoipa::{IntoParams, ToSchema};

/// How many log entries one listing call looks at, at most.
const SCAN_BUDGET: usize = 10_000;

/// Filters and paging of the event list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Events after this sequence number (exclusive). Pass the previous answer's `next_after`.
    #[serde(default)]
    pub after: u64,
    /// At most this many events (1–1000). Default 100.
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// Kind pattern (`ln.*`, `orders.created`, `*`).
    pub kind: Option<String>,
    /// Source name.
    pub source: Option<String>,
    /// Event key.
    pub key: Option<String>,
    /// Ingested at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Ingested before this time (RFC 3339).
    pub until: Option<String>,
}

fn default_limit() -> usize {
    100
}

/// A page of events.
#[derive(Serialize, ToSchema)]
pub struct EventPage {
    /// Matching events in sequence order.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<StoredEvent>,
    /// Pass as `after` to continue: every event up to here was looked at (matching or not), so paging
    /// never skips or repeats one, even while new events arrive.
    pub next_after: u64,
    /// The highest sequence number in the log now (start a live tail after it).
    pub last_seq: u64,
}

fn time(field: &str, v: &Option<String>) -> Result<Option<Timestamp>, ApiError> {
    v.as_deref()
        .map(|s| {
            Timestamp::parse_rfc3339(s).map_err(|m| ApiError::bad_request("invalid_query", format!("{field}: {m}")))
        })
        .transpose()
}

/// Events in sequence order, filtered.
#[utoipa::path(get, path = "/v1/events", tag = "events", security(("bearer" = [])),
    params(EventQuery),
    responses((status = 200, body = EventPage), (status = 400, body = Err), (status = 401, body = Err)))]
pub async fn list_events(
    State(node): State<Arc<Node>>,
    p: Principal,
    Query(q): Query<EventQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let filter = FilterConfig {
        kinds: q.kind.iter().cloned().collect(),
        sources: q.source.iter().cloned().collect(),
        keys: q.key.iter().cloned().collect(),
        predicates: Vec::new(),
        // Who may see what is `sees_event`'s decision below.
        tenant: None,
    }
    .compile()
    .map_err(|e| {
        ApiError::bad_request(
            "invalid_query",
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
                .replace("kinds[0]", "kind"),
        )
    })?;
    let (since, until) = (time("since", &q.since)?, time("until", &q.until)?);
    let limit = q.limit.clamp(1, 1000);
    let mut events = Vec::new();
    let mut next_after = q.after;
    let mut scanned = 0;
    while events.len() < limit && scanned < SCAN_BUDGET {
        let page = node.store.read_from(next_after + 1, 500).await?;
        if page.is_empty() {
            break;
        }
        for e in page {
            scanned += 1;
            next_after = e.seq;
            let in_time = since.is_none_or(|t| e.ingested_at >= t) && until.is_none_or(|t| e.ingested_at < t);
            if in_time && filter.matches(&e) && p.sees_event(&node, &e) {
                events.push(e);
                if events.len() >= limit {
                    break;
                }
            }
        }
    }
    Ok(Json(EventPage {
        events,
        next_after,
        last_seq: node.store.last_seq(),
    }))
}

/// An event with who saw it.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    /// The event.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub event: StoredEvent,
    /// Who saw it and when.
    #[schema(value_type = Vec<Object>)]
    pub observations: Vec<Observation>,
}

/// Which source's event, when several sources have one with the same id.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetEventQuery {
    /// The source. Default: the earliest stored of the sources the caller may read.
    pub source: Option<String>,
}

/// One event by id, with its observations. Ids are unique per source (ADR 0005): without `source`, the
/// earliest stored event with this id among the sources the caller may read.
#[utoipa::path(get, path = "/v1/events/{id}", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "64 lowercase hex characters"), GetEventQuery),
    responses((status = 200, body = EventView), (status = 400, body = Err), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn get_event(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<GetEventQuery>,
) -> Result<Json<EventView>, ApiError> {
    let id: EventId = id
        .parse()
        .map_err(|e| ApiError::bad_request("invalid_id", format!("event id: {e}")))?;
    let not_found = || ApiError::not_found(format!("no event with id {id}"));
    let mut found: Option<StoredEvent> = None;
    for source in node.sources.keys() {
        if q.source.as_ref().is_some_and(|s| s != source) || !p.sees_source(&node, source) {
            continue;
        }
        if let Some(e) = node.store.get(source, &id).await?
            && p.sees_event(&node, &e)
            && found.as_ref().is_none_or(|f| e.seq < f.seq)
        {
            found = Some(e);
        }
    }
    let event = found.ok_or_else(not_found)?;
    let observations = node.store.observations(&event.source, &id).await?;
    Ok(Json(EventView { event, observations }))
}
