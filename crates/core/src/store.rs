//! The [`Store`] traits: the [`Log`] (events, dedup index, checkpoints, source state), the
//! [`DeliveryState`] and the [`Catalog`], which a backend implements each.
//!
//! Invariants every backend keeps:
//! - [`Log::append`] is atomic: the new events, their observations, the rejects and the source checkpoint
//!   are all durable, or none is. It answers only once they are durable.
//! - An id is stored once. Appending a known id adds an observation and answers [`AppendItem::Duplicate`].
//! - Sequence numbers start at 1 and strictly increase with no gaps.
//! - [`DeliveryState::commit_delivery`] is atomic: a subscription's cursor never passes an event whose delivery is
//!   neither done nor recorded as pending or dead.
//! - After a failed durable write the store is poisoned: every later write fails with [`StoreError::Poisoned`].

use crate::catalog::Catalog;
use crate::{EventId, NewEvent, Observation, Reject, StoredEvent, Timestamp};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A position in the log.
pub type Seq = u64;

/// One atomic write from a source.
#[derive(Clone, Debug, Default)]
pub struct AppendBatch {
    /// The source name (recorded on new events).
    pub source: String,
    /// Who saw these events (collector, relay, or the source name).
    pub observer: String,
    /// When they were seen.
    pub seen_at: Timestamp,
    /// The events, in source order.
    pub events: Vec<NewEvent>,
    /// Input that could not become events, kept for inspection.
    pub rejects: Vec<Reject>,
    /// The source position this batch brings the source to, committed with it.
    pub checkpoint: Option<Checkpoint>,
    /// State entries (see [`Log::put_meta`]) put (`Some`) or removed (`None`) in the same atomic write:
    /// a source's own state that must move together with its checkpoint (Lightning's updates waiting
    /// for their announcement). Applied in order; the later of two changes of one key wins.
    pub meta: Vec<(String, Option<String>)>,
    /// The lease this write is made under, on a store shared by several nodes (see
    /// [`crate::cluster`]): refused with [`StoreError::LeaseLost`] unless it is still held.
    pub fence: Option<crate::cluster::Fence>,
}

/// A source position for one of its partitions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The partition (a file path, a chain id, a relay URL). Empty for a single-partition source.
    pub partition: String,
    /// The position, in the source's own notation.
    pub position: String,
}

/// What became of one event of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendItem {
    /// New: stored at this sequence number.
    Accepted(Seq),
    /// Known already (stored earlier at this sequence number, or earlier in the same batch).
    Duplicate(Seq),
}

/// The answer to [`Log::append`], one item per event in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Per event, in batch order.
    pub items: Vec<AppendItem>,
}

impl AppendOutcome {
    /// How many events were new.
    pub fn accepted(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i, AppendItem::Accepted(_)))
            .count()
    }
    /// How many were known already.
    pub fn duplicates(&self) -> usize {
        self.items.len() - self.accepted()
    }
}

/// A delivery waiting for a retry (or, with per-key ordering, for an earlier event of its key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The event's sequence number.
    pub seq: Seq,
    /// The event's ordering key, if any.
    pub key: Option<String>,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not before this time.
    pub due_at: Timestamp,
    /// Attempts recorded in earlier rounds (before a replay gave the event a fresh set of retries):
    /// attempt numbers continue from here so no attempt record is overwritten.
    #[serde(default)]
    pub prior_attempts: u32,
}

/// The recorded outcome of one attempt: the sink's [`DeliveryStatus`](crate::DeliveryStatus), except that a
/// retriable failure after which the retry schedule was used up is recorded as final (`exhausted`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Accepted by the receiver.
    Delivered,
    /// Failed in a way worth retrying; a retry was scheduled.
    Retriable,
    /// Failed in a way worth retrying, but it was the last attempt the schedule allowed: dead-lettered.
    Exhausted,
    /// Failed for good (dead-lettered, or held and paused after a 410 Gone).
    Rejected,
}

impl AttemptOutcome {
    /// The outcome as the API, the CLI and the `outcome` metric label spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retriable => "retriable",
            Self::Exhausted => "exhausted",
            Self::Rejected => "rejected",
        }
    }
}

