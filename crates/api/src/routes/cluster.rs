//! `/v1/cluster` (admin only): the nodes sharing this node's store, their leases and their health.

use super::Err;
use crate::ApiError;
use crate::auth::Principal;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use std::sync::Arc;
use tributary_core::cluster::{LeaseView, NodeView};
use tributary_engine::Node;
use utoipa::ToSchema;

/// The cluster as this node's store sees it.
#[derive(Serialize, ToSchema)]
pub struct ClusterReport {
    /// Whether the store is shared by several nodes (PostgreSQL); on a store of its own a node runs
    /// everything, and the lists are empty.
    pub shared: bool,
    /// The id of the node that answered.
    pub node: Option<String>,
    /// How long a lease lasts unless renewed, in milliseconds.
    pub lease_ms: Option<u64>,
    /// Every node seen recently (id, url, version, started_at, problems, seen_at, alive), by id.
    #[schema(value_type = Vec<Object>)]
    pub nodes: Vec<NodeView>,
    /// Every lease (name, holder, epoch, expires_at, expired), by name.
    #[schema(value_type = Vec<Object>)]
    pub leases: Vec<LeaseView>,
}

/// The nodes sharing this node's store, the leases by which they split the sources and
/// subscriptions, and each node's problems.
#[utoipa::path(get, path = "/v1/cluster", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = ClusterReport), (status = 401, body = Err), (status = 403, body = Err), (status = 503, body = Err)))]
pub async fn cluster(State(node): State<Arc<Node>>, p: Principal) -> Result<Json<ClusterReport>, ApiError> {
    p.require_admin()?;
    let (Some(cluster), Some(leases)) = (&node.cluster, node.store.leases()) else {
        return Ok(Json(ClusterReport {
            shared: false,
            node: None,
            lease_ms: None,
            nodes: Vec::new(),
            leases: Vec::new(),
        }));
    };
    let view = leases.view(cluster.lease).await?;
    Ok(Json(ClusterReport {
        shared: true,
        node: Some(cluster.node_id.clone()),
        lease_ms: Some(cluster.lease.as_millis() as u64),
        nodes: view.nodes,
        leases: view.leases,
    }))
}
