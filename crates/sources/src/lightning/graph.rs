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

use super::gossip::{Gossip, ShortChannelId};
use super::id::write_raw_gossip;
pub use super::snapshot::{ChannelState, DirectionState, GraphDiff, NodeState, Snapshot, UpdateChange};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

type Raw = Arc<[u8]>;

/// Versions of one thing, by their own timestamp.
type Versions = BTreeMap<u32, Raw>;

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

fn at_or_before(v: &Versions, at: u32) -> Option<InForce<'_>> {
    let (&from, raw) = v.range(..=at).next_back()?;
    let until = v.range(from + 1..).next().map(|(t, _)| *t);
    Some((from, raw, until))
}

#[derive(Debug, Default)]
struct Channel {
    announcement: Option<Raw>,
    node_ids: Option<[[u8; 33]; 2]>,
    first_seen: Option<u32>,
    capacity_sat: Option<u64>,
    closed_at: Option<u32>,
    updates: [Versions; 2],
}

impl Channel {
    fn opened_at(&self) -> Option<u32> {
        let first_update = self.updates.iter().filter_map(|v| v.keys().next()).min();
        match (self.first_seen, first_update) {
            (Some(a), Some(b)) => Some(a.min(*b)),
            (a, b) => a.or(b.copied()),
        }
    }
    fn open_at(&self, at: u32) -> bool {
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
#[derive(Debug, Default)]
pub struct Graph {
    channels: HashMap<ShortChannelId, Channel>,
    nodes: HashMap<[u8; 33], Versions>,
    last_announced: Option<ShortChannelId>,
}

/// A version in force at T: its timestamp, its bytes, the next version's timestamp.
type InForce<'a> = (u32, &'a Raw, Option<u32>);

/// Raw selection of a snapshot: announcement, updates and node announcements in force at T.
struct Selected<'a> {
    channels: Vec<(ShortChannelId, &'a Channel, [Option<InForce<'a>>; 2])>,
    nodes: Vec<([u8; 33], InForce<'a>)>,
}

fn decoded<T>(raw: &[u8], pick: impl Fn(Gossip) -> Option<T>) -> T {
    super::decode::decode(raw)
        .ok()
        .and_then(pick)
        .expect("the graph keeps only messages that decoded")
}

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

    fn select(&self, at: u32) -> Selected<'_> {
        let mut channels: Vec<_> = self
            .channels
            .iter()
            .filter(|(_, c)| c.open_at(at))
            .map(|(s, c)| (*s, c, [0, 1].map(|d| at_or_before(&c.updates[d], at))))
            .collect();
        channels.sort_unstable_by_key(|(s, ..)| *s);
        let ids: BTreeSet<[u8; 33]> = channels
            .iter()
            .flat_map(|(_, c, _)| c.node_ids.into_iter().flatten())
            .collect();
        let nodes = ids
            .into_iter()
            .filter_map(|id| Some((id, at_or_before(self.nodes.get(&id)?, at)?)))
            .collect();
        Selected { channels, nodes }
    }

    fn channel_state(&self, scid: ShortChannelId, c: &Channel, at: u32) -> Option<ChannelState> {
        let announcement = decoded(c.announcement.as_ref()?, |g| match g {
            Gossip::ChannelAnnouncement(m) => Some(m),
            _ => None,
        });
        let dir = |d: usize| {
            at_or_before(&c.updates[d], at).map(|(from, raw, until)| DirectionState {
                update: decoded(raw, |g| match g {
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

    fn node_state((from, raw, until): InForce<'_>) -> NodeState {
        NodeState {
            announcement: decoded(raw, |g| match g {
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
                .filter_map(|(s, c, _)| self.channel_state(*s, c, at))
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
        self.channel_state(scid, self.channels.get(&scid)?, at)
    }

    /// A node's latest announcement at `at`.
    pub fn node(&self, node_id: &[u8; 33], at: u32) -> Option<NodeState> {
        at_or_before(self.nodes.get(node_id)?, at).map(Self::node_state)
    }

    /// What changed between `from` and `to`.
    pub fn diff(&self, from: u32, to: u32) -> GraphDiff {
        let (a, b) = (self.select(from), self.select(to));
        let ts = |u: &Option<InForce<'_>>| u.map(|(t, _, _)| t);
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
                if x.map(|v| v.1) != y.map(|v| v.1) {
                    d.updates_changed.push(UpdateChange {
                        short_channel_id: *s,
                        direction: dir as u8,
                        from_timestamp: ts(x),
                        to_timestamp: ts(y),
                    });
                }
            }
        }
        let na: BTreeMap<_, _> = a.nodes.iter().map(|(id, v)| (*id, v.1)).collect();
        let nb: BTreeMap<_, _> = b.nodes.iter().map(|(id, v)| (*id, v.1)).collect();
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
