//! Gossip as tributary events, and problems as events and rejects.
//!
//! | kind | id | key | `occurred_at` |
//! |---|---|---|---|
//! | `ln.channel_announcement` | `gossip_id` | `BLOCKxTXxOUT` | the input's timestamp (gossip_store record, collector), if any |
//! | `ln.node_announcement` | `gossip_id` | node id (hex) | the message's own timestamp |
//! | `ln.channel_update` | `gossip_id` | `BLOCKxTXxOUT` | the message's own timestamp |
//! | `ln.channel_amount` | sha256(announcement's `gossip_id` ‖ `raw_gossip` of the 4101) | `BLOCKxTXxOUT` of the announcement just before | the input's timestamp |
//! | `ln.channel_dying` | `gossip_id` | `BLOCKxTXxOUT` | the input's timestamp |
//! | `ln.problem.node` / `ln.problem.channel` | sha256(`"problem"` ‖ raw) | scid or node id when readable | — |
//!
//! `payload` is the raw type-prefixed message (empty for problems, whose `data.raw_hex` is their one copy
//! of it); `data` is the decoded message (see
//! [`gossip`](super::gossip), with `raw_hex`). A 4101 carries only a capacity, so two channels of the same
//! size have the same bytes: its id therefore includes the announcement it belongs to, and its `data`
//! names that channel (`short_channel_id`).
//!
//! A problem (malformed, bad signature, wrong chain, an update whose channel never arrived) is never a
//! gossip event. It becomes a [`Reject`] whose `reason` starts with the stable code of
//! [`VerifyError::reason`] (`bad_signature: …`), and an `ln.problem.*` event with
//! `data = {reason, detail, raw_hex, collector}` so that subscriptions can route it like ln-history's
//! `problem.*` topics.

use super::gossip::{Gossip, ShortChannelId};
use super::id::{gossip_id, raw_gossip};
use super::verify::VerifyError;
use super::wire;
use serde_json::{Value, json};
use tributary_core::{EventId, NewEvent, Reject, Timestamp};

/// Kind of a channel announcement event.
pub const KIND_CHANNEL_ANNOUNCEMENT: &str = "ln.channel_announcement";
/// Kind of a node announcement event.
pub const KIND_NODE_ANNOUNCEMENT: &str = "ln.node_announcement";
/// Kind of a channel update event.
pub const KIND_CHANNEL_UPDATE: &str = "ln.channel_update";
/// Kind of a Core Lightning 4101 event.
pub const KIND_CHANNEL_AMOUNT: &str = "ln.channel_amount";
/// Kind of a Core Lightning 4106 event.
pub const KIND_CHANNEL_DYING: &str = "ln.channel_dying";
/// Kind of a problem with a node announcement.
pub const KIND_PROBLEM_NODE: &str = "ln.problem.node";
/// Kind of a problem with a channel message (or an unreadable one).
pub const KIND_PROBLEM_CHANNEL: &str = "ln.problem.channel";

/// Where a message came from: its position in the input and the input's own timestamp.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// `offset N`, `line N`, or the collector's sequence.
    pub position: String,
    /// The gossip_store record's or the collector's timestamp (Unix seconds).
    pub timestamp: Option<u32>,
}

fn secs(t: u32) -> Timestamp {
    Timestamp::from_unix_secs(t as i64)
}

