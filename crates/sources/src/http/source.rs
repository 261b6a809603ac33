//! Turning an HTTP request body into one durable append.

use super::{HttpSourceConfig, Refusal, Reservation};
use crate::json_event::{BodyError, ItemError, parse_body_within};
use serde::Serialize;
use tributary_core::NewEvent;
use tributary_core::store::{AppendBatch, AppendItem};
use tributary_core::{EventId, Log, StoreError, Timestamp};

/// A push source served by the API.
#[derive(Clone, Debug)]
pub struct HttpSource {
    name: String,
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
    Invalid(ItemError),
    /// Over one of the source's limits (413).
    #[error(transparent)]
    TooLarge(ItemError),
    /// The decoded events do not fit in the node's ingest memory budget (429 or 413).
    #[error("the decoded events do not fit in the node's ingest memory budget")]
    OverBudget(Refusal),
    /// The store could not take the batch (503).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl HttpSource {
    /// The source `name` with its config.
    pub fn new(name: &str, config: HttpSourceConfig) -> Self {
        Self {
            name: name.to_owned(),
            config,
        }
    }

    /// The source's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Largest accepted body.
    pub fn max_body_bytes(&self) -> usize {
        self.config.max_body_bytes
    }

    /// The source's config.
    pub fn config(&self) -> &HttpSourceConfig {
        &self.config
    }

    /// Validates the body, event by event, within the source's limits; each decoded event's memory is
    /// added to `reservation`. CPU-bound: call it off the async runtime for large bodies.
    pub fn parse(&self, body: &[u8], reservation: &mut Reservation) -> Result<Vec<NewEvent>, HttpIngestError> {
        let mut refused = None;
        let parsed = parse_body_within(body, &self.config.event_limits(), &mut |n| match reservation.grow(n) {
            Ok(()) => true,
            Err(r) => {
                refused = Some(r);
                false
            }
        });
        match parsed {
            Ok(events) => Ok(events),
            Err(BodyError::Invalid(e)) => Err(HttpIngestError::Invalid(e)),
            Err(BodyError::TooLarge(e)) => Err(HttpIngestError::TooLarge(e)),
            Err(BodyError::OverBudget) => Err(HttpIngestError::OverBudget(refused.unwrap_or(Refusal::Busy))),
        }
    }

    /// Unless `dry_run`, appends the events atomically and durably.
    pub async fn append(
        &self,
        store: &dyn Log,
        events: Vec<NewEvent>,
        dry_run: bool,
    ) -> Result<IngestReply, HttpIngestError> {
        let ids: Vec<EventId> = events.iter().map(|e| e.id).collect();
        if dry_run {
            return Ok(IngestReply {
                accepted: 0,
                duplicates: 0,
                ids,
            });
        }
        let batch = AppendBatch {
            source: self.name.clone(),
            observer: self.name.clone(),
            seen_at: Timestamp::now(),
            events,
            rejects: Vec::new(),
            checkpoint: None,
            meta: Vec::new(),
            fence: None,
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
