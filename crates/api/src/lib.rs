//! tributary HTTP API: `/v1/...` routes over a running [`Node`], `/health`, `/metrics` and `/openapi.json`.
//!
//! - [`auth`]: who is asking: the admin key, or a tenant API key; what each may see.
//! - The JSON error shape `{"error": {"code", "message"}}` ([`ApiError`]) and the `Json`, `Query`, `Path`
//!   extractors whose rejections use it come from [`tributary_plugin`], which plug-ins' routes share.
//! - [`idempotency`]: `Idempotency-Key` on POST (24 h).
//! - [`routes`]: the handlers, one module per resource; the OpenAPI document is generated from them. The
//!   routes that source types contribute ([`tributary_sources::Services::routes`]) are mounted behind the
//!   authentication, with the caller's visible sources as a [`tributary_plugin::Caller`].
//! - `serve`: the HTTP server with a connection limit, a header-read timeout and a bounded shutdown.
//!
//! Entry point: [`serve`], which takes the shutdown trigger as an argument so tests can drive it.

pub mod auth;
mod idempotency;
mod routes;
mod serve;

pub use tributary_plugin::{ApiError, ErrorBody};

use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tributary_engine::Node;

/// Builds the router (with `/openapi.json`) for a node.
pub fn router(node: Arc<Node>) -> axum::Router {
    routes::router(node)
}

/// The OpenAPI document of every route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::openapi()
}

/// Serves the API on `listener` until `shutdown` is cancelled; requests in progress may finish within
/// `[node] shutdown_grace_ms`. At most `[node] max_connections` at once, each closed when it sends no
/// whole request head within `[node] header_read_timeout_ms`.
pub async fn serve(node: Arc<Node>, listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
    let limits = serve::ServerLimits {
        max_connections: node.config.node.max_connections,
        header_read_timeout: node.config.node.header_read_timeout(),
        shutdown_grace: node.config.node.shutdown_grace(),
    };
    let sweeper = tokio::spawn(idempotency::sweep(node.clone(), shutdown.clone()));
    serve::serve(router(node), listener, limits, shutdown).await;
    sweeper.abort();
    Ok(())
}
