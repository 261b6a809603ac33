//! Dead letters: stats, listing with filters, replay and purge (with `dry_run`).

use super::Err;
use super::subscriptions::{internal, shown, visible};
use crate::ApiError;
use crate::auth::Principal;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tributary_core::Timestamp;
use tributary_core::store::DeadLetter;
use tributary_engine::Node;
use tributary_engine::subscription::Control;
use tributary_plugin::{Path, Query};
use utoipa::{IntoParams, ToSchema};

/// Dead letters one stats request reads, at most, across all subscriptions (for `oldest` and `newest`).
const STATS_SCAN: usize = 100_000;
/// Dead letters one listing, replay or purge request looks at, at most.
const SCAN_BUDGET: usize = 1_000_000;
/// Most dead letters one replay or purge acts on.
const MAX_ACTION: usize = 100_000;

/// Dead letters of one subscription, summed up.
#[derive(Serialize, ToSchema)]
pub struct DeadLetterStats {
    /// The subscription.
    pub subscription: String,
    /// How many (the worker's live count).
    pub count: u64,
    /// When the oldest died (among those read; see `complete`).
    #[schema(value_type = Option<String>)]
    pub oldest: Option<Timestamp>,
    /// When the newest died (among those read; see `complete`).
    #[schema(value_type = Option<String>)]
    pub newest: Option<Timestamp>,
    /// Whether `oldest` and `newest` cover every dead letter: one request reads at most 100,000 dead
    /// letters over all subscriptions; page with `GET /v1/subscriptions/{name}/dead-letters` for the rest.
    pub complete: bool,
}

/// Stats of every visible subscription.
#[derive(Serialize, ToSchema)]
pub struct StatsList {
    /// One entry per subscription.
    pub subscriptions: Vec<DeadLetterStats>,
}

/// Dead-letter counts per subscription.
#[utoipa::path(get, path = "/v1/dead-letters/stats", tag = "dead letters", security(("bearer" = [])),
    responses((status = 200, body = StatsList), (status = 401, body = Err)))]
pub async fn stats(State(node): State<Arc<Node>>, p: Principal) -> Result<Json<StatsList>, ApiError> {
    let mut subscriptions = Vec::new();
    let mut budget = STATS_SCAN;
    for h in node.subscription_list().iter().filter(|h| p.sees_subscription(h)) {
        let name = &h.config.name;
        let (mut oldest, mut newest, mut complete) = (None::<Timestamp>, None::<Timestamp>, false);
        let mut from = 0;
        while budget > 0 {
            let page = node.store.dead_letters(name, from, budget.min(10_000)).await?;
            budget -= page.len();
            let Some(last) = page.last().map(|d| d.seq) else {
                complete = true;
                break;
            };
            from = last + 1;
            for d in &page {
                oldest = Some(oldest.map_or(d.dead_at, |o| o.min(d.dead_at)));
                newest = Some(newest.map_or(d.dead_at, |n| n.max(d.dead_at)));
            }
        }
        subscriptions.push(DeadLetterStats {
            subscription: shown(&p, name),
            count: h.status.snapshot().dead_letters,
            oldest,
            newest,
            complete,
        });
    }
    Ok(Json(StatsList { subscriptions }))
}

/// Which dead letters.
#[derive(Deserialize, IntoParams, ToSchema, Default)]
#[into_params(parameter_in = Query)]
pub struct DeadQuery {
    /// After this sequence number (exclusive).
    #[serde(default)]
    pub after: u64,
    /// At most this many (1–10,000). Default 100.
    pub limit: Option<usize>,
    /// Died at or after (RFC 3339).
    pub since: Option<String>,
    /// Died before (RFC 3339).
    pub until: Option<String>,
}

/// A page of dead letters.
#[derive(Serialize, ToSchema)]
pub struct DeadPage {
    /// In sequence order: event, attempts, last status, error, response excerpt, time.
    #[schema(value_type = Vec<Object>)]
    pub dead_letters: Vec<DeadLetter>,
    /// When there may be more: pass as `after` to continue (a request looks at most at 1,000,000).
    pub next_after: Option<u64>,
}

fn times(since: &Option<String>, until: &Option<String>) -> Result<(Option<Timestamp>, Option<Timestamp>), ApiError> {
    let parse = |f: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| {
                Timestamp::parse_rfc3339(s).map_err(|m| ApiError::bad_request("invalid_request", format!("{f}: {m}")))
            })
            .transpose()
    };
    Ok((parse("since", since)?, parse("until", until)?))
}

