//! The running `postgres` source: one replication session at a time, reconnecting with backoff.
//!
//! Durability: the events of a transaction are appended with the checkpoint (partition = the slot name,
//! position = the transaction's commit LSN) in one atomic write, and only after the store answered is the
//! commit's end LSN reported to the server as flushed. A crash at any moment therefore leaves the server
//! resending from a transaction whose events are either all stored (and deduplicated by their ids) or not
//! at all. Consecutive transactions that are already waiting are appended together (each whole); a
//! transaction of more than `max_batch_events` changes is appended in pieces, the checkpoint moving only
//! with its last piece.

use super::PostgresSourceConfig;
use super::changes::Changes;
use super::client::{Frame, Session};
use super::connect::Target;
use super::pgoutput::Message;
use super::pgoutput::{self, Lsn};
use super::setup::{self, SlotState};
use super::snapshot::{self, Failed, Resume};
use super::spool::Spool;
use async_trait::async_trait;
use std::collections::HashMap;
use std::time::Duration;
use tributary_core::store::{AppendBatch, Checkpoint};
use tributary_core::{NewEvent, Reject, Source, SourceContext, SourceError, Timestamp};

/// The report part of the replication session (a problem while it is lost).
const REPLICATION: &str = "replication";

/// A running `postgres` source.
pub struct PostgresSource {
    config: PostgresSourceConfig,
}

impl PostgresSource {
    /// A source from its config.
    pub fn new(config: PostgresSourceConfig) -> Self {
        Self { config }
    }
}

/// How a session ended.
enum End {
    /// Shutdown was requested.
    Shutdown,
    /// Worth reconnecting; `streamed`: the session got as far as streaming (reset the backoff).
    Retry { message: String, streamed: bool },
    /// An operator must act.
    Fatal(String),
    /// The store refused a write.
    Store(tributary_core::StoreError),
}

/// What a session has read and not yet appended.
#[derive(Default)]
struct Pending {
    events: Vec<NewEvent>,
    rejects: Vec<Reject>,
    /// The last complete transaction read: (commit LSN, end LSN).
    committed: Option<(Lsn, Lsn)>,
    /// Where the open transaction's events and rejects start.
    open_events: usize,
    open_rejects: usize,
}

#[async_trait]
impl Source for PostgresSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let io = |message: String| SourceError::Io {
            source_name: cx.name.clone(),
            message,
        };
        let target = Target::resolve(&self.config).map_err(io)?;
        let stored = cx
            .store
            .checkpoints(&cx.name)
            .await
            .map_err(|error| SourceError::Store {
                source_name: cx.name.clone(),
                error,
            })?
            .into_iter()
            .find(|c| c.partition == self.config.slot)
            .map(|c| snapshot::resume(&c.position));
        // A snapshot that did not finish is taken again (with `snapshot = true`).
        let mut interrupted = stored == Some(Resume::Interrupted);
        let mut checkpoint = match stored {
            Some(Resume::At(lsn)) => Some(lsn),
            _ => None,
        };
        tracing::info!(source = %cx.name, url = %super::redacted(&self.config.url), slot = %self.config.slot, checkpoint = ?checkpoint.map(|l| l.to_string()), "postgres source starting");
        // The slot's health, on its own session, for as long as this source runs.
        let monitor = cx.shutdown.child_token();
        let _stop_monitor = monitor.clone().drop_guard();
        tokio::spawn(super::monitor::run(
            self.config.clone(),
            target.clone(),
            cx.report.clone(),
            monitor,
        ));
        let max_backoff = Duration::from_millis(self.config.reconnect_max_ms);
        let mut backoff = Duration::from_millis(100);
        loop {
            if cx.is_shutting_down() {
                return Ok(());
            }
            match self.session(&cx, &target, &mut checkpoint, &mut interrupted).await {
                End::Shutdown => return Ok(()),
                End::Fatal(message) => return Err(io(message)),
                End::Store(error) => {
                    return Err(SourceError::Store {
                        source_name: cx.name.clone(),
                        error,
                    });
                }
                End::Retry { message, streamed } => {
                    if streamed {
                        backoff = Duration::from_millis(100);
                    }
                    tracing::warn!(source = %cx.name, error = %message, retry_in_ms = backoff.as_millis() as u64, "postgres source lost its session; reconnecting");
                    cx.report.problem(
                        REPLICATION,
                        Some(format!(
                            "{message}; reconnecting (every {} ms at most)",
                            max_backoff.as_millis()
                        )),
                    );
                    tokio::select! {
                        _ = cx.shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(max_backoff);
                }
            }
        }
    }
}

