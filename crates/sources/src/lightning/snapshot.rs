//! What queries of the [`Graph`](super::graph::Graph) return: channels, directions and nodes at a time
//! T with their validity intervals, snapshots and diffs. All serialize to JSON (see
//! [`gossip`](super::gossip) for the conventions of the messages inside).

use super::gossip::{ChannelAnnouncement, ChannelUpdate, NodeAnnouncement, ShortChannelId};
use serde::Serialize;

/// One direction of a channel at a time T.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DirectionState {
    /// The latest update at T.
    pub update: ChannelUpdate,
    /// Its timestamp: start of its validity.
    pub valid_from: u32,
    /// The next update's timestamp, if any: end of its validity (exclusive).
    pub valid_until: Option<u32>,
}

/// A channel at a time T.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelState {
    /// The channel.
    pub short_channel_id: ShortChannelId,
    /// Whether it is open at T.
    pub open: bool,
    /// Start of its life (see the module docs).
    pub opened_at: Option<u32>,
    /// When a `channel_dying` closed it.
    pub closed_at: Option<u32>,
    /// From 4101, when known.
    pub capacity_sat: Option<u64>,
    /// Its announcement.
    pub announcement: ChannelAnnouncement,
    /// Direction 0 (from `node_id_1`) and 1, at T.
    pub updates: [Option<DirectionState>; 2],
}

/// A node at a time T.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeState {
    /// The latest announcement at T.
    pub announcement: NodeAnnouncement,
    /// Its timestamp.
    pub valid_from: u32,
    /// The next announcement's timestamp, if any.
    pub valid_until: Option<u32>,
}

/// The graph at a time T.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// T.
    pub at: u32,
    /// Open channels, by short channel id.
    pub channels: Vec<ChannelState>,
    /// Announced nodes with an open channel, by node id.
    pub nodes: Vec<NodeState>,
}

/// How the graph changed between two times.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GraphDiff {
    /// Start.
    pub from: u32,
    /// End.
    pub to: u32,
    /// Open at `to`, not at `from`.
    pub channels_opened: Vec<ShortChannelId>,
    /// Open at `from`, not at `to`.
    pub channels_closed: Vec<ShortChannelId>,
    /// Open at both, with a different latest update in this direction.
    pub updates_changed: Vec<UpdateChange>,
    /// Node ids (hex) with an announcement at `to` and none at `from`.
    pub nodes_added: Vec<String>,
    /// Node ids (hex) with a different announcement at `to` than at `from`.
    pub nodes_changed: Vec<String>,
    /// Node ids (hex) in the snapshot at `from` and not at `to`.
    pub nodes_removed: Vec<String>,
}

/// A direction whose policy changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UpdateChange {
    /// The channel.
    pub short_channel_id: ShortChannelId,
    /// 0 or 1.
    pub direction: u8,
    /// Timestamp of the update in force at `from`.
    pub from_timestamp: Option<u32>,
    /// Timestamp of the update in force at `to`.
    pub to_timestamp: Option<u32>,
}
