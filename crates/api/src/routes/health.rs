//! `/health` and `/metrics`.
//!
//! Anyone may ask `/health` for the overall status (`{"status": "ok"}`, 200 or 503). The components
//! (store, every source and subscription by name, with reasons) and `/metrics` are shown only to the
//! admin key or the `[node] metrics_token`, since they name every tenant's subscriptions.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tributary_engine::{Node, metrics};
use utoipa::ToSchema;

/// One component's status.
#[derive(Serialize, ToSchema)]
pub struct Component {
    /// `ok`, `standby` (another node runs it), `degraded`, `paused`, `stalled`, `failed` or `down`.
    pub status: String,
    /// Why, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The health report: only `status` without the admin key or the metrics token.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `degraded`, `stalled` or `down`: 200 for ok and degraded, 503 otherwise.
    pub status: String,
    /// The store (admin key or metrics token only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<Component>,
    /// Each source (admin key or metrics token only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<BTreeMap<String, Component>>,
    /// Each subscription (admin key or metrics token only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions: Option<BTreeMap<String, Component>>,
}

/// A source's reported problems as one reason (`part: problem; ...`), if it has any.
fn reported(report: &tributary_core::SourceReport) -> Option<String> {
    joined(report.problems())
}

/// `part: text; ...`, if there is any.
fn joined(problems: BTreeMap<String, String>) -> Option<String> {
    (!problems.is_empty()).then(|| {
        (problems.iter())
            .map(|(part, p)| format!("{part}: {p}"))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn comp(status: &str, reason: Option<String>) -> Component {
    Component {
        status: status.to_owned(),
        reason,
    }
}

/// Health: the overall status for anyone; per component with the admin key or the metrics token.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "ok or degraded", body = Health), (status = 503, description = "down or stalled", body = Health)))]
pub async fn health(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    let detailed = crate::auth::is_operator(&node, &headers);
    let store = match node.store.check().await {
        Err(reason) => comp("down", Some(reason)),
        Ok(()) => comp("ok", None),
    };
    let mut overall = if store.status == "down" { "down" } else { "ok" };
    let mut sources = BTreeMap::new();
    for (name, s) in &node.sources {
        let snap = s.status.snapshot(s.config.stall_after());
        let c = if snap.standby {
            comp(
                "standby",
                Some("another node holds its lease and runs it (GET /v1/cluster)".into()),
            )
        } else if let Some(f) = snap.failure {
            comp("failed", Some(f))
        } else if snap.stalled {
            comp(
                "stalled",
                Some(format!(
                    "no progress for more than {:?}",
                    s.config.stall_after().unwrap_or_default()
                )),
            )
        } else if let Some(stalls) = joined(s.report.stalls()) {
            comp("stalled", Some(stalls))
        } else if let Some(problems) = reported(&s.report) {
            comp("degraded", Some(problems))
        } else {
            comp("ok", None)
        };
        match c.status.as_str() {
            "ok" | "standby" => {}
            "degraded" if overall == "ok" => overall = "degraded",
            "degraded" => {}
            _ if matches!(overall, "ok" | "degraded") => overall = "stalled",
            _ => {}
        }
        sources.insert(name.clone(), c);
    }
    let limits = &node.config.health;
    // The sinks' own checks (a broker that refuses, a missing table) cost a round trip each: only for
    // the detailed report.
    let mut sink_problems = if detailed {
        node.sink_problems().await
    } else {
        BTreeMap::new()
    };
    let mut subscriptions = BTreeMap::new();
    for h in node.subscription_list() {
        let s = h.status.snapshot();
        let backlog = node.store.last_seq().saturating_sub(s.cursor);
        let c = if s.standby {
            comp(
                "standby",
                Some("another node holds its lease and delivers it (GET /v1/cluster)".into()),
            )
        } else if s.paused {
            comp("paused", Some("paused by an operator or a 410 Gone; resume it".into()))
        } else if s.breaker_open {
            comp(
                "degraded",
                Some("circuit breaker open: the endpoint keeps failing".into()),
            )
        } else if let Some(problem) = sink_problems.remove(&h.config.name) {
            comp("degraded", Some(format!("sink healthcheck: {problem}")))
        } else if backlog > limits.max_backlog {
            comp(
                "degraded",
                Some(format!("backlog {backlog} events > {}", limits.max_backlog)),
            )
        } else if s.dead_letters > limits.max_dead_letters {
            comp(
                "degraded",
                Some(format!(
                    "{} > {}",
                    count(s.dead_letters, "dead letter"),
                    limits.max_dead_letters
                )),
            )
        } else {
            comp("ok", None)
        };
        if !matches!(c.status.as_str(), "ok" | "standby") && overall == "ok" {
            overall = "degraded";
        }
        subscriptions.insert(h.config.name.clone(), c);
    }
    // Subscriptions that could not start: the node runs, but someone has to fix or delete them.
    for b in node.broken_subscriptions() {
        if overall == "ok" {
            overall = "degraded";
        }
        subscriptions.insert(b.name.clone(), comp("failed", Some(b.problem)));
    }
    let code = if matches!(overall, "ok" | "degraded") {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let health = if detailed {
        Health {
            status: overall.to_owned(),
            store: Some(store),
            sources: Some(sources),
            subscriptions: Some(subscriptions),
        }
    } else {
        Health {
            status: overall.to_owned(),
            store: None,
            sources: None,
            subscriptions: None,
        }
    };
    (code, Json(health)).into_response()
}

/// Prometheus metrics (text exposition format), for the admin key or the `[node] metrics_token`.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
        (status = 401, description = "neither the admin key nor the metrics token", body = crate::ErrorBody)))]
pub async fn metrics(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if !crate::auth::is_operator(&node, &headers) {
        return crate::ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "/metrics needs Authorization: Bearer <admin key or [node] metrics_token>",
        )
        .into_response();
    }
    let last = node.store.last_seq();
    for h in node.subscription_list() {
        let s = h.status.snapshot();
        metrics::subscription_gauges(&h.config.name, last.saturating_sub(s.cursor), s.dead_letters);
    }
    for (name, s) in &node.sources {
        for (part, lag) in s.report.lags() {
            metrics::source_lag(name, &part, lag.bytes, lag.seconds);
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.render(),
    )
        .into_response()
}

/// `1 dead letter`, `2 dead letters`.
fn count(n: u64, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}
