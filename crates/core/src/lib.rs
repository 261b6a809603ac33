//! Types, traits and errors shared by every tributary crate. No I/O happens here.
//!
//! - [`id`]: [`EventId`], the 32-byte content address of an event, and the canonical JSON used to derive ids.
//! - [`time`]: [`Timestamp`], microseconds since the Unix epoch, shown as RFC 3339.
//! - [`event`]: [`NewEvent`] (what a source hands to ingest), [`StoredEvent`] (what the log holds),
//!   [`Observation`] and [`Reject`].
//! - [`filter`]: the subscription filter language (kind patterns, sources, keys, predicates on `data`).
//! - [`store`]: the [`Store`] every backend implements, in three roles ([`Log`], [`DeliveryState`],
//!   [`Catalog`]), with its batch and delivery-state types; [`catalog`]: versioned records changed by
//!   compare-and-set.
//! - [`cluster`]: the leases by which several nodes sharing one store split the work, and the
//!   [`cluster::Fence`] that keeps a node that lost its lease from writing.
//! - [`delivery`]: the [`Sink`] trait and the explicit [`DeliveryStatus`] of one attempt.
//! - [`source`]: the [`Source`] trait and its [`SourceContext`].
//! - [`url`]: a connection URL without its password, for logs and views ([`url::redacted_url`]).
#![deny(missing_docs)]

pub mod catalog;
pub mod cluster;
pub mod delivery;
pub mod event;
pub mod filter;
pub mod id;
pub mod source;
pub mod store;
pub mod time;
pub mod url;

pub use catalog::{Catalog, Expect, RecordKind};
pub use delivery::{AttemptReport, Delivery, DeliveryStatus, Sink};
pub use event::{NewEvent, Observation, Reject, StoredEvent};
pub use filter::{Filter, FilterConfig, FilterError};
pub use id::EventId;
pub use source::{Lag, Source, SourceContext, SourceError, SourceReport};
pub use store::{DeliveryState, Log, Seq, Store, StoreError};
pub use time::Timestamp;
