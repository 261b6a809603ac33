//! Live status of each source: what it stored, when it last made progress, whether it runs.
//!
//! Sources write through an [`ObservedStore`], which counts every append (and emits the standard source
//! metrics) before handing it to the real store, so no source has to remember to report.

use crate::metrics;
use async_trait::async_trait;
use serde::Serialize;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Instant;
use tokio::sync::watch;
use tributary_core::store::{AppendBatch, AppendItem, AppendOutcome, Checkpoint};
use tributary_core::{EventId, Log, Observation, Reject, Seq, StoreError, StoredEvent, Timestamp};

/// Counters of one source.
#[derive(Debug, Default)]
pub struct SourceStatus {
    /// Events stored.
    pub stored: AtomicU64,
    /// Duplicates seen.
    pub duplicates: AtomicU64,
    /// Input rejected.
    pub rejected: AtomicU64,
    /// Failed appends.
    pub errors: AtomicU64,
    /// Last append time, microseconds since the epoch (0: never).
    pub last_event_at: AtomicI64,
    /// The source task runs (push sources: always).
    pub running: AtomicBool,
    /// When the source started, microseconds since the epoch (stall times count from here at first).
    pub started_at: AtomicI64,
    /// Why the source task stopped, if it did.
    pub failure: Mutex<Option<String>>,
    /// Another node holds the source's lease and runs it (several nodes on one store).
    pub standby: AtomicBool,
    /// Events stored per second, over the last few seconds.
    rate: Mutex<(Option<Instant>, u64, f64)>,
}

/// A snapshot for JSON.
#[derive(Clone, Debug, Serialize)]
pub struct SourceSnapshot {
    /// Running (pull sources) or serving (push sources).
    pub connected: bool,
    /// Events stored since start.
    pub stored: u64,
    /// Duplicates since start.
    pub duplicates: u64,
    /// Rejected input since start.
    pub rejected: u64,
    /// Failed appends since start.
    pub errors: u64,
    /// Last time an append succeeded.
    pub last_event_at: Option<Timestamp>,
    /// Recent events stored per second.
    pub events_per_sec: f64,
    /// No progress within the configured `stall_after_ms`.
    pub stalled: bool,
    /// Why the source stopped.
    pub failure: Option<String>,
    /// Another node holds the source's lease and runs it (several nodes on one store).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub standby: bool,
}

impl SourceStatus {
    fn record(&self, stored: u64, duplicates: u64, rejected: u64) {
        self.stored.fetch_add(stored, Relaxed);
        self.duplicates.fetch_add(duplicates, Relaxed);
        self.rejected.fetch_add(rejected, Relaxed);
        self.last_event_at.store(Timestamp::now().0, Relaxed);
        let mut rate = self.rate.lock().expect("rate lock");
        let now = Instant::now();
        match rate.0 {
            Some(start) if now.duration_since(start).as_secs_f64() >= 1.0 => {
                let secs = now.duration_since(start).as_secs_f64();
                let current = (rate.1 + stored) as f64 / secs;
                // An exponentially weighted rate: recent seconds count most.
                rate.2 = if rate.2 == 0.0 {
                    current
                } else {
                    0.5 * rate.2 + 0.5 * current
                };
                *rate = (Some(now), 0, rate.2);
            }
            Some(_) => rate.1 += stored,
            None => *rate = (Some(now), stored, 0.0),
        }
    }

    /// A snapshot; `stall_after` is the source's configured stall time.
    pub fn snapshot(&self, stall_after: Option<std::time::Duration>) -> SourceSnapshot {
        let last = self.last_event_at.load(Relaxed);
        let last_event_at = (last > 0).then_some(Timestamp(last));
        let running = self.running.load(Relaxed);
        let progress = Timestamp(last.max(self.started_at.load(Relaxed)));
        let since_progress = Timestamp::now().micros_since(progress);
        let stalled = running && stall_after.is_some_and(|d| since_progress as u128 > d.as_micros());
        let (at, _, rate) = *self.rate.lock().expect("rate lock");
        let idle = at.is_none_or(|t| t.elapsed().as_secs() > 5);
        SourceSnapshot {
            connected: running,
            stored: self.stored.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            errors: self.errors.load(Relaxed),
            last_event_at,
            events_per_sec: if idle { 0.0 } else { (rate * 10.0).round() / 10.0 },
            stalled,
            failure: self.failure.lock().expect("failure lock").clone(),
            standby: self.standby.load(Relaxed),
        }
    }
}

