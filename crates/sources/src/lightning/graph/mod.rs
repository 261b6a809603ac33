//! The channel graph in time: pure in-memory logic over (verified) gossip, answering "what did the graph
//! look like at T" whatever order the messages arrived in.
//!
//! Validity intervals come from each message's own timestamp. For one channel direction, updates at
//! t₁ < t₂ < … are valid over `[t₁, t₂)`, `[t₂, t₃)`, …, `[tₙ, ∞)`: the versions are kept sorted by
//! timestamp, so updates arriving at 3, 1, 2 give `[1,2) [2,3) [3,∞)`. Node announcements work the same
//! per node. Two different messages with the same key and timestamp: the one with the greater raw bytes
//! is kept, so the outcome does not depend on arrival order.
//!
//! Channels: a `channel_announcement` carries no timestamp. A channel is open from the earlier of (a)
//! the first time its announcement was seen (`seen_at`, the caller's clock: the `gossip_store` record
//! timestamp or the collector's observation time) and (b) the own timestamp of its first
//! `channel_update`. Funding-block time would need a chain backend; (b) makes the result independent of
//! how late the collector saw the announcement. A 4106 `channel_dying` closes it at its `seen_at` (the
//! earliest one counts): open over `[opened_at, closed_at)`. A 4101 `channel_amount` gives the capacity
//! of the channel announced by the message just before it in the same stream.
//!
//! A snapshot lists the announced channels open at T, each with the latest update per direction at T,
//! and the latest node announcement at T of every node with an open channel.
//!
//! - [`view`]: the queries (snapshots, channels, nodes, diffs), over one graph or several merged on the
//!   fly ([`GraphView`]: one graph per source, combined per request for a caller who sees several).
//! - [`codec`]: the graph as bytes, for the snapshot the node keeps on disk.

pub mod codec;
pub mod view;

use super::gossip::{Gossip, ShortChannelId};
pub use super::snapshot::{ChannelState, DirectionState, GraphDiff, NodeState, Snapshot, UpdateChange};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
pub use view::GraphView;

pub(crate) type Raw = Arc<[u8]>;

/// Versions of one thing, by their own timestamp.
pub(crate) type Versions = BTreeMap<u32, Raw>;

/// Inserts keeping the greater bytes on a timestamp tie. Returns whether something changed.
fn insert_version(v: &mut Versions, at: u32, raw: &[u8]) -> Applied {
    match v.get(&at) {
        Some(old) if **old == *raw => Applied::Duplicate,
        Some(old) if **old > *raw => Applied::Ignored,
        _ => {
            v.insert(at, Raw::from(raw));
            Applied::Inserted
        }
    }
}

/// Merges `from` into `into` by the same rule as [`insert_version`].
pub(crate) fn merge_versions(into: &mut Versions, from: &Versions) {
    for (at, raw) in from {
        insert_version(into, *at, raw);
    }
}

pub(crate) fn at_or_before(v: &Versions, at: u32) -> Option<InForce> {
    let (&from, raw) = v.range(..=at).next_back()?;
    let until = v.range(from + 1..).next().map(|(t, _)| *t);
    Some((from, raw.clone(), until))
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Channel {
    pub(crate) announcement: Option<Raw>,
    pub(crate) node_ids: Option<[[u8; 33]; 2]>,
    pub(crate) first_seen: Option<u32>,
    pub(crate) capacity_sat: Option<u64>,
    pub(crate) closed_at: Option<u32>,
    pub(crate) updates: [Versions; 2],
}

impl Channel {
    /// Merges another graph's record of the same channel: the greater announcement bytes, the earliest
    /// first sighting and closing, a known capacity, every update (ties: greater bytes).
    pub(crate) fn merge(&mut self, other: &Channel) {
        match (&self.announcement, &other.announcement) {
            (Some(a), Some(b)) if **b > **a => {
                self.announcement = other.announcement.clone();
                self.node_ids = other.node_ids;
            }
            (None, Some(_)) => {
                self.announcement = other.announcement.clone();
                self.node_ids = other.node_ids;
            }
            _ => {}
        }
        let min = |a: Option<u32>, b: Option<u32>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.first_seen = min(self.first_seen, other.first_seen);
        self.closed_at = min(self.closed_at, other.closed_at);
        self.capacity_sat = self.capacity_sat.or(other.capacity_sat);
        for d in 0..2 {
            merge_versions(&mut self.updates[d], &other.updates[d]);
        }
    }

    pub(crate) fn opened_at(&self) -> Option<u32> {
        let first_update = self.updates.iter().filter_map(|v| v.keys().next()).min();
        match (self.first_seen, first_update) {
            (Some(a), Some(b)) => Some(a.min(*b)),
            (a, b) => a.or(b.copied()),
        }
    }
    pub(crate) fn open_at(&self, at: u32) -> bool {
        self.announcement.is_some()
            && self.opened_at().is_some_and(|o| o <= at)
            && self.closed_at.is_none_or(|c| at < c)
    }
}

/// What [`Graph::apply`] did with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Applied {
    /// A new version was recorded.
    Inserted,
    /// The same bytes were known.
    Duplicate,
    /// Another message with the same timestamp and greater bytes is kept instead.
    Ignored,
    /// A capacity was recorded for the preceding announcement.
    Capacity,
    /// A channel was marked closed.
    Closed,
    /// Nothing to record (other records, or a 4101 not right after an announcement).
    Skipped,
}