/// The event of a decoded message; `None` for records that are not events (4102–4105, 4107).
/// `announced` is the announcement just before in the same stream (for a 4101): its id and channel.
pub fn gossip_event(
    g: &Gossip,
    raw: &[u8],
    origin: &Origin,
    announced: Option<(EventId, ShortChannelId)>,
) -> Option<NewEvent> {
    let (kind, key, occurred_at) = match g {
        Gossip::ChannelAnnouncement(m) => (
            KIND_CHANNEL_ANNOUNCEMENT,
            m.short_channel_id.to_string(),
            origin.timestamp.map(secs),
        ),
        Gossip::NodeAnnouncement(m) => (
            KIND_NODE_ANNOUNCEMENT,
            wire::to_hex(&m.node_id),
            Some(secs(m.timestamp)),
        ),
        Gossip::ChannelUpdate(m) => (
            KIND_CHANNEL_UPDATE,
            m.short_channel_id.to_string(),
            Some(secs(m.timestamp)),
        ),
        Gossip::ChannelDying { short_channel_id, .. } => (
            KIND_CHANNEL_DYING,
            short_channel_id.to_string(),
            origin.timestamp.map(secs),
        ),
        Gossip::ChannelAmount { satoshis } => {
            let (ann, scid) = announced?;
            let mut buf = ann.0.to_vec();
            buf.extend_from_slice(&raw_gossip(raw)?);
            return Some(NewEvent {
                id: EventId::sha256(&buf),
                kind: KIND_CHANNEL_AMOUNT.into(),
                key: Some(scid.to_string()),
                occurred_at: origin.timestamp.map(secs),
                position: Some(origin.position.clone()),
                payload: raw.to_vec(),
                data: json!({
                    "type": "channel_amount",
                    "satoshis": satoshis,
                    "short_channel_id": scid,
                    "raw_hex": wire::to_hex(raw),
                }),
                tenant: None,
                retracts: None,
            });
        }
        Gossip::Skipped { .. } => return None,
    };
    let mut data = serde_json::to_value(g).expect("decoded gossip serializes");
    if let Value::Object(map) = &mut data
        && !map.contains_key("raw_hex")
    {
        map.insert("raw_hex".into(), Value::String(wire::to_hex(raw)));
    }
    Some(NewEvent {
        id: gossip_id(raw)?,
        kind: kind.into(),
        key: Some(key),
        occurred_at,
        position: Some(origin.position.clone()),
        payload: raw.to_vec(),
        data,
        tenant: None,
        retracts: None,
    })
}

/// A problem: the reject to keep and the `ln.problem.*` event to emit.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// For the source's rejects (`reason` starts with the stable code).
    pub reject: Reject,
    /// For subscriptions.
    pub event: NewEvent,
}

/// The problem of `raw` (type-prefixed, possibly unreadable), found at `origin`, seen by `collector`.
pub fn problem(raw: &[u8], error: &VerifyError, origin: &Origin, collector: &str) -> Problem {
    let code = error.reason();
    let detail = error.to_string();
    let raw_hex = wire::to_hex(raw);
    let t = wire::msg_type(raw);
    let kind = if t == Some(wire::NODE_ANNOUNCEMENT) {
        KIND_PROBLEM_NODE
    } else {
        KIND_PROBLEM_CHANNEL
    };
    let key = match super::decode::decode(raw) {
        Ok(Gossip::NodeAnnouncement(m)) => Some(wire::to_hex(&m.node_id)),
        Ok(g) => g.short_channel_id().map(|s| s.to_string()),
        Err(_) => match error {
            VerifyError::UnknownChannel { short_channel_id } => Some(short_channel_id.to_string()),
            _ => None,
        },
    };
    let mut id_input = b"problem".to_vec();
    id_input.extend_from_slice(raw);
    let excerpt_len = raw_hex.len().min(1024);
    Problem {
        reject: Reject {
            position: origin.position.clone(),
            reason: format!("{code}: {detail}"),
            excerpt: raw_hex[..excerpt_len].to_owned(),
            at: Timestamp::now(),
        },
        event: NewEvent {
            id: EventId::sha256(&id_input),
            kind: kind.into(),
            key,
            occurred_at: origin.timestamp.map(secs),
            position: Some(origin.position.clone()),
            // One copy of the message: `data.raw_hex` (what subscriptions and the API show).
            payload: Vec::new(),
            data: json!({"reason": code, "detail": detail, "raw_hex": raw_hex, "collector": collector}),
            tenant: None,
            retracts: None,
        },
    }
}

/// The stable code at the start of a reject's reason (`bad_signature`, `malformed`, ...).
pub fn reason_code(reason: &str) -> &str {
    reason.split(':').next().unwrap_or(reason)
}