impl From<crate::DeliveryStatus> for AttemptOutcome {
    fn from(s: crate::DeliveryStatus) -> Self {
        match s {
            crate::DeliveryStatus::Delivered => Self::Delivered,
            crate::DeliveryStatus::Retriable => Self::Retriable,
            // Recorded as rejected; the worker holds the event and pauses the subscription.
            crate::DeliveryStatus::Rejected | crate::DeliveryStatus::Pause => Self::Rejected,
        }
    }
}

/// A recorded delivery attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The event's sequence number.
    pub seq: Seq,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it started.
    pub at: Timestamp,
    /// The outcome class.
    pub outcome: AttemptOutcome,
    /// HTTP status (or another sink's status code), if one came back.
    pub status: Option<u16>,
    /// How long it took.
    pub latency_us: u64,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// A delivery that exhausted its retries or failed permanently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The event's sequence number.
    pub seq: Seq,
    /// The event's id.
    pub event_id: EventId,
    /// Attempts made.
    pub attempts: u32,
    /// The last status, if any.
    pub last_status: Option<u16>,
    /// The last error.
    pub error: String,
    /// The start of the last response body (at most 1 KiB).
    pub response_excerpt: Option<String>,
    /// When it was dead-lettered.
    pub dead_at: Timestamp,
}

/// The durable delivery state of a subscription, as loaded at start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionState {
    /// Every event with `seq <= cursor` is delivered, dead, filtered out, or in `pending`.
    pub cursor: Seq,
    /// Paused (by an operator, or by a `410 Gone`).
    pub paused: bool,
    /// Deliveries waiting, in sequence order.
    pub pending: Vec<Pending>,
}

/// One atomic change to a subscription's delivery state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryUpdate {
    /// The new cursor, if it moved.
    pub cursor: Option<Seq>,
    /// A new paused flag, if it changed.
    pub paused: Option<bool>,
    /// Attempts to record.
    pub attempts: Vec<AttemptRecord>,
    /// Pending entries to insert or replace.
    pub pending_put: Vec<Pending>,
    /// Pending entries to remove (by seq).
    pub pending_remove: Vec<Seq>,
    /// Dead letters to add.
    pub dead_letters: Vec<DeadLetter>,
    /// Dead letters to remove (by seq), e.g. when replayed.
    pub dead_remove: Vec<Seq>,
    /// The lease this update is made under, on a store shared by several nodes (see
    /// [`crate::cluster`]): refused with [`StoreError::LeaseLost`] unless it is still held.
    pub fence: Option<crate::cluster::Fence>,
}

impl DeliveryUpdate {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.cursor.is_none()
            && self.paused.is_none()
            && self.attempts.is_empty()
            && self.pending_put.is_empty()
            && self.pending_remove.is_empty()
            && self.dead_letters.is_empty()
            && self.dead_remove.is_empty()
    }
}

/// Errors of a store backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A durable write failed earlier; the store refuses writes until restarted.
    #[error("store is poisoned after a failed write ({0}); restart tributary after fixing the disk")]
    Poisoned(String),
    /// An I/O or engine error.
    #[error("store {op} failed: {source}")]
    Backend {
        /// What the store was doing.
        op: &'static str,
        /// The backend's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Stored bytes could not be decoded.
    #[error("store holds a corrupt record in {what}: {detail}")]
    Corrupt {
        /// Which record.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The store is shutting down.
    #[error("store is closed")]
    Closed,
    /// A write was made under a lease this node no longer holds (see [`crate::cluster`]).
    #[error(
        "node {holder:?} no longer holds the lease {lease:?} (it expired and another node may have taken it); the write was refused and the work moves to the lease's holder"
    )]
    LeaseLost {
        /// The lease.
        lease: String,
        /// The node that wrote.
        holder: String,
    },
}

