//! The plug-in contract beyond events: what a source type may contribute to the node (ADR 0006).
//!
//! A source appends events through [`tributary_core::SourceContext`]; a sink delivers them through
//! [`tributary_core::Sink`]. Some plug-ins also keep state of their own and answer questions about it
//! over HTTP — the Lightning channel graph, kept from the log and served under `/v1/lightning/…`. This
//! crate is how they do that without the engine or the API naming them:
//!
//! - [`service`]: a background service started once per node for the sources of one type
//!   ([`ServiceContext`]: the store, a directory for its files, the shutdown token and task tracker).
//! - [`Caller`]: who is asking, as the API authenticated them, and which sources they may read — what a
//!   plug-in's route needs to decide visibility without knowing tenants or keys.
//! - [`ApiError`], [`Json`], [`Query`], [`Path`]: the API's error shape `{"error": {"code", "message"}}`
//!   and extractors whose rejections use it, so a plug-in's routes answer like every other route.
//!
//! A plug-in's routes are an [`OpenApiRouter`] with its state applied; the API mounts them behind its
//! authentication and puts them in `/openapi.json`.

mod caller;
mod error;
mod extract;
pub mod service;

pub use axum::http::StatusCode;
pub use caller::Caller;
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use extract::{Json, Path, Query};
pub use service::ServiceContext;
pub use utoipa_axum::router::OpenApiRouter;