impl PostgresSource {
    /// One session: set up, stream, append, until an error or shutdown.
    async fn session(
        &self,
        cx: &SourceContext,
        target: &Target,
        checkpoint: &mut Option<Lsn>,
        interrupted: &mut bool,
    ) -> End {
        let config = &self.config;
        let retry = |message: String| End::Retry {
            message,
            streamed: false,
        };
        let client = match target.connect().await {
            Ok(c) => c,
            Err(e) => return retry(format!("cannot connect to {}: {e}", super::redacted(&config.url))),
        };
        // Existing rows first: on the first start, or again after a snapshot that did not finish.
        let snapshot_due = config.snapshot && checkpoint.is_none();
        let state = match setup::prepare(&client, config, checkpoint.is_some(), !snapshot_due).await {
            Ok(s) => s,
            Err(e) if e.retry => return retry(e.message),
            Err(e) => return End::Fatal(e.message),
        };
        if snapshot_due {
            let exists = matches!(state, SlotState::Exists(_));
            match snapshot::take(cx, config, target, &client, exists, *interrupted).await {
                Ok(lsn) => {
                    *checkpoint = Some(lsn);
                    *interrupted = false;
                }
                Err(Failed::Store(e)) => return End::Store(e),
                Err(Failed::Fatal(m)) => return End::Fatal(m),
                Err(Failed::Retry(m)) => {
                    // The mark is stored: the next try drops the slot and begins again.
                    *interrupted = true;
                    if cx.is_shutting_down() {
                        return End::Shutdown;
                    }
                    return retry(m);
                }
            }
        }
        if let SlotState::Exists(flushed) = &state {
            tracing::debug!(source = %cx.name, slot = %config.slot, confirmed_flush = ?flushed.map(|l| l.to_string()), "postgres source resumes its slot");
        }
        if let SlotState::Created(lsn) = state {
            let mut batch = self.batch(cx);
            if let Some(old) = *checkpoint {
                let reason = format!(
                    "replication slot {:?} was missing and was created again at {lsn} (recreate_slot = true): changes committed after {old} and before {lsn} may not have been captured",
                    config.slot
                );
                tracing::error!(source = %cx.name, slot = %config.slot, from = %old, to = %lsn, "replication slot recreated: possible gap in the captured changes");
                batch.rejects.push(Reject {
                    position: format!("slot {}", config.slot),
                    reason,
                    excerpt: String::new(),
                    at: Timestamp::now(),
                });
            }
            // The checkpoint records that this slot was captured from, so a slot that later disappears is
            // noticed.
            batch.checkpoint = Some(Checkpoint {
                partition: config.slot.clone(),
                position: lsn.to_string(),
            });
            if let Err(e) = cx.store.append(batch).await {
                return End::Store(e);
            }
            *checkpoint = Some(lsn);
        }
        let streaming = match setup::server_version(&client).await {
            Ok(v) => v >= 140_000,
            Err(e) => return retry(e.message),
        };
        let start = checkpoint.unwrap_or_default();
        let mut repl = match Session::start(target.session(&cx.name, config, start, streaming)).await {
            Ok(r) => r,
            Err(e) => return retry(format!("cannot start replication: {e}")),
        };
        tracing::info!(source = %cx.name, slot = %config.slot, %start, protocol = if streaming { 2 } else { 1 }, "postgres source streaming");
        cx.report.problem(REPLICATION, None);
        self.stream(cx, &client, &mut repl, checkpoint).await
    }

    fn batch(&self, cx: &SourceContext) -> AppendBatch {
        AppendBatch {
            source: cx.name.clone(),
            observer: cx.name.clone(),
            seen_at: Timestamp::now(),
            ..AppendBatch::default()
        }
    }

    /// Appends what is pending; then reports the last complete transaction's end as flushed.
    async fn flush(
        &self,
        cx: &SourceContext,
        repl: &Session,
        pending: &mut Pending,
        checkpoint: &mut Option<Lsn>,
    ) -> Result<(), End> {
        let committed = pending.committed.take();
        if !pending.events.is_empty() || !pending.rejects.is_empty() {
            let mut batch = self.batch(cx);
            batch.events = std::mem::take(&mut pending.events);
            batch.rejects = std::mem::take(&mut pending.rejects);
            (pending.open_events, pending.open_rejects) = (0, 0);
            batch.checkpoint = committed.map(|(commit, _)| Checkpoint {
                partition: self.config.slot.clone(),
                position: commit.to_string(),
            });
            cx.store.append(batch).await.map_err(End::Store)?;
        }
        if let Some((commit, end)) = committed {
            if pending_checkpoint_moves(checkpoint, commit) {
                *checkpoint = Some(commit);
            }
            repl.confirm(end);
        }
        Ok(())
    }