/// Dead letters after `after` within the time range, at most `limit`, looking at no more than
/// [`SCAN_BUDGET`]; also the seq to continue after when it stopped early.
async fn select(
    node: &Node,
    name: &str,
    after: u64,
    limit: usize,
    since: &Option<String>,
    until: &Option<String>,
) -> Result<(Vec<DeadLetter>, Option<u64>), ApiError> {
    let (since, until) = times(since, until)?;
    let mut out = Vec::new();
    let mut from = after + 1;
    let mut scanned = 0;
    let mut last_seen = None;
    while out.len() < limit {
        if scanned >= SCAN_BUDGET {
            return Ok((out, last_seen));
        }
        let page = node.store.dead_letters(name, from, 1000).await?;
        let Some(last) = page.last().map(|d| d.seq) else {
            return Ok((out, None));
        };
        scanned += page.len();
        from = last + 1;
        for d in page {
            last_seen = Some(d.seq);
            if since.is_none_or(|t| d.dead_at >= t) && until.is_none_or(|t| d.dead_at < t) {
                out.push(d);
                if out.len() == limit {
                    break;
                }
            }
        }
    }
    Ok((out, last_seen))
}

/// Dead letters of a subscription, filtered by time.
#[utoipa::path(get, path = "/v1/subscriptions/{name}/dead-letters", tag = "dead letters", security(("bearer" = [])),
    params(("name" = String, Path), DeadQuery),
    responses((status = 200, body = DeadPage), (status = 400, body = Err), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn list(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
    Query(q): Query<DeadQuery>,
) -> Result<Json<DeadPage>, ApiError> {
    let name = internal(&node, &p, &name);
    visible(&node, &p, &name)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let (dead_letters, next_after) = select(&node, &name, q.after, limit, &q.since, &q.until).await?;
    Ok(Json(DeadPage {
        dead_letters,
        next_after,
    }))
}

/// Which dead letters to act on: one by `seq`, or all matching a time range (at most `limit`).
#[derive(Deserialize, ToSchema, Default)]
pub struct DeadAction {
    /// Only this event.
    pub seq: Option<u64>,
    /// Died at or after (RFC 3339).
    pub since: Option<String>,
    /// Died before (RFC 3339).
    pub until: Option<String>,
    /// At most this many (default and most: 100,000 per request; `more` says when to call again).
    pub limit: Option<usize>,
    /// Count without acting.
    #[serde(default)]
    pub dry_run: bool,
}

/// The outcome of a replay or purge.
#[derive(Serialize, ToSchema)]
pub struct ActionResult {
    /// Dead letters that matched.
    pub matched: usize,
    /// Re-queued (replay) or deleted (purge); 0 on a dry run.
    pub affected: usize,
    /// Whether nothing was done.
    pub dry_run: bool,
    /// Whether more dead letters may match: one request acts on at most 100,000 and looks at most at
    /// 1,000,000; call again (a replay or purge removes those it acted on).
    pub more: bool,
}

async fn matching(node: &Node, name: &str, a: &DeadAction) -> Result<(Vec<u64>, bool), ApiError> {
    let limit = a.limit.unwrap_or(MAX_ACTION).clamp(1, MAX_ACTION);
    let dead: Vec<DeadLetter> = match a.seq {
        Some(seq) => node
            .store
            .dead_letters(name, seq, 1)
            .await?
            .into_iter()
            .filter(|d| d.seq == seq)
            .collect(),
        None => {
            let (dead, next) = select(node, name, 0, limit, &a.since, &a.until).await?;
            let more = next.is_some();
            return Ok((dead.into_iter().map(|d| d.seq).collect(), more));
        }
    };
    Ok((dead.into_iter().map(|d| d.seq).collect(), false))
}

/// Delivers dead letters again (they leave the dead-letter store and get a fresh set of retries).
#[utoipa::path(post, path = "/v1/subscriptions/{name}/dead-letters/replay", tag = "dead letters", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = DeadAction,
    responses((status = 200, body = ActionResult), (status = 400, body = Err), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn replay(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
    tributary_plugin::Json(a): tributary_plugin::Json<DeadAction>,
) -> Result<Json<ActionResult>, ApiError> {
    let name = internal(&node, &p, &name);
    visible(&node, &p, &name)?;
    let (seqs, more) = matching(&node, &name, &a).await?;
    let matched = seqs.len();
    let affected = if a.dry_run { 0 } else { node.requeue(&name, seqs).await? };
    Ok(Json(ActionResult {
        matched,
        affected,
        dry_run: a.dry_run,
        more,
    }))
}

/// Deletes dead letters for good.
#[utoipa::path(post, path = "/v1/subscriptions/{name}/dead-letters/purge", tag = "dead letters", security(("bearer" = [])),
    params(("name" = String, Path)), request_body = DeadAction,
    responses((status = 200, body = ActionResult), (status = 400, body = Err), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn purge(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
    tributary_plugin::Json(a): tributary_plugin::Json<DeadAction>,
) -> Result<Json<ActionResult>, ApiError> {
    let name = internal(&node, &p, &name);
    let h = visible(&node, &p, &name)?;
    let (seqs, more) = matching(&node, &name, &a).await?;
    let matched = seqs.len();
    if !a.dry_run {
        for chunk in seqs.chunks(10_000) {
            h.send(Control::Purge(chunk.to_vec())).await?;
        }
    }
    Ok(Json(ActionResult {
        matched,
        affected: if a.dry_run { 0 } else { matched },
        dry_run: a.dry_run,
        more,
    }))
}
