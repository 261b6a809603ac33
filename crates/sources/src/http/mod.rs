//! The `http` source: events pushed to `POST /v1/sources/{name}/events`.
//!
//! The API crate serves the route; this module owns the config, the node's ingest memory budget, and
//! turns a request body into one atomic [`AppendBatch`](tributary_core::store::AppendBatch). The answer
//! (202) is sent only once the batch is durable, so a client that got 202 never needs to resend.

mod budget;
mod config;
mod source;

pub use budget::{MemoryBudget, Refusal, Reservation};
pub use config::HttpSourceConfig;
pub use source::{HttpIngestError, HttpSource, IngestReply};
