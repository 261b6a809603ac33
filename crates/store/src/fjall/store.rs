//! [`FjallStore`]: opening the database, starting the writer thread, and the store's three roles
//! ([`Log`], [`DeliveryState`], [`Catalog`]).

use super::keys::{self, Tables};
use super::prepare;
use super::writer::{Cas, Reply, Request, Writer, backend};
use async_trait::async_trait;
use fjall::Database;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info};
use tributary_core::catalog::{Catalog, Conflict, Entry, Expect, RecordKind, Version, Versioned};
use tributary_core::store::{
    AppendBatch, AppendOutcome, AttemptRecord, Checkpoint, DeadLetter, DeliveryUpdate, SubscriptionState,
};
use tributary_core::{DeliveryState, EventId, Log, Observation, Reject, Seq, StoreError, StoredEvent};

/// Requests that may wait for the writer; when full, writers wait (backpressure on ingest).
const QUEUE: usize = 1024;

/// Why the embedded store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Another process (or another store in this process) holds the directory.
    #[error(
        "data directory {} is locked by another process; stop the other tributary using it or point this one at another directory",
        path.display()
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// The engine could not open or recover the directory.
    #[error(
        "cannot open data directory {} ({source}); check that it is a directory this user can read and write",
        path.display()
    )]
    Engine {
        /// The data directory.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: fjall::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the store writer thread: {0}")]
    Thread(#[source] std::io::Error),
}

impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        StoreError::Backend {
            op: "open",
            source: Box::new(e),
        }
    }
}

/// State shared by the store handle, its readers and the writer thread.
pub(crate) struct Shared {
    pub db: Database,
    pub tables: Tables,
    /// Set once, by the writer, when a durable write fails.
    pub poison: OnceLock<String>,
    last_seq: AtomicU64,
    seq_tx: watch::Sender<Seq>,
    /// Makes the next commit fail, to exercise the poison path.
    #[cfg(test)]
    pub fail_next_commit: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Publishes the last durable sequence number.
    pub fn publish_seq(&self, seq: Seq) {
        self.last_seq.store(seq, Ordering::Release);
        self.seq_tx.send_replace(seq);
    }
}

/// The embedded store: one fjall database in a directory, written by one group-commit thread.
///
/// Dropping it waits for the writer thread to finish its current group and releases the directory,
/// so the same directory can be opened again in the same process.
pub struct FjallStore {
    pub(super) shared: Arc<Shared>,
    tx: Option<mpsc::Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl FjallStore {
    /// Opens (or creates) the store in `path` and recovers the last sequence number.
    ///
    /// Blocking: recovery replays the journal, so async callers may want `spawn_blocking`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let engine = |e: fjall::Error| match e {
            fjall::Error::Locked => OpenError::Locked { path: path.to_owned() },
            source => OpenError::Engine {
                path: path.to_owned(),
                source,
            },
        };
        let db = Database::builder(path).open().map_err(engine)?;
        let tables = Tables::open(&db).map_err(engine)?;
        super::migrate::scope_ids(&db, &tables)?;
        super::migrate::catalog(&db, &tables)?;
        let last_seq = match tables.events.last_key_value() {
            Some(kv) => keys::tail_u64(&kv.key().map_err(|e| backend("open", e))?)?,
            None => 0,
        };
        let shared = Arc::new(Shared {
            db,
            tables,
            poison: OnceLock::new(),
            last_seq: AtomicU64::new(last_seq),
            seq_tx: watch::channel(last_seq).0,
            #[cfg(test)]
            fail_next_commit: Default::default(),
        });
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer::new(shared.clone(), rx, last_seq);
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run())
            .map_err(OpenError::Thread)?;
        info!(path = %path.display(), last_seq, "store opened");
        Ok(Self {
            shared,
            tx: Some(tx),
            writer: Some(writer),
            path: path.to_owned(),
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the next non-empty commit fail as a disk error would.
    #[cfg(test)]
    pub(crate) fn fail_next_commit(&self) {
        self.shared.fail_next_commit.store(true, Ordering::SeqCst);
    }

    async fn request<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, StoreError> {
        if let Some(reason) = self.shared.poison.get() {
            return Err(StoreError::Poisoned(reason.clone()));
        }
        let tx = self.tx.as_ref().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        if tx.send(make(reply)).await.is_err() {
            return Err(self.gone());
        }
        answer.await.unwrap_or_else(|_| Err(self.gone()))
    }

    /// The error for a writer that is no longer there.
    fn gone(&self) -> StoreError {
        match self.shared.poison.get() {
            Some(reason) => StoreError::Poisoned(reason.clone()),
            None => StoreError::Closed,
        }
    }

    /// Runs a scan off the async runtime.
    async fn blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Shared) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || read(&shared))
            .await
            .map_err(|e| StoreError::Backend {
                op: "read",
                source: Box::new(e),
            })?
    }
}

