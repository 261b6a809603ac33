//! tributary HTTP API: `/v1/...` routes over a running [`Node`], `/health`, `/metrics` and `/openapi.json`.
//!
//! - [`auth`]: who is asking: the admin key, or a tenant API key; what each may see.
//! - [`extract`]: `Json`, `Query`, `Path` extractors whose rejections are JSON API errors.
//! - [`error`]: the JSON error shape `{"error": {"code", "message"}}` and status mapping.
//! - [`idempotency`]: `Idempotency-Key` on POST (24 h).
//! - [`routes`]: the handlers, one module per resource; the OpenAPI document is generated from them.
//! - [`receiver`]: a webhook receiver that verifies signatures (demo, bench, tests).
//!
//! Entry point: [`serve`], which takes the shutdown trigger as an argument so tests can drive it.

pub mod auth;
mod error;
mod extract;
mod idempotency;
pub mod receiver;
mod routes;

pub use error::{ApiError, ErrorBody};

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

/// Serves the API on `listener` until `shutdown` is cancelled; requests in progress finish first.
pub async fn serve(node: Arc<Node>, listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router(node))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
