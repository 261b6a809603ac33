//! Who is asking: the admin (the configured admin key) or a tenant (one of its API keys).
//!
//! A tenant sees and changes only its own subscriptions, deliveries and dead letters, and reads the events
//! of the sources the config shares with it (`tenants = ["*"]` or a list). Anything else answers 404, as
//! if it did not exist.

use crate::ApiError;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use sha2::{Digest, Sha256};
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

    /// Whether the caller may read this event: its source is shared with the caller, and an event that
    /// carries a tenant is that caller's (the admin reads every event).
    pub fn sees_event(&self, node: &Node, e: &tributary_core::StoredEvent) -> bool {
        let tenant = match self {
            Self::Admin => None,
            Self::Tenant(t) => Some(t.as_str()),
        };
        self.sees_source(node, &e.source) && tributary_core::filter::tenant_sees(tenant, e)
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

/// Whether two secrets are equal, in time that depends on neither their contents nor their lengths:
/// the sha256 digests (always 32 bytes) are compared without an early exit.
pub(crate) fn secret_eq(given: &str, expected: &str) -> bool {
    let (a, b) = (Sha256::digest(given.as_bytes()), Sha256::digest(expected.as_bytes()));
    a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token of a request, if it has one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Whether the request carries the admin key or the `[node] metrics_token` (for `/metrics` and the
/// detailed `/health`).
pub(crate) fn is_operator(node: &Node, headers: &HeaderMap) -> bool {
    let Some(given) = bearer(headers) else { return false };
    let admin = node
        .config
        .node
        .admin_key
        .as_deref()
        .is_some_and(|k| secret_eq(given, k));
    let metrics = node
        .config
        .node
        .metrics_token
        .as_deref()
        .is_some_and(|k| secret_eq(given, k));
    admin | metrics
}

/// An authenticated caller, as the `Idempotency-Key` layer found it (kept in the request's extensions so
/// the handler does not look the key up again).
#[derive(Clone, Debug)]
pub(crate) struct Authenticated {
    /// Who.
    pub principal: Principal,
    /// Which credential: `admin`, or `key-{id}` for a tenant key (records are kept per credential).
    pub credential: String,
}

/// Checks the request's bearer key: the admin key, else a valid, unrevoked tenant key, else 401.
pub(crate) async fn authenticate(node: &Node, headers: &HeaderMap) -> Result<Authenticated, ApiError> {
    let unauthorized = |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m);
    let given = bearer(headers).ok_or_else(|| match headers.get(header::AUTHORIZATION) {
        None => unauthorized("missing header Authorization: Bearer <api key>"),
        Some(_) => unauthorized(
            "the Authorization header has no Bearer scheme: send `Authorization: Bearer <api key>` (the word Bearer, a space, then the key)",
        ),
    })?;
    if let Some(admin) = node.config.node.admin_key.as_deref()
        && secret_eq(given, admin)
    {
        return Ok(Authenticated {
            principal: Principal::Admin,
            credential: "admin".into(),
        });
    }
    match Tenants::new(node.store.as_ref()).authenticate(given).await? {
        Some(tenant) => {
            // authenticate() accepted it, so it has the shape trb_{id}_{secret}.
            let id = given
                .strip_prefix("trb_")
                .and_then(|r| r.split('_').next())
                .unwrap_or_default();
            Ok(Authenticated {
                principal: Principal::Tenant(tenant),
                credential: format!("key-{id}"),
            })
        }
        None if node.config.node.admin_key.is_none() => Err(unauthorized(
            "the API key is not valid (and no admin key is configured: set [node] admin_key or TRIBUTARY_ADMIN_KEY)",
        )),
        None => Err(unauthorized("the API key is not valid or was revoked")),
    }
}

impl FromRequestParts<Arc<Node>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, node: &Arc<Node>) -> Result<Self, Self::Rejection> {
        if let Some(done) = parts.extensions.get::<Authenticated>() {
            return Ok(done.principal.clone());
        }
        Ok(authenticate(node, &parts.headers).await?.principal)
    }
}

#[cfg(test)]
mod tests {
    use super::secret_eq;

    #[test]
    fn secrets_compare_by_digest() {
        assert!(secret_eq("test-admin-key", "test-admin-key"));
        assert!(!secret_eq("test-admin-key", "test-admin-kez"));
        assert!(!secret_eq("test", "test-admin-key"), "a prefix is not equal");
        assert!(!secret_eq("", "x"));
    }
}
