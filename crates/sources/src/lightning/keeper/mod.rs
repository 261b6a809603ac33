//! The Lightning channel graph kept by the node: the `lightning` sources' background service
//! ([`tributary_plugin::service`]), served by [`super::routes`].
//!
//! A [`GraphKeeper`] follows the log like a subscription worker (`read_from` + `watch_seq`) and keeps
//! **one graph per `lightning` source**, built from that source's events only (an event belongs to the
//! source that stored it), so that a tenant who may read one source sees the graph of that source and
//! nothing of the others; the routes combine the graphs a caller may see per request
//! ([`GraphView`]). Their announcements and updates were verified before they were stored (unless
//! imported with `--no-verify`). Each event's payload is decoded again; `seen_at` for the graph is the
//! event's `occurred_at` (the message's own timestamp, or the gossip_store record's) or, without one, its
//! `ingested_at`. A 4101 names its channel in `data.short_channel_id`. On the way it counts the
//! `ln.problem.*` events by source and reason ([`LIGHTNING_PROBLEMS`]).
//!
//! Restarts do not read the whole log:
//! - [`snapshot`]: every [`SNAPSHOT_EVENTS`] graph events (once [`SNAPSHOT_INTERVAL`] has passed or the
//!   keeper has caught up with the log) and at shutdown, the graphs and problem counts are written to
//!   `{data_dir}/lightning/graph.snapshot` with the log position they cover; at start the keeper loads
//!   it and reads only the log after it. A snapshot that cannot be used (damaged, another version, from
//!   another store, a source added since) is reported in the log and the keeper reads the whole log.
//! - [`known`]: the verified channels of every source go to meta entries that the `lightning` sources
//!   and `tributary import` read at start instead of the log
//!   ([`crate::lightning::known`]).

pub mod known;
pub mod snapshot;

use crate::lightning::events::{
    KIND_CHANNEL_AMOUNT, KIND_CHANNEL_ANNOUNCEMENT, KIND_CHANNEL_DYING, KIND_CHANNEL_UPDATE, KIND_NODE_ANNOUNCEMENT,
};
pub use crate::lightning::graph::GraphView;
use crate::lightning::{Gossip, Graph, ShortChannelId, decode};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tributary_core::{Log, Seq, StoredEvent};
use tributary_plugin::ServiceContext;

/// Distinct Lightning problem messages in the log (`ln.problem.*` events), by source and reason code
/// (`bad_signature`, `wrong_chain`, `malformed`, `unknown_channel`).
pub const LIGHTNING_PROBLEMS: &str = "tributary_lightning_problems_total";

/// `n` `ln.problem.*` events of a `lightning` source (more than one when restored from a graph snapshot).
fn lightning_problem(source: &str, reason: &str, n: u64) {
    metrics::counter!(LIGHTNING_PROBLEMS, "source" => source.to_owned(), "reason" => reason.to_owned()).increment(n);
}

/// Events read per step.
const PAGE: usize = 4096;
/// A snapshot is written after this many graph events...
pub const SNAPSHOT_EVENTS: u64 = 100_000;
/// ...once this long has passed since the last one (or the keeper caught up with the log).
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(300);

/// One source's graph and its problem counts by reason.
#[derive(Debug, Default)]
pub struct SourceGraph {
    /// The graph of the source's events.
    pub graph: Graph,
    /// `ln.problem.*` events by reason.
    pub problems: BTreeMap<String, u64>,
}

/// The graphs and how far into the log they are.
pub struct GraphKeeper {
    graphs: RwLock<BTreeMap<String, SourceGraph>>,
    applied: AtomicU64,
    seq_tx: tokio::sync::watch::Sender<Seq>,
    /// The `lightning` sources, each with its own graph.
    pub sources: Vec<String>,
    snapshot_path: Option<PathBuf>,
    store: Arc<dyn Log>,
    /// The store is shared by several nodes: the known channels are not written (see `known`).
    shared: bool,
}

enum Step {
    Apply(Box<Gossip>, u32),
    Capacity(ShortChannelId, u64),
}

fn step(e: &StoredEvent) -> Option<Step> {
    let ev = &e.event;
    let seen = ev
        .occurred_at
        .unwrap_or(e.ingested_at)
        .unix_secs()
        .clamp(0, u32::MAX as i64) as u32;
    match ev.kind.as_str() {
        KIND_CHANNEL_ANNOUNCEMENT | KIND_NODE_ANNOUNCEMENT | KIND_CHANNEL_UPDATE | KIND_CHANNEL_DYING => {
            decode(&ev.payload).ok().map(|g| Step::Apply(Box::new(g), seen))
        }
        KIND_CHANNEL_AMOUNT => {
            let scid = ev.data.get("short_channel_id")?.as_str()?.parse().ok()?;
            Some(Step::Capacity(scid, ev.data.get("satoshis")?.as_u64()?))
        }
        _ => None,
    }
}