    async fn stream(
        &self,
        cx: &SourceContext,
        client: &tokio_postgres::Client,
        repl: &mut Session,
        checkpoint: &mut Option<Lsn>,
    ) -> End {
        let config = &self.config;
        let mut changes = Changes::new(config.outbox.as_ref(), config.max_event_bytes);
        let mut pending = Pending::default();
        let mut streamed = false;
        // Protocol 2: the transaction whose stream segment is open, and the spools of those in progress.
        let mut in_stream: Option<u32> = None;
        let mut spools: HashMap<u32, Spool> = HashMap::new();
        loop {
            let received = tokio::select! {
                biased;
                _ = cx.shutdown.cancelled() => {
                    // Complete transactions already read are kept; an open one is read again next time.
                    if changes.in_transaction() {
                        pending.events.truncate(pending.open_events);
                        pending.rejects.truncate(pending.open_rejects);
                    }
                    return match self.flush(cx, repl, &mut pending, checkpoint).await {
                        Ok(()) => End::Shutdown,
                        Err(e) => e,
                    };
                }
                r = repl.next() => r,
                _ = std::future::ready(()), if pending.committed.is_some() && !changes.in_transaction() => {
                    // Nothing more is waiting: append the complete transactions read so far.
                    if let Err(e) = self.flush(cx, repl, &mut pending, checkpoint).await {
                        return e;
                    }
                    continue;
                }
            };
            let frame = match received {
                Some(Ok(f)) => f,
                None => {
                    return End::Retry {
                        message: "the replication session ended".into(),
                        streamed,
                    };
                }
                Some(Err(message)) => return End::Retry { message, streamed },
            };
            streamed = true;
            let data = match frame {
                Frame::Data(d) => d,
                Frame::KeepAlive(wal_end) => {
                    // Everything before this point was read and appended: an idle slot need not keep WAL.
                    if !changes.in_transaction() && pending.committed.is_none() && pending.events.is_empty() {
                        repl.confirm(wal_end);
                    }
                    continue;
                }
            };
            let message = match pgoutput::decode(&data, in_stream.is_some()) {
                Ok(m) => m,
                Err(e) => {
                    return End::Fatal(format!(
                        "cannot decode a message of the replication stream ({e}); this is a bug or an unsupported server: report it with the server version"
                    ));
                }
            };
            let step = match message {
                Message::Begin {
                    final_lsn,
                    xid,
                    commit_time,
                } => {
                    changes.begin(final_lsn, xid, commit_time);
                    pending.open_events = pending.events.len();
                    pending.open_rejects = pending.rejects.len();
                    Ok(())
                }
                Message::Commit {
                    commit_lsn, end_lsn, ..
                } => {
                    changes.commit();
                    pending.committed = Some((commit_lsn, end_lsn));
                    self.flush_if_full(cx, repl, &mut pending, checkpoint).await
                }
                Message::StreamStart { xid, .. } => {
                    in_stream = Some(xid);
                    if let std::collections::hash_map::Entry::Vacant(slot) = spools.entry(xid) {
                        match Spool::new() {
                            Ok(sp) => {
                                slot.insert(sp);
                            }
                            Err(e) => {
                                return End::Fatal(format!(
                                    "cannot create a temporary file for a streamed transaction: {e}; check TMPDIR"
                                ));
                            }
                        }
                    }
                    Ok(())
                }
                Message::StreamStop => {
                    in_stream = None;
                    Ok(())
                }
                Message::StreamAbort { xid, subxid, .. } => {
                    if xid == subxid {
                        spools.remove(&xid);
                    } else if let Some(sp) = spools.get_mut(&xid) {
                        sp.aborted.insert(subxid);
                    }
                    Ok(())
                }
                Message::StreamCommit {
                    xid,
                    commit_lsn,
                    end_lsn,
                    commit_time,
                    ..
                } => match spools.remove(&xid) {
                    None => {
                        return End::Fatal(format!(
                            "the server committed streamed transaction {xid}, which it never streamed"
                        ));
                    }
                    Some(sp) => {
                        self.replay(
                            cx,
                            client,
                            repl,
                            &mut changes,
                            &mut pending,
                            checkpoint,
                            sp,
                            (xid, commit_lsn, end_lsn, commit_time),
                        )
                        .await
                    }
                },
                Message::Type { .. } | Message::Message { .. } | Message::Origin { .. } => Ok(()),
                other => {
                    if let Some(xid) = in_stream {
                        let Some(sp) = spools.get_mut(&xid) else {
                            return End::Fatal(format!(
                                "a change of streamed transaction {xid} arrived outside its stream"
                            ));
                        };
                        if let Err(e) = sp.push(&data).await {
                            return End::Fatal(format!(
                                "cannot write a streamed transaction to a temporary file: {e}; check TMPDIR's free space"
                            ));
                        }
                        Ok(())
                    } else {
                        match changes.apply(&other, &mut pending.events, &mut pending.rejects) {
                            Err(e) => return End::Fatal(format!("replication stream out of order: {e}")),
                            Ok(()) => match self.after_apply(client, &mut changes, &other, streamed).await {
                                Err(e) => Err(e),
                                Ok(()) => self.flush_if_full(cx, repl, &mut pending, checkpoint).await,
                            },
                        }
                    }
                }
            };
            if let Err(e) = step {
                return e;
            }
        }
    }