impl Drop for FjallStore {
    fn drop(&mut self) {
        // The writer drains what is queued, then sees the channel closed and returns.
        drop(self.tx.take());
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            error!(path = %self.path.display(), "store writer thread panicked");
        }
    }
}

#[async_trait]
impl Log for FjallStore {
    async fn append(&self, batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        // Encoding a large batch takes longer than a task should hold the runtime.
        let prepared = if batch.events.len() > 64 {
            tokio::task::spawn_blocking(move || prepare::append(batch))
                .await
                .map_err(|e| StoreError::Backend {
                    op: "append",
                    source: Box::new(e),
                })??
        } else {
            prepare::append(batch)?
        };
        self.request(|reply| Request::Append(prepared, reply)).await
    }

    async fn read_from(&self, from: Seq, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.blocking(move |s| s.read_from(from, limit)).await
    }

    async fn get(&self, source: &str, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        self.shared.get(source, id)
    }

    async fn get_seq(&self, seq: Seq) -> Result<Option<StoredEvent>, StoreError> {
        self.shared.get_seq(seq)
    }

    async fn observations(&self, source: &str, id: &EventId) -> Result<Vec<Observation>, StoreError> {
        self.shared.observations(source, id)
    }

    async fn checkpoints(&self, source: &str) -> Result<Vec<Checkpoint>, StoreError> {
        self.shared.checkpoints(source)
    }

    async fn rejects(&self, source: &str, limit: usize) -> Result<Vec<Reject>, StoreError> {
        let source = source.to_owned();
        self.blocking(move |s| s.rejects(&source, limit)).await
    }

    fn last_seq(&self) -> Seq {
        self.shared.last_seq.load(Ordering::Acquire)
    }

    fn watch_seq(&self) -> watch::Receiver<Seq> {
        self.shared.seq_tx.subscribe()
    }

    async fn meta_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.shared.meta_prefix(prefix)
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.shared.get_meta(key)
    }

    async fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        // Meta values are rare and precious (generated secrets, API-created objects): synced.
        let ops = prepare::meta(key, value);
        self.request(|reply| Request::Ops(ops, true, reply)).await
    }

    fn poisoned(&self) -> Option<String> {
        self.shared.poison.get().cloned()
    }
}

#[async_trait]
impl DeliveryState for FjallStore {
    async fn subscription_state(&self, subscription: &str) -> Result<SubscriptionState, StoreError> {
        let sub = subscription.to_owned();
        self.blocking(move |s| s.subscription_state(&sub)).await
    }

    async fn commit_delivery(&self, subscription: &str, update: DeliveryUpdate) -> Result<(), StoreError> {
        let ops = prepare::delivery(subscription, &update)?;
        self.request(|reply| Request::Ops(ops, false, reply)).await
    }

    async fn attempts(&self, subscription: &str, seq: Seq) -> Result<Vec<AttemptRecord>, StoreError> {
        self.shared.attempts(subscription, seq)
    }

    async fn attempts_from(
        &self,
        subscription: &str,
        from: Seq,
        limit: usize,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        self.shared.attempts_from(subscription, from, limit)
    }

    async fn dead_letters(&self, subscription: &str, from: Seq, limit: usize) -> Result<Vec<DeadLetter>, StoreError> {
        let sub = subscription.to_owned();
        self.blocking(move |s| s.dead_letters(&sub, from, limit)).await
    }
}

#[async_trait]
impl Catalog for FjallStore {
    async fn record(&self, kind: RecordKind, name: &str) -> Result<Option<Versioned>, StoreError> {
        Ok(match self.shared.catalog_entry(kind, name)? {
            Some((version, Some(value))) => Some(Versioned { version, value }),
            _ => None,
        })
    }

    async fn records(&self, kind: RecordKind, prefix: &str) -> Result<Vec<Entry>, StoreError> {
        let prefix = prefix.to_owned();
        self.blocking(move |s| s.records(kind, &prefix)).await
    }

    async fn compare_and_set(
        &self,
        kind: RecordKind,
        name: &str,
        expect: Expect,
        value: Option<&str>,
    ) -> Result<Result<Version, Conflict>, StoreError> {
        let cas = Cas {
            kind,
            name: name.to_owned(),
            expect,
            value: value.map(str::to_owned),
        };
        self.request(|reply| Request::Cas(cas, reply)).await
    }
}
