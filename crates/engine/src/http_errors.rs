//! How the engine's management errors answer over HTTP (`?` in the API's handlers).

use tributary_plugin::{ApiError, StatusCode};

impl From<crate::ManageError> for ApiError {
    fn from(e: crate::ManageError) -> Self {
        use crate::ManageError as M;
        match e {
            M::Invalid(_) => ApiError::unprocessable("invalid_subscription", e.to_string()),
            M::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            M::ReadOnly(_) => ApiError::new(StatusCode::CONFLICT, "read_only", e.to_string()),
            M::NotFound(_) | M::NoTenant(_) => ApiError::not_found(e.to_string()),
            M::Store(s) => s.into(),
            M::Node(_) => ApiError::unprocessable("invalid_subscription", e.to_string()),
            M::Stopped => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "worker_stopped", e.to_string()),
            M::NoHolder(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_holder", e.to_string()),
            M::Limit { .. } => ApiError::unprocessable("too_many_subscriptions", e.to_string()),
            M::NoSecret(_) => ApiError::new(StatusCode::CONFLICT, "no_secret", e.to_string()),
        }
    }
}

impl From<crate::tenants::TenantError> for ApiError {
    fn from(e: crate::tenants::TenantError) -> Self {
        use crate::tenants::TenantError as T;
        match e {
            T::InvalidName(_) => ApiError::unprocessable("invalid_tenant", e.to_string()),
            T::Exists(_) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            T::NoTenant(_) | T::NoKey(_) => ApiError::not_found(e.to_string()),
            T::Store(s) => s.into(),
        }
    }
}
