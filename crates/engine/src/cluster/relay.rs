//! Commands for a subscription whose worker runs on another node: a standby node sends them through
//! the store ([`tributary_core::cluster::Leases::broadcast`]) to the node holding the lease, whose
//! [`receive`] hands them to its worker. Not kept: a command sent while the lease changes hands may be
//! lost, and the API says so (`no_holder`) when no node holds the lease. The same channel carries
//! [`super::sync::CHANGED`]: another node changed an API subscription.

use super::ClusterSettings;
use crate::registry::{ManageError, SubscriptionHandle};
use crate::subscription::Control;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;
use tributary_core::Store;

/// One command on its way.
#[derive(Serialize, Deserialize)]
struct Message {
    to: String,
    subscription: String,
    control: Control,
}

/// Sequence numbers per message, so one stays well under the store's message size.
const SEQS_PER_MESSAGE: usize = 256;

/// Sends `control` to the node holding `subscription`'s lease: `false` when that is this node (the
/// caller hands it to its own worker).
pub(crate) async fn forward(
    store: &dyn Store,
    cluster: &ClusterSettings,
    subscription: &str,
    control: Control,
) -> Result<bool, ManageError> {
    let Some(leases) = store.leases() else { return Ok(false) };
    let lease = format!("subscription:{subscription}");
    let view = leases.view(cluster.lease).await?;
    let holder = view.leases.into_iter().find(|l| l.name == lease && !l.expired);
    let Some(holder) = holder.map(|l| l.holder) else {
        return Err(ManageError::NoHolder(subscription.to_owned()));
    };
    if holder == cluster.node_id {
        return Ok(false);
    }
    let parts = match control {
        Control::Requeue(seqs) => seqs
            .chunks(SEQS_PER_MESSAGE)
            .map(|c| Control::Requeue(c.to_vec()))
            .collect(),
        Control::Purge(seqs) => seqs
            .chunks(SEQS_PER_MESSAGE)
            .map(|c| Control::Purge(c.to_vec()))
            .collect(),
        other => vec![other],
    };
    for control in parts {
        let message = Message {
            to: holder.clone(),
            subscription: subscription.to_owned(),
            control,
        };
        let body = serde_json::to_string(&message).unwrap_or_default();
        leases.broadcast(&body).await?;
    }
    Ok(true)
}

/// Hands the commands addressed to this node to its workers, until `shutdown`.
pub(crate) async fn receive(
    store: Arc<dyn Store>,
    cluster: Arc<ClusterSettings>,
    subscriptions: Arc<RwLock<BTreeMap<String, Arc<SubscriptionHandle>>>>,
    sync_now: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) {
    let Some(leases) = store.leases() else { return };
    let mut messages = leases.messages();
    loop {
        let body = tokio::select! {
            _ = shutdown.cancelled() => return,
            body = messages.recv() => match body {
                Ok(body) => body,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "missed commands relayed from other nodes; send them again");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        };
        if body == super::sync::CHANGED {
            sync_now.notify_one();
            continue;
        }
        let Ok(message) = serde_json::from_str::<Message>(&body) else {
            continue;
        };
        if message.to != cluster.node_id {
            continue;
        }
        let handle = subscriptions
            .read()
            .expect("subscriptions lock")
            .get(&message.subscription)
            .cloned();
        match handle {
            Some(h) if h.control.send(message.control).await.is_ok() => {}
            _ => {
                tracing::warn!(subscription = %message.subscription, "a command relayed from another node found no running worker here")
            }
        }
    }
}