    /// A Relation under `REPLICA IDENTITY FULL`: its primary key from the catalog.
    async fn after_apply(
        &self,
        client: &tokio_postgres::Client,
        changes: &mut Changes,
        message: &Message<'_>,
        streamed: bool,
    ) -> Result<(), End> {
        if let Message::Relation { relation, .. } = message
            && changes.needs_primary_key(relation.oid)
        {
            let columns = setup::primary_key(client, relation.oid).await.map_err(|e| End::Retry {
                message: format!(
                    "looking up the primary key of {}.{}: {e}",
                    relation.namespace, relation.name
                ),
                streamed,
            })?;
            changes.set_primary_key(relation.oid, &columns);
        }
        Ok(())
    }

    async fn flush_if_full(
        &self,
        cx: &SourceContext,
        repl: &Session,
        pending: &mut Pending,
        checkpoint: &mut Option<Lsn>,
    ) -> Result<(), End> {
        if pending.events.len() + pending.rejects.len() >= self.config.max_batch_events {
            self.flush(cx, repl, pending, checkpoint).await?;
        }
        Ok(())
    }

    /// A streamed transaction committed: its spooled messages become events, appended in pieces.
    #[allow(clippy::too_many_arguments)]
    async fn replay(
        &self,
        cx: &SourceContext,
        client: &tokio_postgres::Client,
        repl: &Session,
        changes: &mut Changes,
        pending: &mut Pending,
        checkpoint: &mut Option<Lsn>,
        spool: Spool,
        (xid, commit_lsn, end_lsn, commit_time): (u32, Lsn, Lsn, i64),
    ) -> Result<(), End> {
        let aborted = spool.aborted.clone();
        let mut reader = spool
            .reader()
            .await
            .map_err(|e| End::Fatal(format!("cannot read back streamed transaction {xid}: {e}")))?;
        changes.begin(commit_lsn, xid, commit_time);
        pending.open_events = pending.events.len();
        pending.open_rejects = pending.rejects.len();
        loop {
            let bytes = match reader.next().await {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => return Err(End::Fatal(format!("cannot read back streamed transaction {xid}: {e}"))),
            };
            let m =
                pgoutput::decode(bytes, true).map_err(|e| End::Fatal(format!("streamed transaction {xid}: {e}")))?;
            let sub = match &m {
                Message::Insert { xid, .. }
                | Message::Update { xid, .. }
                | Message::Delete { xid, .. }
                | Message::Truncate { xid, .. } => *xid,
                _ => None,
            };
            if sub.is_some_and(|s| aborted.contains(&s)) {
                continue;
            }
            changes
                .apply(&m, &mut pending.events, &mut pending.rejects)
                .map_err(|e| End::Fatal(format!("streamed transaction {xid} out of order: {e}")))?;
            self.after_apply(client, changes, &m, true).await?;
            self.flush_if_full(cx, repl, pending, checkpoint).await?;
        }
        changes.commit();
        pending.committed = Some((commit_lsn, end_lsn));
        self.flush_if_full(cx, repl, pending, checkpoint).await
    }
}

fn pending_checkpoint_moves(checkpoint: &Option<Lsn>, commit: Lsn) -> bool {
    checkpoint.is_none_or(|c| commit > c)
}
