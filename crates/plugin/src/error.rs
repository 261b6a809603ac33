//! API errors: `{"error": {"code": "...", "message": "..."}}` with the right status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`invalid_event`, `not_found`, ...).
    pub code: &'static str,
    /// What was wrong and what to do.
    pub message: String,
    /// Extra fields (for example the index and field of an invalid event).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

/// The JSON body of every error.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: String,
    /// What was wrong and what to do.
    pub message: String,
    /// For `invalid_event`: the index of the first bad event in the request (absent for a single object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// For `invalid_event`: the offending field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: None,
            retry_after: None,
        }
    }
    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
    /// 400.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 422.
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
}

impl From<tributary_core::StoreError> for ApiError {
    fn from(e: tributary_core::StoreError) -> Self {
        tracing::error!(error = %e, "store error answering an API request");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut detail = serde_json::Map::new();
        detail.insert("code".into(), self.code.into());
        detail.insert("message".into(), self.message.into());
        if let Some(extra) = self.extra {
            detail.extend(extra);
        }
        let mut resp = (self.status, Json(serde_json::json!({ "error": detail }))).into_response();
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, s.into());
        }
        resp
    }
}