/// The graph's history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Graph {
    pub(crate) channels: HashMap<ShortChannelId, Channel>,
    pub(crate) nodes: HashMap<[u8; 33], Versions>,
    pub(crate) last_announced: Option<ShortChannelId>,
}

/// A version in force at T: its timestamp, its bytes, the next version's timestamp.
pub(crate) type InForce = (u32, Raw, Option<u32>);

impl Graph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a message seen at `seen_at` (Unix seconds, the caller's clock). Feed one stream in order:
    /// a 4101 applies to the announcement just before it.
    pub fn apply(&mut self, g: &Gossip, seen_at: u32) -> Applied {
        let last = self.last_announced.take();
        match g {
            Gossip::ChannelAnnouncement(m) => {
                let c = self.channels.entry(m.short_channel_id).or_default();
                self.last_announced = Some(m.short_channel_id);
                c.first_seen = Some(c.first_seen.map_or(seen_at, |f| f.min(seen_at)));
                match &c.announcement {
                    Some(old) if **old == *m.raw => Applied::Duplicate,
                    Some(old) if **old > *m.raw => Applied::Ignored,
                    _ => {
                        c.announcement = Some(Raw::from(&m.raw[..]));
                        c.node_ids = Some([m.node_id_1, m.node_id_2]);
                        Applied::Inserted
                    }
                }
            }
            Gossip::ChannelUpdate(m) => {
                let c = self.channels.entry(m.short_channel_id).or_default();
                insert_version(&mut c.updates[m.direction as usize], m.timestamp, &m.raw)
            }
            Gossip::NodeAnnouncement(m) => {
                insert_version(self.nodes.entry(m.node_id).or_default(), m.timestamp, &m.raw)
            }
            Gossip::ChannelAmount { satoshis } => match last.and_then(|s| self.channels.get_mut(&s)) {
                Some(c) => {
                    c.capacity_sat = Some(*satoshis);
                    Applied::Capacity
                }
                None => Applied::Skipped,
            },
            Gossip::ChannelDying { short_channel_id, .. } => {
                let c = self.channels.entry(*short_channel_id).or_default();
                c.closed_at = Some(c.closed_at.map_or(seen_at, |t| t.min(seen_at)));
                Applied::Closed
            }
            Gossip::Skipped { .. } => Applied::Skipped,
        }
    }

    /// Records a channel's capacity (a 4101 read back from a log, where it names its channel).
    pub fn set_capacity(&mut self, scid: ShortChannelId, satoshis: u64) -> Applied {
        self.channels.entry(scid).or_default().capacity_sat = Some(satoshis);
        Applied::Capacity
    }

    /// Channels known (announced or not), and nodes with an announcement.
    pub fn counts(&self) -> (usize, usize) {
        (self.channels.len(), self.nodes.len())
    }

    /// The validity intervals of one channel direction's updates, oldest first.
    pub fn update_intervals(&self, scid: ShortChannelId, direction: u8) -> Vec<(u32, Option<u32>)> {
        let Some(c) = self.channels.get(&scid) else {
            return Vec::new();
        };
        let v = &c.updates[(direction & 1) as usize];
        let starts: Vec<u32> = v.keys().copied().collect();
        (0..starts.len())
            .map(|i| (starts[i], starts.get(i + 1).copied()))
            .collect()
    }

    /// The queries over this graph alone.
    pub fn view(&self) -> GraphView<'_> {
        GraphView::new(vec![self])
    }

    /// The graph at `at`: open channels with their latest update per direction, and their nodes.
    pub fn snapshot(&self, at: u32) -> Snapshot {
        self.view().snapshot(at)
    }

    /// The same snapshot as concatenated canonical `raw_gossip` envelopes (see [`GraphView::snapshot_raw`]).
    pub fn snapshot_raw(&self, at: u32) -> Vec<u8> {
        self.view().snapshot_raw(at)
    }

    /// A channel at `at` (also when closed or not yet open then), if its announcement is known.
    pub fn channel(&self, scid: ShortChannelId, at: u32) -> Option<ChannelState> {
        self.view().channel(scid, at)
    }

    /// A node's latest announcement at `at`.
    pub fn node(&self, node_id: &[u8; 33], at: u32) -> Option<NodeState> {
        self.view().node(node_id, at)
    }

    /// What changed between `from` and `to`.
    pub fn diff(&self, from: u32, to: u32) -> GraphDiff {
        self.view().diff(from, to)
    }
}
