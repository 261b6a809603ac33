//! Turning an HTTP request body into one durable append.

use super::HttpSourceConfig;
use crate::json_event::{ItemError, parse_body};
use serde::Serialize;
use tributary_core::store::{AppendBatch, AppendItem};
use tributary_core::{EventId, Store, StoreError, Timestamp};

/// A push source served by the API.
#[derive(Clone, Debug)]
pub struct HttpSource {
    config: HttpSourceConfig,
}

/// The body of a `202 Accepted`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IngestReply {
    /// New events stored.
    pub accepted: usize,
    /// Events known already (an observation was added).
    pub duplicates: usize,
    /// The id of every event, in request order.
    pub ids: Vec<EventId>,
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum HttpIngestError {
    /// The body is malformed (400).
    #[error(transparent)]
    Invalid(#[from] ItemError),
    /// The store could not take the batch (503).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HttpSource {
    /// A source from its config.
    pub fn new(config: HttpSourceConfig) -> Self {
        Self { config }
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Largest accepted body.
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// Validates the body and, unless `dry_run`, appends it atomically and durably.
    pub async fn ingest(&self, store: &dyn Store, body: &[u8], dry_run: bool) -> Result<IngestReply, HttpIngestError> {
        let events = parse_body(body)?;
        let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
        if dry_run {
            return Ok(IngestReply {
                accepted: 0,
                duplicates: 0,
                ids,
            });
        }
        let batch = AppendBatch {
            source: self.config.name.clone(),
            observer: self.config.name.clone(),
            seen_at: Timestamp::now(),
            events,
            rejects: Vec::new(),
            checkpoint: None,
        };
        let outcome = store.append(batch).await?;
        let accepted = outcome
            .items
            .iter()
            .filter(|i| matches!(i, AppendItem::Accepted(_)))
            .count();
        Ok(IngestReply {
            accepted,
            duplicates: ids.len() - accepted,
            ids,
        })
    }
}
