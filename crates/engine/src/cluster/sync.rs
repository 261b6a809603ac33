//! Several nodes on one store: API subscriptions created, changed or deleted through one node reach the
//! others. Each node reconciles its running subscriptions with the shared catalog every half lease time,
//! and at once when another node says it changed one ([`changed`]).

use crate::node::Node;
use crate::registry::{Loaded, Origin};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tributary_core::StoreError;

/// The message a node broadcasts after changing an API subscription.
pub(crate) const CHANGED: &str = r#"{"sync":true}"#;

/// Tells the other nodes that an API subscription changed (best effort: they also look every half lease time).
pub(crate) async fn changed(node: &Node) {
    if node.cluster.is_some()
        && let Some(leases) = node.store.leases()
        && let Err(error) = leases.broadcast(CHANGED).await
    {
        tracing::debug!(%error, "could not tell the other nodes of a subscription change; they see it within half a lease time");
    }
}

impl Node {
    /// Reconciles the node's API subscriptions with the catalog every half lease time (and when told),
    /// until the node stops. Nothing to do on a store of its own.
    pub fn start_cluster_sync(self: &Arc<Self>) {
        let Some(cluster) = self.cluster.clone() else { return };
        let node = Arc::downgrade(self);
        let (stop, told) = (self.workers_token.clone(), self.sync_now.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = told.notified() => {}
                    _ = tokio::time::sleep(cluster.lease / 2) => {}
                }
                let Some(node) = node.upgrade() else { return };
                if let Err(error) = node.sync_api_subscriptions().await {
                    tracing::debug!(%error, "could not read the subscriptions from the store; trying again");
                }
                // Changes come in bursts (a script creating many): look at most ten times a second.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }

    /// Starts the API subscriptions another node created, restarts those it changed, and stops those it
    /// deleted. Config-file subscriptions are never touched.
    pub async fn sync_api_subscriptions(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.manage.lock().await;
        let mut kept = HashSet::new();
        for loaded in crate::registry::load_api_subscriptions(self.store.as_ref()).await? {
            let sub = match loaded {
                Loaded::Ok(sub) => *sub,
                Loaded::Broken(b) => {
                    kept.insert(b.name);
                    continue;
                }
            };
            kept.insert(sub.name.clone());
            match self.subscription(&sub.name) {
                Some(h) if h.origin == Origin::Config || h.config == sub => {}
                Some(h) => {
                    tracing::info!(subscription = %sub.name, "changed through another node; restarting it with its new config");
                    h.stop().await;
                    self.subscriptions
                        .write()
                        .expect("subscriptions lock")
                        .remove(&sub.name);
                    let status = h.status.clone();
                    if let Err(error) = self.launch_with(sub.clone(), Origin::Api, status).await {
                        tracing::error!(subscription = %sub.name, %error, "a subscription changed through another node cannot start here");
                    }
                }
                None => {
                    let broken = self.broken_subscription(&sub.name);
                    let same = broken
                        .as_ref()
                        .is_some_and(|b| b.record == serde_json::to_value(&sub).ok());
                    if !same {
                        tracing::info!(subscription = %sub.name, "created through another node; starting it here");
                        self.launch_or_report(sub, Origin::Api).await;
                    }
                }
            }
        }
        for h in self.subscription_list() {
            if h.origin == Origin::Api && !kept.contains(&h.config.name) {
                tracing::info!(subscription = %h.config.name, "deleted through another node; stopping it here");
                h.stop().await;
                self.subscriptions
                    .write()
                    .expect("subscriptions lock")
                    .remove(&h.config.name);
            }
        }
        let gone: Vec<String> = (self.broken_subscriptions().into_iter())
            .filter(|b| b.origin == Origin::Api && !kept.contains(&b.name))
            .map(|b| b.name)
            .collect();
        for name in gone {
            self.broken.write().expect("broken lock").remove(&name);
        }
        Ok(())
    }
}
