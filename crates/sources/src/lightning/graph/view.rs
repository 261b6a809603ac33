//! Queries of the graph in time over one [`Graph`] or several merged on the fly.
//!
//! The node keeps one graph per `lightning` source, so that a caller sees only what its sources
//! gossiped. A caller who sees several sources (the admin) gets them combined per request: a channel or
//! node known to one graph is borrowed as it is; one known to several is merged for the answer by the
//! graph's own rules (the greater bytes win a timestamp tie, the earliest sighting and closing count), so
//! the combination does not depend on the order of the sources. A view over one graph costs nothing
//! extra; merging costs at most a copy of the channels and nodes present in more than one graph.

use super::{
    Channel, ChannelState, DirectionState, Graph, GraphDiff, InForce, NodeState, Snapshot, UpdateChange, Versions,
    at_or_before, merge_versions,
};
use crate::lightning::gossip::{Gossip, ShortChannelId};
use crate::lightning::id::write_raw_gossip;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// One graph, or several seen as one.
#[derive(Clone, Debug)]
pub struct GraphView<'a> {
    graphs: Vec<&'a Graph>,
}

/// Raw selection of a snapshot: announcement, updates and node announcements in force at T.
struct Selected<'a> {
    channels: Vec<(ShortChannelId, Cow<'a, Channel>, [Option<InForce>; 2])>,
    nodes: Vec<([u8; 33], InForce)>,
}

fn decoded<T>(raw: &[u8], pick: impl Fn(Gossip) -> Option<T>) -> T {
    crate::lightning::decode::decode(raw)
        .ok()
        .and_then(pick)
        .expect("the graph keeps only messages that decoded")
}

impl<'a> GraphView<'a> {
    /// The view of these graphs combined (none: an empty graph).
    pub fn new(graphs: Vec<&'a Graph>) -> Self {
        Self { graphs }
    }

    /// Channels known (announced or not) and nodes with an announcement, in the combination.
    pub fn counts(&self) -> (usize, usize) {
        match self.graphs[..] {
            [g] => g.counts(),
            _ => (self.scids().len(), self.node_ids().len()),
        }
    }

    fn scids(&self) -> Vec<ShortChannelId> {
        let set: BTreeSet<ShortChannelId> = self.graphs.iter().flat_map(|g| g.channels.keys().copied()).collect();
        set.into_iter().collect()
    }

    fn node_ids(&self) -> BTreeSet<[u8; 33]> {
        self.graphs.iter().flat_map(|g| g.nodes.keys().copied()).collect()
    }

