//! `/v1/tenants` (admin only): tenants and their API keys.

use super::Err;
use crate::ApiError;
use crate::auth::Principal;
use crate::idempotency::SecretAnswer;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tributary_engine::Node;
use tributary_engine::tenants::{ApiKey, Tenant, Tenants};
use tributary_plugin::Path;
use utoipa::ToSchema;

/// A new tenant.
#[derive(Deserialize, ToSchema)]
pub struct CreateTenant {
    /// Unique name: letters, digits, `-`, `_`.
    pub name: String,
}

/// The tenants.
#[derive(Serialize, ToSchema)]
pub struct TenantList {
    /// By name.
    #[schema(value_type = Vec<Object>)]
    pub tenants: Vec<Tenant>,
}

/// Every tenant.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])),
    responses((status = 200, body = TenantList), (status = 401, body = Err), (status = 403, body = Err)))]
pub async fn list_tenants(State(node): State<Arc<Node>>, p: Principal) -> Result<Json<TenantList>, ApiError> {
    p.require_admin()?;
    Ok(Json(TenantList {
        tenants: Tenants::new(node.store.as_ref()).list().await?,
    }))
}

/// Creates a tenant.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])), request_body = CreateTenant,
    responses((status = 201, body = Object), (status = 401, body = Err), (status = 403, body = Err), (status = 409, body = Err), (status = 422, body = Err)))]
pub async fn create_tenant(
    State(node): State<Arc<Node>>,
    p: Principal,
    tributary_plugin::Json(body): tributary_plugin::Json<CreateTenant>,
) -> Result<(StatusCode, Json<Tenant>), ApiError> {
    p.require_admin()?;
    Ok((
        StatusCode::CREATED,
        Json(Tenants::new(node.store.as_ref()).create(&body.name).await?),
    ))
}

/// One tenant.
#[utoipa::path(get, path = "/v1/tenants/{name}", tag = "tenants", security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 401, body = Err), (status = 403, body = Err), (status = 404, body = Err)))]
pub async fn get_tenant(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<Json<Tenant>, ApiError> {
    p.require_admin()?;
    let t = Tenants::new(node.store.as_ref()).get(&name).await?;
    t.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no tenant named {name:?}")))
}

/// A tenant's keys.
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    /// Without secrets or hashes.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<ApiKey>,
}

/// A tenant's API keys (ids and times only).
#[utoipa::path(get, path = "/v1/tenants/{name}/keys", tag = "tenants", security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 200, body = KeyList), (status = 401, body = Err), (status = 403, body = Err), (status = 404, body = Err)))]
pub async fn list_keys(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<Json<KeyList>, ApiError> {
    p.require_admin()?;
    Ok(Json(KeyList {
        keys: Tenants::new(node.store.as_ref()).keys(&name).await?,
    }))
}

/// A new key, shown once.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key's id (also inside the key).
    pub id: String,
    /// The tenant.
    pub tenant: String,
    /// The key: send it as `Authorization: Bearer <key>`. It is not stored and cannot be shown again.
    pub key: String,
}

/// Creates an API key for a tenant. The key is shown once; only its hash is kept (a retry with the same
/// `Idempotency-Key` gets 409, never the key).
#[utoipa::path(post, path = "/v1/tenants/{name}/keys", tag = "tenants", security(("bearer" = [])), params(("name" = String, Path)),
    responses((status = 201, body = CreatedKey), (status = 401, body = Err), (status = 403, body = Err), (status = 404, body = Err),
        (status = 409, body = Err, description = "Idempotency-Key in use, or already used: the key is not shown again")))]
pub async fn create_key(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path(name): Path<String>,
) -> Result<(StatusCode, axum::Extension<SecretAnswer>, Json<CreatedKey>), ApiError> {
    p.require_admin()?;
    let (record, key) = Tenants::new(node.store.as_ref()).create_key(&name).await?;
    Ok((
        StatusCode::CREATED,
        // The key is shown once: never kept for Idempotency-Key replays.
        axum::Extension(SecretAnswer),
        Json(CreatedKey {
            id: record.id,
            tenant: record.tenant,
            key,
        }),
    ))
}

/// Revokes a key: it stops working at once.
#[utoipa::path(delete, path = "/v1/tenants/{name}/keys/{id}", tag = "tenants", security(("bearer" = [])),
    params(("name" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Object), (status = 401, body = Err), (status = 403, body = Err), (status = 404, body = Err)))]
pub async fn revoke_key(
    State(node): State<Arc<Node>>,
    p: Principal,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<ApiKey>, ApiError> {
    p.require_admin()?;
    Ok(Json(Tenants::new(node.store.as_ref()).revoke_key(&name, &id).await?))
}
