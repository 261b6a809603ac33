//! The leased work: a pulling source, and a subscription's delivery worker, each run only while this
//! node holds its lease, and stopped when the lease is lost (see [`super::lease`]).

use super::ClusterSettings;
use super::lease::{self, Held};
use crate::source_status::{ObservedStore, SourceStatus};
use crate::subscription::{Control, SubscriptionConfig, SubscriptionStatus, Worker};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tributary_core::{Filter, Sink, Source, SourceContext, Store, StoreError};
use tributary_sources::{BuiltSource, SourceSpec};

/// Runs a pulling source whenever this node holds `source:{name}`; stands by otherwise. A source that
/// stopped for good (its failure is in its status) keeps its lease: another node would fail alike.
pub(crate) async fn run_source(
    first: Box<dyn Source>,
    cx: SourceContext,
    spec: SourceSpec,
    store: Arc<dyn Store>,
    status: Arc<SourceStatus>,
    cluster: Arc<ClusterSettings>,
) {
    let mut next = Some(first);
    let shutdown = cx.shutdown.clone();
    loop {
        status.standby.store(true, Relaxed);
        status.running.store(false, Relaxed);
        let Some(held) = lease::acquire(&store, &cluster, format!("source:{}", cx.name), &shutdown).await else {
            break;
        };
        let task = match next.take() {
            Some(task) => task,
            None => match spec.build() {
                BuiltSource::Task(task) => task,
                BuiltSource::Push(_) => {
                    held.release(&store, &cluster).await;
                    break;
                }
            },
        };
        status.standby.store(false, Relaxed);
        status.running.store(true, Relaxed);
        *status.failure.lock().expect("failure lock") = None;
        let observed = ObservedStore::new(store.clone(), &cx.name, status.clone()).fenced(held.fence.clone());
        let leased = SourceContext {
            name: cx.name.clone(),
            store: Arc::new(observed),
            shutdown: held.lost.clone(),
            report: cx.report.clone(),
        };
        crate::node::supervise(task, leased, spec.clone(), store.clone(), status.clone()).await;
        held.lost.cancelled().await;
        held.release(&store, &cluster).await;
        if shutdown.is_cancelled() {
            break;
        }
        *status.failure.lock().expect("failure lock") = None;
        tracing::info!(source = %cx.name, "the source's lease was lost or given up; standing by while another node runs it");
    }
    status.running.store(false, Relaxed);
}

/// What a subscription's worker is built from, each time this node takes its lease.
pub(crate) struct SubscriptionWork {
    /// The config the worker runs (with the effective filter).
    pub config: SubscriptionConfig,
    pub filter: Filter,
    pub sink: Arc<dyn Sink>,
    pub store: Arc<dyn Store>,
    pub status: Arc<SubscriptionStatus>,
    pub permits: Arc<Semaphore>,
    /// The shutdown grace period.
    pub grace: Duration,
}

/// Runs a subscription's deliveries whenever this node holds `subscription:{name}`; stands by
/// otherwise. Commands sent to this node's worker while it stands by wait for it to take the lease.
pub(crate) async fn run_subscription(
    work: SubscriptionWork,
    cluster: Arc<ClusterSettings>,
    stop: CancellationToken,
    mut control: mpsc::Receiver<Control>,
) {
    let name = work.config.name.clone();
    let store = work.store.clone();
    loop {
        work.status.standby.store(true, Relaxed);
        let Some(held) = lease::acquire(&store, &cluster, format!("subscription:{name}"), &stop).await else {
            break;
        };
        let worker = Worker::new(
            work.config.clone(),
            work.filter.clone(),
            work.sink.clone(),
            store.clone(),
            work.status.clone(),
            work.permits.clone(),
            Some(held.fence.clone()),
        )
        .await;
        let worker = match worker {
            Ok(w) => w.under_lease(stop.clone(), cluster.lease / 8),
            Err(error) => {
                tracing::warn!(subscription = %name, %error, "cannot load the subscription's delivery state; giving the lease up and trying again");
                held.release(&store, &cluster).await;
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(cluster.lease / 4) => continue,
                }
            }
        };
        work.status.standby.store(false, Relaxed);
        let result = worker.run(held.lost.clone(), work.grace, &mut control).await;
        if let Some(stopped) = finish(result, &name, held, &stop, &store, &cluster).await {
            return stopped;
        }
        tracing::info!(subscription = %name, "the subscription's lease was lost or given up; standing by while another node delivers");
    }
}

/// After the worker returned, gives the lease up: `Some(())` when the node stops, `None` to stand by
/// again (after a lease time when the worker stopped on an error).
async fn finish(
    result: Result<(), StoreError>,
    name: &str,
    held: Held,
    stop: &CancellationToken,
    store: &Arc<dyn Store>,
    cluster: &ClusterSettings,
) -> Option<()> {
    let failed = match result {
        Ok(()) | Err(StoreError::LeaseLost { .. }) => false,
        Err(error) => {
            tracing::error!(subscription = %name, %error, "delivery worker stopped on an error; giving its lease up and starting it again from its cursor after a lease time");
            true
        }
    };
    held.release(store, cluster).await;
    if failed {
        // Not at once: an error that comes back should not spin, and another node may take it first.
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(cluster.lease) => {}
        }
    }
    stop.is_cancelled().then_some(())
}
