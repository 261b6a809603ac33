//! [`Caller`]: who is asking a plug-in's route.

use crate::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

/// Who is asking, as the API authenticated the request before handing it to a plug-in's route: the
/// admin, or a tenant with the sources the config shares with it. A plug-in decides visibility with
/// [`Caller::may_read`] and answers 404 for what the caller may not see, as the API does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The tenant, or `None` for the admin.
    pub tenant: Option<String>,
    /// The sources whose events this caller may read, by name.
    pub readable_sources: Vec<String>,
}

impl Caller {
    /// Whether the caller is the admin.
    pub fn is_admin(&self) -> bool {
        self.tenant.is_none()
    }

    /// Whether the caller may read the events (and anything derived from them) of `source`.
    pub fn may_read(&self, source: &str) -> bool {
        self.readable_sources.iter().any(|s| s == source)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            tracing::error!(path = %parts.uri.path(), "a plug-in route was mounted without the API's authentication layer");
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "this route was mounted without authentication; report it as a bug",
            )
        })
    }
}
