//! The group-commit writer thread: the only code that writes to the database.
//!
//! It blocks for one request, drains up to [`MAX_GROUP`] more that are already queued, stages all of
//! them into one [`Group`], commits and persists it as one batch, then answers every request.

use super::group::Group;
use super::prepare::{Op, PreparedAppend};
use super::store::Shared;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error};
use tributary_core::catalog::{Conflict, Expect, RecordKind, Version};
use tributary_core::store::AppendOutcome;
use tributary_core::{Seq, StoreError, Timestamp};

/// The most requests committed together.
pub(crate) const MAX_GROUP: usize = 256;

/// Where the writer answers a request.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A write for the writer thread, already encoded by the caller.
pub(crate) enum Request {
    /// New events, with their rejects and checkpoint.
    Append(PreparedAppend, Reply<AppendOutcome>),
    /// Plain writes: a delivery update (not synced) or a meta value (synced).
    Ops(Vec<Op>, bool, Reply<()>),
    /// A catalog change, checked against the record's current version here, where writes are serial.
    Cas(Cas, Reply<Result<Version, Conflict>>),
}

/// A catalog compare-and-set.
pub(crate) struct Cas {
    pub kind: RecordKind,
    pub name: String,
    pub expect: Expect,
    pub value: Option<String>,
}

impl Request {
    fn fail(self, e: StoreError) {
        // A caller that went away no longer needs its answer.
        match self {
            Request::Append(_, tx) => drop(tx.send(Err(e))),
            Request::Ops(_, _, tx) => drop(tx.send(Err(e))),
            Request::Cas(_, tx) => drop(tx.send(Err(e))),
        }
    }
}

/// A staged request waiting for its group to commit.
enum Answer {
    Append(Reply<AppendOutcome>, AppendOutcome),
    Unit(Reply<()>),
    Cas(Reply<Result<Version, Conflict>>, Version),
}

impl Answer {
    fn send(self, result: Result<(), StoreError>) {
        match self {
            Answer::Append(tx, outcome) => drop(tx.send(result.map(|()| outcome))),
            Answer::Unit(tx) => drop(tx.send(result)),
            Answer::Cas(tx, version) => drop(tx.send(result.map(|()| Ok(version)))),
        }
    }
}

pub(crate) fn backend(op: &'static str, e: fjall::Error) -> StoreError {
    StoreError::Backend {
        op,
        source: Box::new(e),
    }
}

/// The writer thread's state.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Request>,
    /// The sequence number the next new event gets.
    next_seq: Seq,
    /// Per source, the counter its next reject gets (loaded on first use).
    reject_next: HashMap<String, u64>,
}

impl Writer {
    pub fn new(shared: Arc<Shared>, rx: mpsc::Receiver<Request>, last_seq: Seq) -> Self {
        Self {
            shared,
            rx,
            next_seq: last_seq + 1,
            reject_next: HashMap::new(),
        }
    }

    /// Serves requests until every sender is gone.
    pub fn run(mut self) {
        let _guard = PanicGuard(self.shared.clone());
        let mut requests = Vec::with_capacity(MAX_GROUP);
        while let Some(first) = self.rx.blocking_recv() {
            requests.push(first);
            while requests.len() < MAX_GROUP {
                match self.rx.try_recv() {
                    Ok(req) => requests.push(req),
                    Err(_) => break,
                }
            }
            self.commit_group(&mut requests);
        }
        debug!("store writer stopped");
    }

    fn commit_group(&mut self, requests: &mut Vec<Request>) {
        if let Some(reason) = self.shared.poison.get() {
            for req in requests.drain(..) {
                req.fail(StoreError::Poisoned(reason.clone()));
            }
            return;
        }
        let now = Timestamp::now();
        let mut group = Group::new(self.next_seq);
        let mut answers = Vec::with_capacity(requests.len());
        for req in requests.drain(..) {
            match req {
                Request::Append(append, tx) => {
                    let tables = &self.shared.tables;
                    match group.stage_append(tables, &self.reject_next, append, now) {
                        Ok(outcome) => answers.push(Answer::Append(tx, outcome)),
                        Err(e) => drop(tx.send(Err(e))),
                    }
                }
                Request::Ops(ops, durable, tx) => {
                    group.stage_ops(ops);
                    group.durable |= durable;
                    answers.push(Answer::Unit(tx));
                }
                Request::Cas(cas, tx) => match group.stage_cas(&self.shared, cas) {
                    Ok(Ok(version)) => answers.push(Answer::Cas(tx, version)),
                    // A conflict or an unreadable record writes nothing: answered at once.
                    Ok(Err(conflict)) => drop(tx.send(Ok(Err(conflict)))),
                    Err(e) => drop(tx.send(Err(e))),
                },
            }
        }
        match self.write(&mut group) {
            Ok(()) => {
                self.reject_next.extend(group.reject_next);
                if group.next_seq != self.next_seq {
                    self.next_seq = group.next_seq;
                    self.shared.publish_seq(self.next_seq - 1);
                }
                answers.into_iter().for_each(|a| a.send(Ok(())));
            }
            Err(e) => {
                error!(error = %e, "store write failed; refusing further writes");
                let _ = self.shared.poison.set(e.to_string());
                let reason = self.shared.poison.get().cloned().unwrap_or_default();
                for a in answers {
                    a.send(Err(StoreError::Poisoned(reason.clone())));
                }
            }
        }
    }

    /// Commits the group as one batch. The journal is persisted inside the commit, before the
    /// memtables are updated, so readers never see a write that is not yet persisted.
    fn write(&self, group: &mut Group) -> Result<(), fjall::Error> {
        if group.is_empty() {
            return Ok(());
        }
        #[cfg(test)]
        if self
            .shared
            .fail_next_commit
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(fjall::Error::Io(std::io::Error::other("injected commit failure")));
        }
        group.take_batch(&self.shared.db, &self.shared.tables).commit()
    }
}

/// Poisons the store if the writer thread unwinds, so writes fail loudly instead of as `Closed`.
struct PanicGuard(Arc<Shared>);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            error!("store writer thread panicked; refusing further writes");
            let _ = self.0.poison.set("the store writer thread panicked".into());
        }
    }
}
