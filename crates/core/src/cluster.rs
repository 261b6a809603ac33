//! Leases: which node runs what when several nodes share one store (issue 13, ADR 0007).
//!
//! A pulling source and a subscription's delivery each run on one node at a time, under a lease named
//! `source:{name}` or `subscription:{name}`. A lease has a holder (a node id), an epoch that grows by one
//! each time it changes hands, and an expiry on the store's clock. The holder renews it well before it
//! expires; a node that cannot renew stops the work before the expiry, and another node takes the lease
//! once it has expired. Every write of the work carries a [`Fence`]: the store refuses it unless the lease
//! is still held with that epoch and unexpired, so a node that lost its lease (paused, cut off) cannot
//! write after another has started.
//!
//! Only a store shared by several nodes has leases ([`crate::Log::leases`]); on the embedded store a
//! node runs everything itself.

use crate::Timestamp;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The lease a write is made under: refused unless `holder` still holds `lease` at `epoch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    /// The lease's name (`source:{name}`, `subscription:{name}`).
    pub lease: String,
    /// The node holding it.
    pub holder: String,
    /// The epoch it was taken at.
    pub epoch: u64,
}

/// A node of the cluster, as it announces itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAnnouncement {
    /// Its id (`[node] node_id`).
    pub id: String,
    /// Where its API is reached (`[node] advertise_url`, or its listen address).
    pub url: String,
    /// The tributary version it runs.
    pub version: String,
    /// When it started.
    pub started_at: Timestamp,
    /// Its problems as `/health` sees them (empty: healthy).
    pub problems: Vec<String>,
}

/// A node as the store last heard of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// What it announced.
    #[serde(flatten)]
    pub node: NodeAnnouncement,
    /// When it last announced itself (store clock).
    pub seen_at: Timestamp,
    /// It announced itself within the lease time.
    pub alive: bool,
}

/// A lease as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseView {
    /// `source:{name}` or `subscription:{name}`.
    pub name: String,
    /// The node holding it (or that last held it, when expired).
    pub holder: String,
    /// Grows by one each time the lease changes hands.
    pub epoch: u64,
    /// When it expires unless renewed (store clock).
    pub expires_at: Timestamp,
    /// It has expired: the next node to ask takes it.
    pub expired: bool,
}

/// The nodes and the leases of a shared store.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    /// Every node that announced itself recently (within ten lease times), by id.
    pub nodes: Vec<NodeView>,
    /// Every lease, by name.
    pub leases: Vec<LeaseView>,
}

/// The leases of a store shared by several nodes.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Records `node` as alive now (its row in [`ClusterView::nodes`]).
    async fn announce(&self, node: &NodeAnnouncement) -> Result<(), crate::StoreError>;
    /// Removes `node` from the list (a clean shutdown).
    async fn leave(&self, node: &str) -> Result<(), crate::StoreError>;
    /// Takes `lease` for `node` for `ttl` when it is free or expired: the epoch it now has, or `None`
    /// while it is held (by another node, or by an earlier process of this node id that has not
    /// expired yet).
    async fn acquire(&self, lease: &str, node: &str, ttl: Duration) -> Result<Option<u64>, crate::StoreError>;
    /// Extends the leases `node` holds among `held` (name and epoch) by `ttl`: the names still held.
    /// One missing from the answer is lost (expired and taken, or released).
    async fn renew(&self, node: &str, held: &[Fence], ttl: Duration) -> Result<Vec<String>, crate::StoreError>;
    /// Gives a lease up (a clean stop), so another node takes it at once.
    async fn release(&self, fence: &Fence) -> Result<(), crate::StoreError>;
    /// The nodes and the leases, with `ttl` telling which nodes are alive.
    async fn view(&self, ttl: Duration) -> Result<ClusterView, crate::StoreError>;
    /// Sends a short message (at most [`MAX_MESSAGE_BYTES`]) to every node on this store, this one
    /// included: fire and forget, a node not listening at that moment misses it.
    async fn broadcast(&self, message: &str) -> Result<(), crate::StoreError>;
    /// The messages of [`Leases::broadcast`], as they arrive.
    fn messages(&self) -> tokio::sync::broadcast::Receiver<String>;
}

/// The longest message [`Leases::broadcast`] sends.
pub const MAX_MESSAGE_BYTES: usize = 7000;