/// The log of a store: events with their dedup index and observations, source checkpoints and rejects,
/// and the small state entries of sources and services (`get_meta`, `put_meta`, `meta_prefix`: a
/// source's own entries, such as Lightning's waiting updates, written with its batches through
/// [`AppendBatch::meta`]; not the [`Catalog`]).
#[async_trait]
pub trait Log: Send + Sync + 'static {
    /// Appends a batch atomically and durably (see the module invariants).
    async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError>;
    /// Up to `limit` events with `seq >= from`, in order.
    async fn read_from(&self, from: Seq, limit: usize) -> Result<Vec<StoredEvent>, StoreError>;
    /// The event of `source` with this id (ids are unique per source, ADR 0005).
    async fn get(&self, source: &str, id: &EventId) -> Result<Option<StoredEvent>, StoreError>;
    /// The event at this sequence number.
    async fn get_seq(&self, seq: Seq) -> Result<Option<StoredEvent>, StoreError>;
    /// Who saw the event, ordered by observer.
    async fn observations(&self, source: &str, id: &EventId) -> Result<Vec<Observation>, StoreError>;
    /// A source's checkpoints, by partition.
    async fn checkpoints(&self, source: &str) -> Result<Vec<Checkpoint>, StoreError>;
    /// A source's most recent rejects, newest last, at most `limit`.
    async fn rejects(&self, source: &str, limit: usize) -> Result<Vec<Reject>, StoreError>;
    /// The highest sequence number written (0 when empty).
    fn last_seq(&self) -> Seq;
    /// Notified with the last sequence number after every durable append.
    fn watch_seq(&self) -> tokio::sync::watch::Receiver<Seq>;
    /// A state entry of a source or service.
    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Every state entry whose key starts with `prefix`, in key order.
    async fn meta_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Writes a state entry durably.
    async fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError>;
    /// Why the store refuses writes, if it does.
    fn poisoned(&self) -> Option<String>;
    /// Whether the store can be written now, asked by `/health`: `Err` with the reason when it is
    /// poisoned or its server does not answer. Answers within a few seconds.
    async fn check(&self) -> Result<(), String> {
        match self.poisoned() {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }
    /// The leases of a store several nodes share; `None` (the default) for a store one node owns.
    fn leases(&self) -> Option<&dyn crate::cluster::Leases> {
        None
    }
}

impl StoreError {
    /// Whether the same write may succeed later without a restart: the backend failed (a server that is
    /// down, a connection that broke) and `store` is not poisoned. Poisoned and closed stores, and
    /// corrupt records, are not retried.
    pub fn is_transient(&self, store: &(impl Log + ?Sized)) -> bool {
        matches!(self, StoreError::Backend { .. }) && store.poisoned().is_none()
    }
}

/// The delivery state of a store: per subscription, its cursor, pending retries, attempts and dead
/// letters.
#[async_trait]
pub trait DeliveryState: Send + Sync + 'static {
    /// The delivery state of a subscription (cursor 0 and nothing pending when new).
    async fn subscription_state(&self, subscription: &str) -> Result<SubscriptionState, StoreError>;
    /// Applies a delivery update atomically.
    async fn commit_delivery(&self, subscription: &str, update: DeliveryUpdate) -> Result<(), StoreError>;
    /// Every attempt recorded for one event of a subscription.
    async fn attempts(&self, subscription: &str, seq: Seq) -> Result<Vec<AttemptRecord>, StoreError>;
    /// Attempts of a subscription for events with `seq >= from`, in (seq, attempt) order, at most `limit`.
    async fn attempts_from(
        &self,
        subscription: &str,
        from: Seq,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StoreError>;
    /// Dead letters of a subscription with `seq >= from`, at most `limit`.
    async fn dead_letters(&self, subscription: &str, from: Seq, limit: usize) -> Result<Vec<DeadLetter>, StoreError>;
}

/// A storage backend: embedded (fjall), in-memory, later PostgreSQL. It is its three roles, the
/// [`Log`], the [`DeliveryState`] and the [`Catalog`], each implemented on its own; code that needs
/// one role may take just that one.
pub trait Store: Log + DeliveryState + Catalog {}

impl<T: Log + DeliveryState + Catalog> Store for T {}
