//! tributary HTTP API: `/v1/...` routes over a running [`Node`], and `/health`.
//!
//! - [`error`]: the JSON error shape `{"error": {"code", "message"}}` and status mapping.
//! - [`routes`]: the handlers (sources, events, subscriptions, dead letters, health).
//! - [`receiver`]: a webhook receiver that verifies signatures (demo, bench, tests).
//!
//! Entry point: [`serve`], which takes the shutdown trigger as an argument so tests can drive it.

mod error;
pub mod receiver;
mod routes;

pub use error::ApiError;

use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tributary_engine::Node;

/// Builds the router for a node.
pub fn router(node: Arc<Node>) -> axum::Router {
    routes::router(node)
}

/// Serves the API on `listener` until `shutdown` is cancelled; requests in progress finish first.
pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(node))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
