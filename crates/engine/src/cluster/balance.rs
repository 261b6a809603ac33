//! Spreading the leased work over the nodes. The first node to start takes every lease; as others join,
//! a node holding more than its share — the number of leases divided by the live nodes, rounded up —
//! gives one up (a clean stop and a release) at most once a lease time, and does not ask for it again for
//! two lease times, so a node with less work takes it. A node at or above its share asks for a held lease
//! only one time in four, so the others come first; a lease seen expired (its holder died) is asked for
//! by every node at once.

use super::ClusterSettings;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tributary_core::cluster::ClusterView;

/// What this node holds and gave up.
#[derive(Debug, Default)]
pub(crate) struct Shares {
    /// The leases held, each with the token that stops its work.
    held: Mutex<BTreeMap<String, CancellationToken>>,
    /// Leases given up, and when.
    shed: Mutex<HashMap<String, Instant>>,
    /// This node's share and what it holds, as of the last view: (share, held).
    load: Mutex<(usize, usize)>,
    /// Leases the views showed expired, since when (here).
    expired: Mutex<HashMap<String, Instant>>,
    /// Wakes the nodes' waits for a lease when a view shows one expired.
    pub(crate) wake: tokio::sync::Notify,
}

impl Shares {
    pub(crate) fn held(&self, lease: &str, lost: CancellationToken) {
        self.held.lock().expect("held lock").insert(lease.to_owned(), lost);
    }

    pub(crate) fn dropped(&self, lease: &str) {
        self.held.lock().expect("held lock").remove(lease);
    }

    /// Whether to ask for `lease` now: not for two lease times after giving it up, and, at or above
    /// this node's share, one time in four.
    pub(crate) fn may_ask(&self, cluster: &ClusterSettings, lease: &str) -> bool {
        if let Some(at) = self.shed.lock().expect("shed lock").get(lease)
            && at.elapsed() < cluster.lease * 2
        {
            return false;
        }
        let (share, held) = *self.load.lock().expect("load lock");
        held < share.max(1)
            || self.expired.lock().expect("expired lock").contains_key(lease)
            || rand::Rng::random_bool(&mut rand::rng(), 0.25)
    }

    /// Takes the latest view: records the load, and gives one lease up when holding more than the share
    /// (at most once a lease time).
    pub(crate) fn rebalance(&self, cluster: &ClusterSettings, view: ClusterView) {
        let alive = view.nodes.iter().filter(|n| n.alive).count().max(1);
        // Work whose lease expired lately still counts (its holder died): leases expired for ten lease
        // times are of sources and subscriptions that no longer exist.
        let active = {
            let mut expired = self.expired.lock().expect("expired lock");
            let before = expired.len();
            expired.retain(|name, _| view.leases.iter().any(|l| l.expired && l.name == *name));
            for l in view.leases.iter().filter(|l| l.expired) {
                expired.entry(l.name.clone()).or_insert_with(Instant::now);
            }
            if expired.len() > before {
                self.wake.notify_waiters();
            }
            let recent = expired.values().filter(|at| at.elapsed() < cluster.lease * 10).count();
            view.leases.iter().filter(|l| !l.expired).count() + recent
        };
        let share = active.div_ceil(alive);
        let mine: Vec<&str> = (view.leases.iter())
            .filter(|l| !l.expired && l.holder == cluster.node_id)
            .map(|l| l.name.as_str())
            .collect();
        *self.load.lock().expect("load lock") = (share, mine.len());
        if mine.len() <= share.max(1) {
            return;
        }
        let mut shed = self.shed.lock().expect("shed lock");
        if shed.values().any(|at| at.elapsed() < cluster.lease) {
            return;
        }
        let held = self.held.lock().expect("held lock");
        // The last by name: the same choice on every round, so one lease moves, not several in turn.
        if let Some((name, stop)) = mine.iter().rev().find_map(|m| held.get(*m).map(|t| (*m, t))) {
            tracing::info!(lease = %name, held = mine.len(), share, "this node holds more than its share of the work; giving a lease up to another node");
            shed.insert(name.to_owned(), Instant::now());
            stop.cancel();
        }
    }
}
