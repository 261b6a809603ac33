//! `/v1/subscriptions/{name}/deliveries`, `.../attempts/{seq}` and `.../replay`: a subscription's delivery
//! history, and delivering a range of the log to it again.

use super::subscriptions::{internal, visible};
use super::{Err, Page};
use crate::ApiError;
use crate::auth::Principal;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tributary_core::store::AttemptRecord;
use tributary_core::{Seq, Timestamp};
use tributary_engine::Node;
use tributary_plugin::{Path, Query};
use utoipa::ToSchema;

/// One event's delivery with every attempt.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    /// The event's sequence number.
    pub seq: u64,
    /// Every attempt: time, outcome, status, latency, error.
    #[schema(value_type = Vec<Object>)]
    pub attempts: Vec<AttemptRecord>,
}

/// A page of deliveries.
#[derive(Serialize, ToSchema)]
pub struct DeliveryPage {
    /// In sequence order.
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `after` to continue.
    pub next_after: Option<u64>,
}

/// Deliveries of a subscription, each with every attempt.
#[utoipa::path(get, path = "/v1/subscriptions/{name}/deliveries", tag = "subscriptions", security(("bearer" = [])),
    params(("name" = String, Path), Page),
    responses((status = 200, body = DeliveryPage), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn deliveries(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
    Query(page): Query<Page>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let name = internal(&node, &p, &name);
    visible(&node, &p, &name)?;
    let limit = page.limit();
    let fetch = limit * 8 + 8;
    let attempts = node.store.attempts_from(&name, page.after + 1, fetch).await?;
    let truncated = attempts.len() == fetch;
    let mut deliveries: Vec<DeliveryView> = Vec::new();
    for a in attempts {
        let full = deliveries.len() == limit;
        match deliveries.last_mut() {
            Some(d) if d.seq == a.seq => d.attempts.push(a),
            _ if full => break,
            _ => deliveries.push(DeliveryView {
                seq: a.seq,
                attempts: vec![a],
            }),
        }
    }
    // When the read stopped mid-way, the last delivery may miss attempts: leave it for the next page.
    if truncated && deliveries.len() > 1 {
        deliveries.pop();
    }
    let next_after = (truncated || deliveries.len() == limit)
        .then(|| deliveries.last().map(|d| d.seq))
        .flatten();
    Ok(Json(DeliveryPage { deliveries, next_after }))
}

/// Attempts for one event.
#[derive(Serialize, ToSchema)]
pub struct AttemptList {
    /// The event's sequence number.
    pub seq: u64,
    /// Every attempt.
    #[schema(value_type = Vec<Object>)]
    pub attempts: Vec<AttemptRecord>,
}

/// Every attempt to deliver one event to this subscription.
#[utoipa::path(get, path = "/v1/subscriptions/{name}/attempts/{seq}", tag = "subscriptions", security(("bearer" = [])),
    params(("name" = String, Path), ("seq" = u64, Path)),
    responses((status = 200, body = AttemptList), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn attempts(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path((name, seq)): Path<(String, u64)>,
) -> Result<Json<AttemptList>, ApiError> {
    let name = internal(&node, &p, &name);
    visible(&node, &p, &name)?;
    Ok(Json(AttemptList {
        seq,
        attempts: node.store.attempts(&name, seq).await?,
    }))
}

/// A range of the log to deliver again.
#[derive(Deserialize, ToSchema, Default)]
pub struct ReplayRequest {
    /// First sequence number (inclusive).
    pub from_seq: Option<u64>,
    /// Last sequence number (inclusive).
    pub to_seq: Option<u64>,
    /// Ingested at or after (RFC 3339).
    pub since: Option<String>,
    /// Ingested before (RFC 3339).
    pub until: Option<String>,
    /// Count without acting.
    #[serde(default)]
    pub dry_run: bool,
}

/// How many events a replay matched and queued.
#[derive(Serialize, ToSchema)]
pub struct ReplayResult {
    /// Events in range that match the subscription's filter.
    pub matched: usize,
    /// Events queued for delivery (0 on a dry run).
    pub requeued: usize,
    /// Whether nothing was done.
    pub dry_run: bool,
    /// Set when the range was not finished: one request reads at most 1,000,000 events of the log. Call
    /// again with `from_seq` = this (and the same other fields) for the rest.
    pub next_from_seq: Option<u64>,
}

/// Most events one replay may queue.
const MAX_REPLAY: usize = 1_000_000;
/// Most log entries one replay request reads.
const REPLAY_SCAN: usize = 1_000_000;

/// Re-delivers a sequence or time range of the log to one subscription (events matching its filter).
#[utoipa::path(post, path = "/v1/subscriptions/{name}/replay", tag = "subscriptions", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = ReplayRequest,
    responses((status = 200, body = ReplayResult), (status = 400, body = Err), (status = 401, body = Err), (status = 404, body = Err), (status = 422, body = Err)))]
pub async fn replay(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
    tributary_plugin::Json(req): tributary_plugin::Json<ReplayRequest>,
) -> Result<Json<ReplayResult>, ApiError> {
    let name = internal(&node, &p, &name);
    let h = visible(&node, &p, &name)?;
    let parse = |f: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| {
                Timestamp::parse_rfc3339(s).map_err(|m| ApiError::bad_request("invalid_request", format!("{f}: {m}")))
            })
            .transpose()
    };
    let (since, until) = (parse("since", &req.since)?, parse("until", &req.until)?);
    if req.from_seq.is_none() && req.to_seq.is_none() && since.is_none() && until.is_none() {
        return Err(ApiError::unprocessable(
            "invalid_request",
            "give a range: from_seq/to_seq and/or since/until",
        ));
    }
    let filter = h
        .effective_filter
        .compile()
        .map_err(|_| ApiError::unprocessable("invalid_subscription", "the subscription's filter is invalid"))?;
    let to = req.to_seq.unwrap_or(u64::MAX).min(node.store.last_seq());
    let mut seqs: Vec<Seq> = Vec::new();
    let mut next = req.from_seq.unwrap_or(1).max(1);
    let mut scanned = 0;
    let mut next_from_seq = None;
    while next <= to {
        if scanned >= REPLAY_SCAN {
            next_from_seq = Some(next);
            break;
        }
        let page = node.store.read_from(next, 1000).await?;
        if page.is_empty() {
            break;
        }
        scanned += page.len();
        for e in page {
            next = e.seq + 1;
            if e.seq > to {
                break;
            }
            let in_time = since.is_none_or(|t| e.ingested_at >= t) && until.is_none_or(|t| e.ingested_at < t);
            if in_time && filter.matches(&e) {
                seqs.push(e.seq);
            }
        }
        if seqs.len() > MAX_REPLAY {
            return Err(ApiError::unprocessable(
                "too_many",
                format!("more than {MAX_REPLAY} events in range; replay a narrower range"),
            ));
        }
    }
    let matched = seqs.len();
    let requeued = if req.dry_run {
        0
    } else {
        node.requeue(&name, seqs).await?
    };
    Ok(Json(ReplayResult {
        matched,
        requeued,
        dry_run: req.dry_run,
        next_from_seq,
    }))
}
