//! Several nodes on one PostgreSQL store (issue 13, ADR 0007, docs/scale-out.md).
//!
//! On a store with [`Leases`](tributary_core::cluster::Leases), every node serves HTTP ingest and the
//! whole API, and the work that must run once is leased:
//! - each pulling source runs on the node holding the lease `source:{name}` ([`run_source`]);
//! - each subscription delivers from the node holding `subscription:{name}`
//!   ([`crate::registry`] through [`work::run_subscription`]);
//! - the others stand by, asking for the lease every quarter of the lease time, and take it over once
//!   it expired. See [`lease`] for how a holder notices a loss in time, and
//!   [`tributary_core::cluster`] for the fence on every leased write.
//!
//! Commands for a subscription (pause, resume, replay, purge) reach the worker on the node holding it:
//! a standby node relays them through the store ([`relay`]).
//! Each node announces itself (id, URL, version, problems) every quarter of the lease time
//! ([`announce`]), and gives a lease up when it holds more than its share ([`balance`]);
//! `GET /v1/cluster` shows the nodes and the leases.

pub(crate) mod balance;
pub(crate) mod lease;
pub(crate) mod relay;
pub(crate) mod sync;
pub(crate) mod work;

use crate::config::{Config, StoreKind};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tributary_core::Store;
use tributary_core::cluster::NodeAnnouncement;

/// Who this node is among those sharing its store, and how long leases last.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// `[node] node_id`, or the host name and the listen port.
    pub node_id: String,
    /// `[node] advertise_url`, or `http://` and the listen address.
    pub url: String,
    /// `[node] store.lease_ms`.
    pub lease: Duration,
    /// The leases this node holds, and those it gave up to balance the work ([`balance`]).
    pub(crate) state: Arc<balance::Shares>,
}

impl ClusterSettings {
    /// The settings of a node whose store is shared (PostgreSQL); `None` for the embedded and memory stores.
    pub fn of(config: &Config) -> Option<Self> {
        let StoreKind::Postgres(pg) = &config.node.store else {
            return None;
        };
        let listen = &config.node.listen;
        let port = listen.rsplit_once(':').map_or("", |(_, p)| p);
        let node_id = config
            .node
            .node_id
            .clone()
            .unwrap_or_else(|| format!("{}:{port}", host_name()));
        Some(Self {
            node_id,
            url: (config.node.advertise_url.clone()).unwrap_or_else(|| format!("http://{listen}")),
            lease: Duration::from_millis(pg.lease_ms),
            state: Arc::default(),
        })
    }
}

/// The machine's host name, or `node` when it cannot be read.
fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .take(48)
        .collect();
    if name.is_empty() { "node".into() } else { name }
}

/// Why a node cannot join its cluster.
#[derive(Debug, thiserror::Error)]
#[error(
    "node id {0:?} is in use by another running node on this store (it announced itself within the lease time); give each node its own [node] node_id"
)]
pub struct NodeIdInUse(pub String);

/// Announces this node, unless another running node uses its id: when a live node announced this id
/// with another start time, it is watched for half a lease time. A node that crashed announces nothing
/// more (this one is its restart, and goes on); one that announces again is running, and this node
/// refuses to start.
pub(crate) async fn join(
    store: &dyn Store,
    cluster: &ClusterSettings,
    me: &NodeAnnouncement,
) -> Result<(), crate::node::NodeError> {
    let Some(leases) = store.leases() else { return Ok(()) };
    let other = |view: tributary_core::cluster::ClusterView| {
        (view.nodes.into_iter()).find(|n| n.alive && n.node.id == me.id && n.node.started_at != me.started_at)
    };
    if let Some(first) = other(leases.view(cluster.lease).await?) {
        let until = tokio::time::Instant::now() + cluster.lease / 2;
        while tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if other(leases.view(cluster.lease).await?).is_some_and(|n| n.seen_at != first.seen_at) {
                return Err(crate::node::NodeError::Cluster(NodeIdInUse(me.id.clone()).to_string()));
            }
        }
    }
    leases.announce(me).await?;
    Ok(())
}

/// Announces this node every quarter of the lease time until `shutdown`, then leaves the list.
/// `problems` says what `/health` would report.
pub(crate) async fn announce(
    store: Arc<dyn Store>,
    cluster: Arc<ClusterSettings>,
    mut me: NodeAnnouncement,
    problems: impl Fn() -> Vec<String> + Send + 'static,
    shutdown: CancellationToken,
) {
    let Some(leases) = store.leases() else { return };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(cluster.lease / 4) => {}
        }
        me.problems = problems();
        if let Err(error) = leases.announce(&me).await {
            tracing::debug!(%error, "could not announce this node; trying again");
            continue;
        }
        match leases.view(cluster.lease).await {
            Ok(view) => cluster.state.rebalance(&cluster, view),
            Err(error) => tracing::debug!(%error, "could not read the cluster view; trying again"),
        }
    }
    if let Err(error) = leases.leave(&me.id).await {
        tracing::debug!(%error, "could not take this node off the node list; it shows as gone after the lease time");
    }
}

/// Runs a pulling source whenever this node holds its lease (see the module docs).
pub(crate) use work::run_source;
