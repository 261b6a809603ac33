//! `/v1/lightning`: the channel graph in time (kept by the node from the log's `ln.*` events) and the
//! problems of the `lightning` sources: the routes the `lightning` source type contributes to the API
//! (mounted by the API behind its authentication, [`tributary_plugin`]). Without a `lightning` source
//! every route answers 404 with how to define one.
//!
//! Every graph answer first waits (up to 2 s) for the graph to apply what the log held when the request
//! arrived, so a query right after a write sees it. Times are Unix seconds, defaulting to now.
//!
//! Visibility: the node keeps one graph per `lightning` source. A caller gets the graphs of the sources
//! it may read ([`Caller::may_read`]) combined: a tenant sharing one source sees that source's graph
//! only, the admin sees every source's. `?source=NAME` narrows any answer to one source (404 when the
//! caller may not read it or it is not a `lightning` source).

use super::ShortChannelId;
use super::keeper::{GraphKeeper, view};
use axum::Json;
use axum::extract::{FromRef, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tributary_plugin::{ApiError, Caller, ErrorBody as Err, OpenApiRouter, Path, Query};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::routes;

/// The graph keeper, when a `lightning` source is configured.
type Keeper = Option<Arc<GraphKeeper>>;

/// What the routes serve: the graph keeper and each `lightning` source's import settings.
#[derive(Clone, Default)]
pub struct Lightning {
    /// The graphs (`None`: no `lightning` source, every route answers 404).
    pub keeper: Keeper,
    /// The configured `lightning` sources, by name.
    pub sources: Arc<BTreeMap<String, ImportSettings>>,
}

/// What an import into a source takes from its config.
#[derive(Clone, Copy, Debug)]
pub struct ImportSettings {
    /// The source's `network`.
    pub network: super::Network,
    /// The source's `max_waiting_updates`.
    pub max_waiting: usize,
}

impl FromRef<Lightning> for Keeper {
    fn from_ref(l: &Lightning) -> Keeper {
        l.keeper.clone()
    }
}

#[derive(OpenApi)]
#[openapi(tags((name = "lightning", description = "The Lightning channel graph in time and gossip problems")))]
struct LightningDoc;

/// The routes, over the node's keeper and sources (none: every route answers 404).
pub fn router(state: Lightning) -> OpenApiRouter {
    OpenApiRouter::with_openapi(LightningDoc::openapi())
        .routes(routes!(graph))
        .routes(routes!(channel))
        .routes(routes!(node_state))
        .routes(routes!(diff))
        .routes(routes!(problems))
        .routes(routes!(super::import_route::import_gossip))
        .with_state(state)
}

fn now() -> u32 {
    tributary_core::Timestamp::now().unix_secs().clamp(0, u32::MAX as i64) as u32
}

/// The keeper, once it caught up with the log, and the sources whose graphs the caller gets: `source` if
/// named, else every `lightning` source the caller may read; 404 when there is none.
async fn keeper(
    keeper: &Keeper,
    p: &Caller,
    source: Option<&str>,
) -> Result<(Arc<GraphKeeper>, Vec<String>), ApiError> {
    let keeper = keeper.clone().ok_or_else(|| {
        ApiError::not_found("no lightning source; define one under [[sources]] with type = \"lightning\"")
    })?;
    let visible: Vec<String> = keeper.sources.iter().filter(|s| p.may_read(s)).cloned().collect();
    if visible.is_empty() {
        return Err(ApiError::not_found(
            "no lightning source; define one under [[sources]] with type = \"lightning\"",
        ));
    }
    let names = match source {
        None => visible,
        Some(s) if visible.iter().any(|v| v == s) => vec![s.to_owned()],
        Some(s) => {
            return Err(ApiError::not_found(format!(
                "source: no lightning source named {s:?} that this key may read; GET /v1/sources lists them"
            )));
        }
    };
    if !keeper
        .caught_up(keeper.store().last_seq(), Duration::from_secs(2))
        .await
    {
        tracing::warn!(
            applied = keeper.applied_seq(),
            "lightning graph answers while still catching up with the log"
        );
    }
    Ok((keeper, names))
}

/// `?at=`: Unix seconds, with a message that says so (`?at=yesterday` is not a time the API reads).
fn unix_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let given = <Option<String> as Deserialize>::deserialize(d)?;
    given
        .map(|g| {
            g.trim().parse::<u32>().map_err(|_| {
                serde::de::Error::custom(format!(
                    "expected Unix seconds such as 1700000002 (`date +%s`), got {:?}",
                    g.chars().take(64).collect::<String>()
                ))
            })
        })
        .transpose()
}

/// `?at=&format=`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GraphQuery {
    /// Unix seconds (default: now).
    #[serde(default, deserialize_with = "unix_seconds")]
    pub at: Option<u32>,
    /// `json` (default) or `raw`: the same snapshot as concatenated canonical `raw_gossip` envelopes
    /// (`CompactSize(len(body)) ‖ type ‖ body`), as ln-history's snapshot endpoint serves.
    pub format: Option<String>,
    /// Only this `lightning` source's graph (default: every source the caller may read, combined).
    pub source: Option<String>,
}

/// The graph at a time: open channels with their latest update per direction, and their nodes' latest
/// announcements.
#[utoipa::path(get, path = "/v1/lightning/graph", tag = "lightning", security(("bearer" = [])),
    params(GraphQuery),
    responses(
        (status = 200, description = "the snapshot", content(
            (Object = "application/json"),
            (Vec<u8> = "application/octet-stream"))),
        (status = 400, body = Err), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn graph(State(kept): State<Keeper>, p: Caller, Query(q): Query<GraphQuery>) -> Result<Response, ApiError> {
    let (k, names) = keeper(&kept, &p, q.source.as_deref()).await?;
    let at = q.at.unwrap_or_else(now);
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(view(&k.read(), &names).snapshot(at)).into_response()),
        "raw" => {
            let body = view(&k.read(), &names).snapshot_raw(at);
            Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
        }
        other => Err(ApiError::bad_request(
            "invalid_query",
            format!("format: expected json or raw, got {other:?}"),
        )),
    }
}

