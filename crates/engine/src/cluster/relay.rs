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
use tributary_core::{Seq, Store};

/// One command on its way.
#[derive(Serialize, Deserialize)]
struct Message {
    to: String,
    subscription: String,
    command: Wire,
}

/// A [`Control`] with its sequence numbers as inclusive ranges (a replay of a range is one message).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Wire {
    Pause,
    Resume,
    Requeue(Vec<(Seq, Seq)>),
    Purge(Vec<(Seq, Seq)>),
}

/// Ranges per message, so one stays well under the store's message size.
const RANGES_PER_MESSAGE: usize = 128;
/// Most sequence numbers one received message may stand for (a bound on what a message makes this
/// node hold in memory).
const MAX_SEQS_PER_MESSAGE: u64 = 100_000;

/// Sorted, merged inclusive ranges of `seqs`.
fn ranges(mut seqs: Vec<Seq>) -> Vec<(Seq, Seq)> {
    seqs.sort_unstable();
    seqs.dedup();
    let mut out: Vec<(Seq, Seq)> = Vec::new();
    for s in seqs {
        match out.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(s) => *end = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// The sequence numbers of `ranges`, or `None` when they stand for more than a message may.
fn expand(ranges: &[(Seq, Seq)]) -> Option<Vec<Seq>> {
    let mut total: u64 = 0;
    for (a, b) in ranges {
        total = total.checked_add(b.checked_sub(*a)?.checked_add(1)?)?;
    }
    (total <= MAX_SEQS_PER_MESSAGE).then(|| ranges.iter().flat_map(|(a, b)| *a..=*b).collect())
}

impl Wire {
    /// The messages carrying `control`.
    fn of(control: Control) -> Vec<Wire> {
        let split = |seqs: Vec<Seq>, make: fn(Vec<(Seq, Seq)>) -> Wire| -> Vec<Wire> {
            let all = ranges(seqs);
            let mut out = Vec::new();
            let mut part: Vec<(Seq, Seq)> = Vec::new();
            let mut count = 0;
            for (a, b) in all {
                let mut start = a;
                while start <= b {
                    let room = MAX_SEQS_PER_MESSAGE - count;
                    let end = b.min(start.saturating_add(room - 1));
                    part.push((start, end));
                    count += end - start + 1;
                    if part.len() == RANGES_PER_MESSAGE || count == MAX_SEQS_PER_MESSAGE {
                        out.push(make(std::mem::take(&mut part)));
                        count = 0;
                    }
                    match end.checked_add(1) {
                        Some(next) => start = next,
                        None => break,
                    }
                }
            }
            if !part.is_empty() {
                out.push(make(part));
            }
            out
        };
        match control {
            Control::Pause => vec![Wire::Pause],
            Control::Resume => vec![Wire::Resume],
            Control::Requeue(seqs) => split(seqs, Wire::Requeue),
            Control::Purge(seqs) => split(seqs, Wire::Purge),
        }
    }

    fn control(self) -> Option<Control> {
        Some(match self {
            Wire::Pause => Control::Pause,
            Wire::Resume => Control::Resume,
            Wire::Requeue(r) => Control::Requeue(expand(&r)?),
            Wire::Purge(r) => Control::Purge(expand(&r)?),
        })
    }
}

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
    for command in Wire::of(control) {
        let message = Message {
            to: holder.clone(),
            subscription: subscription.to_owned(),
            command,
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
        let (Some(h), Some(control)) = (handle.filter(|h| !h.is_standby()), message.command.control()) else {
            tracing::warn!(subscription = %message.subscription, "a command relayed from another node found no worker delivering here (the lease moved?); it is dropped: send it again");
            continue;
        };
        // Not awaited here: a busy worker must not hold up the commands of the others.
        tokio::spawn(async move {
            let sent = tokio::time::timeout(std::time::Duration::from_secs(30), h.control.send(control)).await;
            if !matches!(sent, Ok(Ok(()))) {
                tracing::warn!(subscription = %h.config.name, "a command relayed from another node could not be handed to the worker within 30 s; it is dropped: send it again");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_travel_as_ranges_and_come_back_whole() {
        let seqs = vec![7, 3, 4, 5, 9, 10, 3];
        assert_eq!(ranges(seqs), vec![(3, 5), (7, 7), (9, 10)]);
        let wire = Wire::of(Control::Requeue((1..=300_000).collect()));
        assert_eq!(wire.len(), 3, "a message stands for at most MAX_SEQS_PER_MESSAGE seqs");
        let back: Vec<Seq> = wire
            .into_iter()
            .flat_map(|w| match w.control() {
                Some(Control::Requeue(s)) => s,
                _ => panic!("not a requeue"),
            })
            .collect();
        assert_eq!(back, (1..=300_000).collect::<Vec<_>>());
        let scattered: Vec<Seq> = (0..1000).map(|i| i * 2).collect();
        let wire = Wire::of(Control::Purge(scattered.clone()));
        assert_eq!(wire.len(), 8, "128 ranges a message");
        for w in &wire {
            assert!(
                serde_json::to_string(&Message {
                    to: "n".into(),
                    subscription: "s".into(),
                    command: match w {
                        Wire::Purge(r) => Wire::Purge(r.clone()),
                        _ => unreachable!(),
                    }
                })
                .unwrap()
                .len()
                    < tributary_core::cluster::MAX_MESSAGE_BYTES
            );
        }
    }

    #[test]
    fn a_message_standing_for_too_many_seqs_is_refused() {
        assert!(Wire::Requeue(vec![(0, u64::MAX)]).control().is_none());
        assert!(Wire::Requeue(vec![(5, 4)]).control().is_none(), "an inverted range");
        assert!(Wire::Purge(vec![(1, MAX_SEQS_PER_MESSAGE)]).control().is_some());
    }
}
