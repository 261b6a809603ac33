//! `/health` and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tributary_engine::{Node, metrics};
use utoipa::ToSchema;

/// One component's status.
#[derive(Serialize, ToSchema)]
pub struct Component {
    /// `ok`, `degraded`, `paused`, `stalled`, `failed` or `down`.
    pub status: String,
    /// Why, when not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The health report.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `degraded`, `stalled` or `down`: 200 for ok and degraded, 503 otherwise.
    pub status: String,
    /// The store.
    pub store: Component,
    /// Each source.
    pub sources: BTreeMap<String, Component>,
    /// Each subscription.
    pub subscriptions: BTreeMap<String, Component>,
}

fn comp(status: &str, reason: Option<String>) -> Component {
    Component {
        status: status.to_owned(),
        reason,
    }
}

/// Per-component health.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "ok or degraded", body = Health), (status = 503, description = "down or stalled", body = Health)))]
pub async fn health(State(node): State<Arc<Node>>) -> Response {
    let store = match node.store.poisoned() {
        Some(reason) => comp("down", Some(reason)),
        None => comp("ok", None),
    };
    let mut overall = if store.status == "down" { "down" } else { "ok" };
    let mut sources = BTreeMap::new();
    for (name, s) in &node.sources {
        let snap = s.status.snapshot(s.config.stall_after());
        let c = if let Some(f) = snap.failure {
            comp("failed", Some(f))
        } else if snap.stalled {
            comp(
                "stalled",
                Some(format!(
                    "no progress for more than {:?}",
                    s.config.stall_after().unwrap_or_default()
                )),
            )
        } else {
            comp("ok", None)
        };
        if c.status != "ok" && overall == "ok" {
            overall = "stalled";
        }
        sources.insert(name.clone(), c);
    }
    let limits = &node.config.health;
    let mut subscriptions = BTreeMap::new();
    for h in node.subscription_list() {
        let s = h.status.snapshot();
        let backlog = node.store.last_seq().saturating_sub(s.cursor);
        let c = if s.paused {
            comp("paused", Some("paused by an operator or a 410 Gone; resume it".into()))
        } else if s.breaker_open {
            comp(
                "degraded",
                Some("circuit breaker open: the endpoint keeps failing".into()),
            )
        } else if backlog > limits.max_backlog {
            comp(
                "degraded",
                Some(format!("backlog {backlog} events > {}", limits.max_backlog)),
            )
        } else if s.dead_letters > limits.max_dead_letters {
            comp(
                "degraded",
                Some(format!("{} dead letters > {}", s.dead_letters, limits.max_dead_letters)),
            )
        } else {
            comp("ok", None)
        };
        if c.status != "ok" && overall == "ok" {
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
    (
        code,
        Json(Health {
            status: overall.to_owned(),
            store,
            sources,
            subscriptions,
        }),
    )
        .into_response()
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(node): State<Arc<Node>>) -> Response {
    let last = node.store.last_seq();
    for h in node.subscription_list() {
        let s = h.status.snapshot();
        metrics::subscription_gauges(&h.config.name, last.saturating_sub(s.cursor), s.dead_letters);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.render(),
    )
        .into_response()
}
