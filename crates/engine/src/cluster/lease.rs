//! Holding one lease: waiting for it, renewing it, and noticing its loss in time.
//!
//! The holder renews every quarter of the lease time. A renewal that succeeds makes the lease good
//! until `lease` after the renewal was *sent* (the store set the expiry later than that, on its clock),
//! so the local deadline is never later than the store's. When no renewal succeeded by a quarter of the
//! lease time before that deadline, or the store answers that the lease is gone, `lost` is cancelled:
//! the work stops before another node can take the lease over, and the fence refuses anything it still
//! tries to write.

use super::ClusterSettings;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tributary_core::Store;
use tributary_core::cluster::Fence;

/// A lease this node holds.
pub(crate) struct Held {
    /// What its writes carry.
    pub fence: Fence,
    /// Cancelled when the lease is lost, or when the node shuts down.
    pub lost: CancellationToken,
    renewer: tokio::task::JoinHandle<()>,
}

/// A pause of about a quarter of the lease time, with jitter so that nodes do not ask in step.
fn quarter(cluster: &ClusterSettings) -> Duration {
    let q = cluster.lease / 4;
    q.mul_f64(rand::rng().random_range(0.8..1.2))
}

/// Waits until this node holds `name`; `None` when `shutdown` comes first.
pub(crate) async fn acquire(
    store: &Arc<dyn Store>,
    cluster: &Arc<ClusterSettings>,
    name: String,
    shutdown: &CancellationToken,
) -> Option<Held> {
    let leases = store.leases()?;
    let mut warned: Option<Instant> = None;
    loop {
        if !cluster.state.may_ask(cluster, &name) {
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(quarter(cluster)) => continue,
                _ = cluster.state.wake.notified() => continue,
            }
        }
        let asked = Instant::now();
        match leases.acquire(&name, &cluster.node_id, cluster.lease).await {
            Ok(Some(epoch)) => {
                tracing::info!(lease = %name, epoch, node = %cluster.node_id, "took the lease; running it on this node");
                let fence = Fence {
                    lease: name,
                    holder: cluster.node_id.clone(),
                    epoch,
                };
                let lost = shutdown.child_token();
                cluster.state.held(&fence.lease, lost.clone());
                let renewer = tokio::spawn(renew(
                    store.clone(),
                    cluster.clone(),
                    fence.clone(),
                    lost.clone(),
                    asked + cluster.lease,
                ));
                return Some(Held { fence, lost, renewer });
            }
            Ok(None) => {}
            Err(error) => {
                if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(30)) {
                    tracing::warn!(lease = %name, %error, "cannot ask the store for a lease; asking again");
                    warned = Some(Instant::now());
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(quarter(cluster)) => {}
            _ = cluster.state.wake.notified() => {}
        }
    }
}

/// Renews until the lease is lost (then cancels `lost`) or the [`Held`] is released or dropped; see the
/// module docs. It goes on after the node's shutdown cancelled `lost`, so the work's last writes while
/// it drains are made under a live lease.
async fn renew(
    store: Arc<dyn Store>,
    cluster: Arc<ClusterSettings>,
    fence: Fence,
    lost: CancellationToken,
    mut valid_until: Instant,
) {
    let Some(leases) = store.leases() else { return };
    let margin = cluster.lease / 4;
    loop {
        let next = quarter(&cluster).min(
            valid_until
                .saturating_duration_since(Instant::now())
                .saturating_sub(margin),
        );
        tokio::time::sleep(next).await;
        let asked = Instant::now();
        let stop_at = valid_until.checked_sub(margin).unwrap_or(asked);
        let answer = tokio::time::timeout_at(
            stop_at.max(asked + Duration::from_millis(1)),
            leases.renew(&cluster.node_id, std::slice::from_ref(&fence), cluster.lease),
        )
        .await;
        match answer {
            Ok(Ok(held)) if held.contains(&fence.lease) => valid_until = asked + cluster.lease,
            Ok(Ok(_)) => {
                tracing::warn!(lease = %fence.lease, epoch = fence.epoch, "the lease was lost (it expired and another node may hold it); stopping the work here");
                lost.cancel();
                return;
            }
            Ok(Err(error)) if Instant::now() < stop_at => {
                tracing::warn!(lease = %fence.lease, %error, "cannot renew the lease; trying again");
            }
            Ok(Err(_)) | Err(_) => {
                tracing::warn!(lease = %fence.lease, epoch = fence.epoch, "the lease could not be renewed in time; stopping the work here before it expires");
                lost.cancel();
                return;
            }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

impl Held {
    /// Stops renewing and gives the lease up, so another node takes it at once (a clean stop, a lease
    /// given up to balance the work, or after a loss: then it is another's, and nothing changes).
    pub(crate) async fn release(self, store: &Arc<dyn Store>, cluster: &ClusterSettings) {
        self.renewer.abort();
        cluster.state.dropped(&self.fence.lease);
        if let Some(leases) = store.leases()
            && let Err(error) = leases.release(&self.fence).await
        {
            tracing::warn!(lease = %self.fence.lease, %error, "could not give the lease up; another node takes it when it expires");
        }
    }
}