impl GraphKeeper {
    /// Starts following the log for the `lightning` sources `sources` until the node shuts down; with a
    /// data directory, restores from the snapshot there and keeps writing it.
    pub fn start(sources: Vec<String>, cx: &ServiceContext) -> Arc<Self> {
        let keeper = Arc::new(Self {
            graphs: RwLock::new(sources.iter().map(|s| (s.clone(), SourceGraph::default())).collect()),
            applied: AtomicU64::new(0),
            seq_tx: tokio::sync::watch::channel(0).0,
            sources,
            snapshot_path: cx.data_dir.as_deref().map(snapshot::path_in),
            store: cx.store.clone(),
            shared: cx.shared,
        });
        let (k, store, shutdown) = (keeper.clone(), cx.store.clone(), cx.shutdown.clone());
        cx.tracker.spawn(async move {
            if let Err(error) = k.clone().follow(store, shutdown).await {
                tracing::error!(%error, "the lightning graph stopped following the log; restart tributary");
            }
        });
        keeper
    }

    /// The store the graph follows, shared (an import over the API writes through it).
    pub fn store_arc(&self) -> Arc<dyn Log> {
        self.store.clone()
    }

    /// The store the graph follows.
    pub fn store(&self) -> &dyn Log {
        self.store.as_ref()
    }

    /// Loads the snapshot if it is usable; the log position it covers (0: none).
    async fn restore(&self, store: &dyn Log) -> Result<Seq, tributary_core::StoreError> {
        let Some(path) = self.snapshot_path.clone() else {
            return Ok(0);
        };
        let loaded = tokio::task::spawn_blocking(move || snapshot::load(&path))
            .await
            .unwrap_or_else(|e| Err(format!("loading failed: {e}")));
        let snap = match loaded {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(0),
            Err(reason) => {
                tracing::warn!(%reason, "the lightning graph snapshot cannot be used; rebuilding the graph from the whole log");
                return Ok(0);
            }
        };
        let matches = match snap.id {
            None => true,
            Some(id) => store.get_seq(snap.seq).await?.is_some_and(|e| e.event.id == id),
        };
        if !matches {
            tracing::warn!(
                seq = snap.seq,
                "the lightning graph snapshot was taken on another store (its event at that position differs); rebuilding the graph from the whole log"
            );
            return Ok(0);
        }
        if let Some(missing) = self.sources.iter().find(|s| !snap.sources.contains_key(*s)) {
            tracing::warn!(source = %missing, "the lightning graph snapshot predates this source; rebuilding the graph from the whole log");
            return Ok(0);
        }
        let mut graphs = self.graphs.write().expect("graph lock");
        for (name, (graph, problems)) in snap.sources {
            if !self.sources.contains(&name) {
                continue;
            }
            for (reason, n) in &problems {
                lightning_problem(&name, reason, *n);
            }
            graphs.insert(name, SourceGraph { graph, problems });
        }
        tracing::info!(
            seq = snap.seq,
            "lightning graph restored from its snapshot; reading the log after it"
        );
        Ok(snap.seq)
    }