/// `?at=`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AtQuery {
    /// Unix seconds (default: now).
    #[serde(default, deserialize_with = "unix_seconds")]
    pub at: Option<u32>,
    /// Only this `lightning` source's graph (default: every source the caller may read, combined).
    pub source: Option<String>,
}

/// A channel at a time (also when closed or not yet open then): its announcement, capacity, the update
/// in force per direction with its validity interval.
#[utoipa::path(get, path = "/v1/lightning/channels/{scid}", tag = "lightning", security(("bearer" = [])),
    params(("scid" = String, Path, description = "short channel id, BLOCKxTXxOUTPUT or the u64"), AtQuery),
    responses((status = 200, body = Object), (status = 400, body = Err), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn channel(
    State(kept): State<Keeper>,
    p: Caller,
    Path(scid): Path<String>,
    Query(q): Query<AtQuery>,
) -> Result<Response, ApiError> {
    let scid: ShortChannelId = scid
        .parse()
        .map_err(|e| ApiError::bad_request("invalid_scid", format!("scid: {e}")))?;
    let (k, names) = keeper(&kept, &p, q.source.as_deref()).await?;
    let state = view(&k.read(), &names).channel(scid, q.at.unwrap_or_else(now));
    state
        .map(|s| Json(s).into_response())
        .ok_or_else(|| ApiError::not_found(format!("no announced channel {scid}")))
}

/// A node's latest announcement at a time, with its validity interval.
#[utoipa::path(get, path = "/v1/lightning/nodes/{node_id}", tag = "lightning", security(("bearer" = [])),
    params(("node_id" = String, Path, description = "33-byte node id, 66 hex characters"), AtQuery),
    responses((status = 200, body = Object), (status = 400, body = Err), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn node_state(
    State(kept): State<Keeper>,
    p: Caller,
    Path(node_id): Path<String>,
    Query(q): Query<AtQuery>,
) -> Result<Response, ApiError> {
    let id: [u8; 33] = hex::decode(&node_id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ApiError::bad_request("invalid_node_id", "node_id: expected 66 hex characters"))?;
    let (k, names) = keeper(&kept, &p, q.source.as_deref()).await?;
    let state = view(&k.read(), &names).node(&id, q.at.unwrap_or_else(now));
    state
        .map(|s| Json(s).into_response())
        .ok_or_else(|| ApiError::not_found(format!("no announcement of node {node_id} at that time")))
}

/// `?from=&to=`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// Unix seconds.
    pub from: u32,
    /// Unix seconds (default: now).
    pub to: Option<u32>,
    /// Only this `lightning` source's graph (default: every source the caller may read, combined).
    pub source: Option<String>,
}

/// What changed between two times: channels opened and closed, policies changed, nodes added, changed
/// and removed.
#[utoipa::path(get, path = "/v1/lightning/diff", tag = "lightning", security(("bearer" = [])),
    params(DiffQuery),
    responses((status = 200, body = Object), (status = 400, body = Err), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn diff(State(kept): State<Keeper>, p: Caller, Query(q): Query<DiffQuery>) -> Result<Response, ApiError> {
    let (k, names) = keeper(&kept, &p, q.source.as_deref()).await?;
    let d = view(&k.read(), &names).diff(q.from, q.to.unwrap_or_else(now));
    Ok(Json(d).into_response())
}

/// `?limit=`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProblemQuery {
    /// At most this many, newest last (1–1000). Default 100.
    pub limit: Option<usize>,
    /// Only this `lightning` source's problems (default: every source the caller may read).
    pub source: Option<String>,
}

/// One problem of a `lightning` source.
#[derive(Serialize, ToSchema)]
pub struct ProblemView {
    /// The source.
    pub source: String,
    /// The reject: position, reason (starting with its code: `bad_signature`, `wrong_chain`,
    /// `malformed`, `unknown_channel`), excerpt (hex), time.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub reject: tributary_core::Reject,
}

/// Problems.
#[derive(Serialize, ToSchema)]
pub struct ProblemList {
    /// Newest last.
    pub problems: Vec<ProblemView>,
}

/// Messages the `lightning` sources rejected (malformed, bad signature, wrong chain, channel never
/// announced), newest last. Each is also an `ln.problem.node` / `ln.problem.channel` event.
#[utoipa::path(get, path = "/v1/lightning/problems", tag = "lightning", security(("bearer" = [])),
    params(ProblemQuery),
    responses((status = 200, body = ProblemList), (status = 400, body = Err), (status = 401, body = Err), (status = 404, body = Err)))]
pub async fn problems(
    State(kept): State<Keeper>,
    p: Caller,
    Query(q): Query<ProblemQuery>,
) -> Result<Json<ProblemList>, ApiError> {
    let (k, names) = keeper(&kept, &p, q.source.as_deref()).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let mut all = Vec::new();
    for s in &names {
        for reject in k.store().rejects(s, limit).await? {
            all.push(ProblemView {
                source: s.clone(),
                reject,
            });
        }
    }
    all.sort_by_key(|v| v.reject.at);
    let skip = all.len().saturating_sub(limit);
    Ok(Json(ProblemList {
        problems: all.split_off(skip),
    }))
}
