//! Who is asking: the admin (the configured admin key) or a tenant (one of its API keys).
//!
//! A tenant sees and changes only its own subscriptions, deliveries and dead letters, and reads the events
//! of the sources the config shares with it (`tenants = ["*"]` or a list). Anything else answers 404, as
//! if it did not exist.

use crate::ApiError;
use axum::extract::FromRequestParts;
use axum::http::{StatusCode, header, request::Parts};
use std::sync::Arc;
use tributary_engine::tenants::Tenants;
use tributary_engine::{Node, SubscriptionHandle};

/// The caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// The admin key.
    Admin,
    /// A tenant API key.
    Tenant(String),
}

impl Principal {
    /// Whether the caller may see this subscription.
    pub fn sees_subscription(&self, h: &SubscriptionHandle) -> bool {
        match self {
            Self::Admin => true,
            Self::Tenant(t) => h.config.tenant.as_deref() == Some(t),
        }
    }

    /// Whether the caller may read events of this source.
    pub fn sees_source(&self, node: &Node, source: &str) -> bool {
        match self {
            Self::Admin => true,
            Self::Tenant(t) => node.sources.get(source).is_some_and(|s| s.config.shared_with(t)),
        }
    }

    /// Refuses non-admins (403).
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Self::Admin => Ok(()),
            Self::Tenant(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this operation needs the admin key",
            )),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<Arc<Node>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, node: &Arc<Node>) -> Result<Self, Self::Rejection> {
        let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("missing header Authorization: Bearer <api key>"))?;
        if let Some(admin) = node.config.node.admin_key.as_deref()
            && constant_time_eq(given.as_bytes(), admin.as_bytes())
        {
            return Ok(Self::Admin);
        }
        match Tenants::new(node.store.as_ref()).authenticate(given).await? {
            Some(tenant) => Ok(Self::Tenant(tenant)),
            None if node.config.node.admin_key.is_none() => Err(unauthorized(
                "the API key is not valid (and no admin key is configured: set [node] admin_key or TRIBUTARY_ADMIN_KEY)",
            )),
            None => Err(unauthorized("the API key is not valid or was revoked")),
        }
    }
}