    /// Writes the snapshot of everything applied so far.
    async fn write_snapshot(self: &Arc<Self>, store: &dyn Log) {
        let Some(path) = self.snapshot_path.clone() else {
            return;
        };
        let seq = self.applied_seq();
        let id = match seq {
            0 => None,
            s => match store.get_seq(s).await {
                Ok(Some(e)) => Some(e.event.id),
                Ok(None) | Err(_) => {
                    tracing::warn!(seq, "cannot read the event the graph snapshot would cover; not written");
                    return;
                }
            },
        };
        let k = self.clone();
        let started = Instant::now();
        let written = tokio::task::spawn_blocking(move || {
            let graphs = k.graphs.read().expect("graph lock");
            let view: BTreeMap<String, (&Graph, &BTreeMap<String, u64>)> = graphs
                .iter()
                .map(|(n, s)| (n.clone(), (&s.graph, &s.problems)))
                .collect();
            snapshot::write(&path, &view, seq, id)
        })
        .await;
        match written {
            Ok(Ok(bytes)) => {
                tracing::info!(
                    seq,
                    bytes,
                    ms = started.elapsed().as_millis() as u64,
                    "lightning graph snapshot written"
                )
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "the lightning graph snapshot could not be written; the next start reads more of the log")
            }
            Err(error) => tracing::warn!(%error, "the lightning graph snapshot task failed"),
        }
    }

    async fn follow(
        self: Arc<Self>,
        store: Arc<dyn Log>,
        shutdown: CancellationToken,
    ) -> Result<(), tributary_core::StoreError> {
        let sources: HashSet<String> = self.sources.iter().cloned().collect();
        let mut seq_rx = store.watch_seq();
        let graph_seq = self.restore(store.as_ref()).await?;
        let mut known = known::KnownWriter::load(store.as_ref(), self.shared).await?;
        let mut next = graph_seq.min(known.seq()) + 1;
        self.applied.store(graph_seq, Ordering::Release);
        // What the snapshot covers is applied: queries up to there need not wait for the first page.
        self.seq_tx.send_replace(graph_seq);
        let (mut since_snapshot, mut last_snapshot, mut snapshot_seq) = (0u64, Instant::now(), graph_seq);
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let page = store.read_from(next, PAGE).await?;
            let Some(last) = page.last().map(|e| e.seq) else {
                if since_snapshot >= SNAPSHOT_EVENTS {
                    self.write_snapshot(store.as_ref()).await;
                    known.checkpoint(store.as_ref(), next - 1).await?;
                    (since_snapshot, last_snapshot, snapshot_seq) = (0, Instant::now(), self.applied_seq());
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    changed = seq_rx.changed() => if changed.is_err() { break },
                }
                continue;
            };
            let known_seq = known.seq();
            for e in page.iter().filter(|e| e.seq > known_seq) {
                known.observe(e);
            }
            let ours = || {
                page.iter()
                    .filter(|e| e.seq > graph_seq && sources.contains(e.source.as_str()))
            };
            let steps: Vec<(&str, Step)> = ours().filter_map(|e| Some((e.source.as_str(), step(e)?))).collect();
            {
                let mut graphs = self.graphs.write().expect("graph lock");
                for e in ours().filter(|e| e.event.kind.starts_with("ln.problem.")) {
                    let reason = e.event.data.get("reason").and_then(|r| r.as_str()).unwrap_or("unknown");
                    lightning_problem(&e.source, reason, 1);
                    if let Some(g) = graphs.get_mut(e.source.as_str()) {
                        *g.problems.entry(reason.to_owned()).or_default() += 1;
                    }
                }
                for (source, s) in &steps {
                    let Some(g) = graphs.get_mut(*source) else { continue };
                    match s {
                        Step::Apply(gossip, seen) => g.graph.apply(gossip, *seen),
                        Step::Capacity(scid, sat) => g.graph.set_capacity(*scid, *sat),
                    };
                }
            }
            since_snapshot += ours().count() as u64;
            known.flush_full(store.as_ref()).await?;
            next = last + 1;
            // Pages below the snapshot (re-read for the known channels) do not move the graph back.
            let applied = last.max(graph_seq);
            self.applied.store(applied, Ordering::Release);
            self.seq_tx.send_replace(applied);
            let caught_up = page.len() < PAGE;
            if since_snapshot >= SNAPSHOT_EVENTS && (caught_up || last_snapshot.elapsed() >= SNAPSHOT_INTERVAL) {
                self.write_snapshot(store.as_ref()).await;
                known.checkpoint(store.as_ref(), last).await?;
                (since_snapshot, last_snapshot, snapshot_seq) = (0, Instant::now(), applied);
            }
        }
        // Shutdown: what was applied goes to the snapshot, so the next start reads only what follows.
        if self.applied_seq() > snapshot_seq {
            self.write_snapshot(store.as_ref()).await;
        }
        known.checkpoint(store.as_ref(), next - 1).await?;
        Ok(())
    }

    /// The graphs, for reading (hold them briefly: the keeper waits for them).
    pub fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, SourceGraph>> {
        self.graphs.read().expect("graph lock")
    }

    /// The last log position applied.
    pub fn applied_seq(&self) -> Seq {
        self.applied.load(Ordering::Acquire)
    }

    /// Waits until everything up to `seq` is applied, at most `timeout`; whether it was.
    pub async fn caught_up(&self, seq: Seq, timeout: Duration) -> bool {
        let mut rx = self.seq_tx.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|s| *s >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// The graphs of `names` (those that exist) as one view.
pub fn view<'a>(graphs: &'a BTreeMap<String, SourceGraph>, names: &[String]) -> GraphView<'a> {
    GraphView::new(names.iter().filter_map(|n| graphs.get(n)).map(|s| &s.graph).collect())
}