    fn channel_of(&self, scid: ShortChannelId) -> Option<Cow<'a, Channel>> {
        let mut found = self.graphs.iter().filter_map(|g| g.channels.get(&scid));
        let first = found.next()?;
        let Some(second) = found.next() else {
            return Some(Cow::Borrowed(first));
        };
        let mut merged = first.clone();
        merged.merge(second);
        for c in found {
            merged.merge(c);
        }
        Some(Cow::Owned(merged))
    }

    fn versions_of(&self, node_id: &[u8; 33]) -> Option<Cow<'a, Versions>> {
        let mut found = self.graphs.iter().filter_map(|g| g.nodes.get(node_id));
        let first = found.next()?;
        let Some(second) = found.next() else {
            return Some(Cow::Borrowed(first));
        };
        let mut merged = first.clone();
        merge_versions(&mut merged, second);
        for v in found {
            merge_versions(&mut merged, v);
        }
        Some(Cow::Owned(merged))
    }

    fn select(&self, at: u32) -> Selected<'a> {
        let chosen: Vec<(ShortChannelId, Cow<'a, Channel>)> = match self.graphs[..] {
            [g] => g
                .channels
                .iter()
                .filter(|(_, c)| c.open_at(at))
                .map(|(s, c)| (*s, Cow::Borrowed(c)))
                .collect(),
            _ => self
                .scids()
                .into_iter()
                .filter_map(|s| Some((s, self.channel_of(s)?)))
                .filter(|(_, c)| c.open_at(at))
                .collect(),
        };
        let mut channels: Vec<_> = chosen
            .into_iter()
            .map(|(s, c)| {
                let updates = [0, 1].map(|d| at_or_before(&c.updates[d], at));
                (s, c, updates)
            })
            .collect();
        channels.sort_unstable_by_key(|(s, ..)| *s);
        let ids: BTreeSet<[u8; 33]> = channels
            .iter()
            .flat_map(|(_, c, _)| c.node_ids.into_iter().flatten())
            .collect();
        let nodes = ids
            .into_iter()
            .filter_map(|id| Some((id, at_or_before(self.versions_of(&id)?.as_ref(), at)?)))
            .collect();
        Selected { channels, nodes }
    }

    fn channel_state(scid: ShortChannelId, c: &Channel, at: u32) -> Option<ChannelState> {
        let announcement = decoded(c.announcement.as_ref()?, |g| match g {
            Gossip::ChannelAnnouncement(m) => Some(m),
            _ => None,
        });
        let dir = |d: usize| {
            at_or_before(&c.updates[d], at).map(|(from, raw, until)| DirectionState {
                update: decoded(&raw, |g| match g {
                    Gossip::ChannelUpdate(m) => Some(m),
                    _ => None,
                }),
                valid_from: from,
                valid_until: until,
            })
        };
        Some(ChannelState {
            short_channel_id: scid,
            open: c.open_at(at),
            opened_at: c.opened_at(),
            closed_at: c.closed_at,
            capacity_sat: c.capacity_sat,
            announcement: *announcement,
            updates: [dir(0), dir(1)],
        })
    }

    fn node_state((from, raw, until): InForce) -> NodeState {
        NodeState {
            announcement: decoded(&raw, |g| match g {
                Gossip::NodeAnnouncement(m) => Some(m),
                _ => None,
            }),
            valid_from: from,
            valid_until: until,
        }
    }

    /// The graph at `at`: open channels with their latest update per direction, and their nodes.
    pub fn snapshot(&self, at: u32) -> Snapshot {
        let sel = self.select(at);
        Snapshot {
            at,
            channels: sel
                .channels
                .iter()
                .filter_map(|(s, c, _)| Self::channel_state(*s, c, at))
                .collect(),
            nodes: sel.nodes.into_iter().map(|(_, v)| Self::node_state(v)).collect(),
        }
    }

    /// The same snapshot as concatenated canonical `raw_gossip` envelopes (what ln-history's snapshot
    /// endpoint serves): per channel its announcement then its updates (direction 0, 1), then the nodes.
    pub fn snapshot_raw(&self, at: u32) -> Vec<u8> {
        let sel = self.select(at);
        let mut out = Vec::new();
        for (_, c, updates) in &sel.channels {
            if let Some(a) = &c.announcement {
                write_raw_gossip(a, &mut out);
            }
            for (_, raw, _) in updates.iter().flatten() {
                write_raw_gossip(raw, &mut out);
            }
        }
        for (_, (_, raw, _)) in &sel.nodes {
            write_raw_gossip(raw, &mut out);
        }
        out
    }

    /// A channel at `at` (also when closed or not yet open then), if its announcement is known.
    pub fn channel(&self, scid: ShortChannelId, at: u32) -> Option<ChannelState> {
        Self::channel_state(scid, self.channel_of(scid)?.as_ref(), at)
    }

    /// A node's latest announcement at `at`.
    pub fn node(&self, node_id: &[u8; 33], at: u32) -> Option<NodeState> {
        at_or_before(self.versions_of(node_id)?.as_ref(), at).map(Self::node_state)
    }

    /// What changed between `from` and `to`.
    pub fn diff(&self, from: u32, to: u32) -> GraphDiff {
        let (a, b) = (self.select(from), self.select(to));
        let ts = |u: &Option<InForce>| u.as_ref().map(|(t, _, _)| *t);
        let raw = |u: &Option<InForce>| u.as_ref().map(|(_, r, _)| r.clone());
        let before: BTreeMap<_, _> = a.channels.iter().map(|(s, _, u)| (*s, u)).collect();
        let after: BTreeMap<_, _> = b.channels.iter().map(|(s, _, u)| (*s, u)).collect();
        let mut d = GraphDiff {
            from,
            to,
            ..GraphDiff::default()
        };
        d.channels_opened = after.keys().filter(|s| !before.contains_key(s)).copied().collect();
        d.channels_closed = before.keys().filter(|s| !after.contains_key(s)).copied().collect();
        for (s, ub) in &after {
            let Some(ua) = before.get(s) else { continue };
            for dir in 0..2 {
                let (x, y) = (&ua[dir], &ub[dir]);
                if raw(x) != raw(y) {
                    d.updates_changed.push(UpdateChange {
                        short_channel_id: *s,
                        direction: dir as u8,
                        from_timestamp: ts(x),
                        to_timestamp: ts(y),
                    });
                }
            }
        }
        let na: BTreeMap<_, _> = a.nodes.iter().map(|(id, v)| (*id, &v.1)).collect();
        let nb: BTreeMap<_, _> = b.nodes.iter().map(|(id, v)| (*id, &v.1)).collect();
        for (id, raw) in &nb {
            match na.get(id) {
                None => d.nodes_added.push(hex::encode(id)),
                Some(old) if old != raw => d.nodes_changed.push(hex::encode(id)),
                _ => {}
            }
        }
        d.nodes_removed = na.keys().filter(|id| !nb.contains_key(*id)).map(hex::encode).collect();
        d
    }
}
