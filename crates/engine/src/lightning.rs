//! The Lightning channel graph kept by the node (feature `lightning`).
//!
//! A [`GraphKeeper`] follows the log like a subscription worker (`read_from` + `watch_seq`), from seq 1 at
//! start (so the graph is rebuilt from the log's `ln.*` events) and then as events arrive. Only events of
//! the configured `lightning` sources count: their announcements and updates were verified before they
//! were stored (unless imported with `--no-verify`). Each event's payload is decoded again; `seen_at` for
//! the graph is the event's `occurred_at` (the message's own timestamp, or the gossip_store record's) or,
//! without one, its `ingested_at`. A 4101 names its channel in `data.short_channel_id`. On the way it
//! counts the `ln.problem.*` events by reason ([`metrics::LIGHTNING_PROBLEMS`](crate::metrics::LIGHTNING_PROBLEMS)).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tributary_core::{Seq, Store, StoredEvent};
use tributary_sources::lightning::events::{
    KIND_CHANNEL_AMOUNT, KIND_CHANNEL_ANNOUNCEMENT, KIND_CHANNEL_DYING, KIND_CHANNEL_UPDATE, KIND_NODE_ANNOUNCEMENT,
};
use tributary_sources::lightning::{Gossip, Graph, ShortChannelId, decode};

/// Events read per step.
const PAGE: usize = 4096;

/// The graph and how far into the log it is.
pub struct GraphKeeper {
    graph: RwLock<Graph>,
    applied: AtomicU64,
    seq_tx: tokio::sync::watch::Sender<Seq>,
    /// The `lightning` sources whose events count.
    pub sources: Vec<String>,
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
    /// Starts following the log on `tracker` until `shutdown`.
    pub fn start(
        store: Arc<dyn Store>,
        sources: Vec<String>,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> Arc<Self> {
        let keeper = Arc::new(Self {
            graph: RwLock::new(Graph::new()),
            applied: AtomicU64::new(0),
            seq_tx: tokio::sync::watch::channel(0).0,
            sources,
        });
        let k = keeper.clone();
        tracker.spawn(async move {
            if let Err(error) = k.follow(store, shutdown).await {
                tracing::error!(%error, "the lightning graph stopped following the log; restart tributary");
            }
        });
        keeper
    }

    async fn follow(
        &self,
        store: Arc<dyn Store>,
        shutdown: CancellationToken,
    ) -> Result<(), tributary_core::StoreError> {
        let sources: HashSet<&str> = self.sources.iter().map(String::as_str).collect();
        let mut seq_rx = store.watch_seq();
        let mut next = 1;
        loop {
            let page = store.read_from(next, PAGE).await?;
            let Some(last) = page.last().map(|e| e.seq) else {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    changed = seq_rx.changed() => if changed.is_err() { return Ok(()) },
                }
                continue;
            };
            let ours = || page.iter().filter(|e| sources.contains(e.source.as_str()));
            for e in ours().filter(|e| e.event.kind.starts_with("ln.problem.")) {
                let reason = e.event.data.get("reason").and_then(|r| r.as_str()).unwrap_or("unknown");
                crate::metrics::lightning_problem(&e.source, reason);
            }
            let steps: Vec<Step> = ours().filter_map(step).collect();
            {
                let mut g = self.graph.write().expect("graph lock");
                for s in &steps {
                    match s {
                        Step::Apply(gossip, seen) => g.apply(gossip, *seen),
                        Step::Capacity(scid, sat) => g.set_capacity(*scid, *sat),
                    };
                }
            }
            next = last + 1;
            self.applied.store(last, Ordering::Release);
            self.seq_tx.send_replace(last);
        }
    }

    /// The graph, for reading (hold it briefly: the keeper waits for it).
    pub fn read(&self) -> RwLockReadGuard<'_, Graph> {
        self.graph.read().expect("graph lock")
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