/// The log as one source sees it: appends are counted and measured, everything else passes through. A
/// source gets the [`Log`] only, never the delivery state or the catalog.
pub struct ObservedStore {
    inner: Arc<dyn Log>,
    source: String,
    status: Arc<SourceStatus>,
    fence: Option<tributary_core::cluster::Fence>,
}

impl ObservedStore {
    /// Wraps `inner` for `source`.
    pub fn new(inner: Arc<dyn Log>, source: &str, status: Arc<SourceStatus>) -> Self {
        Self {
            inner,
            source: source.to_owned(),
            status,
            fence: None,
        }
    }

    /// Every append made under this lease (several nodes on one store: see [`tributary_core::cluster`]).
    pub fn fenced(mut self, fence: tributary_core::cluster::Fence) -> Self {
        self.fence = Some(fence);
        self
    }
}

#[async_trait]
impl Log for ObservedStore {
    async fn append(&self, mut batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        if self.fence.is_some() {
            batch.fence = self.fence.clone();
        }
        if batch.source != self.source {
            // A source writes its own events only: a bug in one cannot put events into another's log.
            let refused = format!(
                "source {:?} tried to append events of source {:?}; a source appends only its own",
                self.source, batch.source
            );
            self.status.errors.fetch_add(1, Relaxed);
            metrics::source_error(&self.source, "store");
            return Err(StoreError::Backend {
                op: "append",
                source: refused.into(),
            });
        }
        let rejected = batch.rejects.len();
        let occurred: Vec<Option<i64>> = batch.events.iter().map(|e| e.occurred_at.map(|t| t.0)).collect();
        let started = Instant::now();
        match self.inner.append(batch).await {
            Ok(outcome) => {
                let (accepted, duplicates) = (outcome.accepted(), outcome.duplicates());
                let new: Vec<i64> = (outcome.items.iter().zip(&occurred))
                    .filter_map(|(item, at)| at.filter(|_| matches!(item, AppendItem::Accepted(_))))
                    .collect();
                metrics::source_stored_ages(&self.source, Timestamp::now().0, &new);
                self.status.record(accepted as u64, duplicates as u64, rejected as u64);
                metrics::source_append(&self.source, accepted, duplicates, rejected, started.elapsed());
                Ok(outcome)
            }
            Err(e) => {
                self.status.errors.fetch_add(1, Relaxed);
                metrics::source_error(&self.source, "store");
                Err(e)
            }
        }
    }
    async fn read_from(&self, from: Seq, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.read_from(from, limit).await
    }
    async fn get(&self, source: &str, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        self.inner.get(source, id).await
    }
    async fn get_seq(&self, seq: Seq) -> Result<Option<StoredEvent>, StoreError> {
        self.inner.get_seq(seq).await
    }
    async fn observations(&self, source: &str, id: &EventId) -> Result<Vec<Observation>, StoreError> {
        self.inner.observations(source, id).await
    }
    async fn checkpoints(&self, source: &str) -> Result<Vec<Checkpoint>, StoreError> {
        self.inner.checkpoints(source).await
    }
    async fn rejects(&self, source: &str, limit: usize) -> Result<Vec<Reject>, StoreError> {
        self.inner.rejects(source, limit).await
    }
    fn last_seq(&self) -> Seq {
        self.inner.last_seq()
    }
    fn watch_seq(&self) -> watch::Receiver<Seq> {
        self.inner.watch_seq()
    }
    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.inner.get_meta(key).await
    }
    async fn meta_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.inner.meta_prefix(prefix).await
    }
    async fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.inner.put_meta(key, value).await
    }
    fn poisoned(&self) -> Option<String> {
        self.inner.poisoned()
    }
}
