//! Decoded gossip: every field of `channel_announcement`, `node_announcement` and `channel_update`, and
//! Core Lightning's internal records, each keeping its exact raw bytes (trailing TLV data included).
//! [`decode`](super::decode::decode) produces them.
//!
//! Conventions of the serialized form: byte strings are lowercase hex; `chain_hash` is shown in Bitcoin's
//! display order (reversed, as block explorers and lnhistoryclient show it: mainnet is
//! `000000000019d6…`); `short_channel_id` is `BLOCKxTXxOUTPUT` with the u64 beside it; `alias` is UTF-8
//! (lossy) with trailing NULs removed; `direction` is `channel_flags & 1` and `disabled` is
//! `channel_flags & 2`.

use super::wire;
use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A short channel id: `block (24 bits) ‖ transaction index (24 bits) ‖ output index (16 bits)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortChannelId(pub u64);

impl ShortChannelId {
    /// From its three parts (each truncated to its width).
    pub fn new(block: u32, tx_index: u32, output: u16) -> Self {
        Self(((block as u64 & 0xff_ffff) << 40) | ((tx_index as u64 & 0xff_ffff) << 16) | output as u64)
    }
    /// The funding block height.
    pub fn block(self) -> u32 {
        (self.0 >> 40) as u32
    }
    /// The funding transaction's index in its block.
    pub fn tx_index(self) -> u32 {
        ((self.0 >> 16) & 0xff_ffff) as u32
    }
    /// The funding output's index.
    pub fn output(self) -> u16 {
        self.0 as u16
    }
}

impl fmt::Display for ShortChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}", self.block(), self.tx_index(), self.output())
    }
}

/// Why a string is not a short channel id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected BLOCKxTXxOUTPUT (e.g. 523111x1234x0) or a u64, got {0:?}")]
pub struct ParseScidError(pub String);

impl FromStr for ShortChannelId {
    type Err = ParseScidError;
    /// Accepts `BLOCKxTXxOUTPUT` or the u64 form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseScidError(s.chars().take(80).collect());
        if let Ok(n) = s.parse::<u64>() {
            return Ok(Self(n));
        }
        let mut it = s.split('x');
        let (Some(b), Some(t), Some(o), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(err());
        };
        let (b, t, o) = (
            b.parse::<u32>().map_err(|_| err())?,
            t.parse::<u32>().map_err(|_| err())?,
            o.parse::<u16>().map_err(|_| err())?,
        );
        if b > 0xff_ffff || t > 0xff_ffff {
            return Err(err());
        }
        Ok(Self::new(b, t, o))
    }
}

impl Serialize for ShortChannelId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

pub(crate) fn ser_hex<S: Serializer, T: AsRef<[u8]>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::wire::to_hex(v.as_ref()))
}

fn ser_hex_rev<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    let mut r = *v;
    r.reverse();
    s.serialize_str(&super::wire::to_hex(&r))
}

/// A decoded `channel_announcement` (256).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelAnnouncement {
    /// The exact message, type included.
    #[serde(rename = "raw_hex", serialize_with = "ser_hex")]
    pub raw: Vec<u8>,
    /// Signature by `node_id_1`.
    #[serde(serialize_with = "ser_hex")]
    pub node_signature_1: [u8; 64],
    /// Signature by `node_id_2`.
    #[serde(serialize_with = "ser_hex")]
    pub node_signature_2: [u8; 64],
    /// Signature by `bitcoin_key_1`.
    #[serde(serialize_with = "ser_hex")]
    pub bitcoin_signature_1: [u8; 64],
    /// Signature by `bitcoin_key_2`.
    #[serde(serialize_with = "ser_hex")]
    pub bitcoin_signature_2: [u8; 64],
    /// Channel feature bits, as on the wire.
    #[serde(serialize_with = "ser_hex")]
    pub features: Vec<u8>,
    /// Genesis block hash of the chain, in wire order (serialized in display order).
    #[serde(serialize_with = "ser_hex_rev")]
    pub chain_hash: [u8; 32],
    /// The channel.
    pub short_channel_id: ShortChannelId,
    /// The same, as a u64.
    pub short_channel_id_u64: u64,
    /// The node with the lexicographically lesser id.
    #[serde(serialize_with = "ser_hex")]
    pub node_id_1: [u8; 33],
    /// The other node.
    #[serde(serialize_with = "ser_hex")]
    pub node_id_2: [u8; 33],
    /// `node_id_1`'s funding key.
    #[serde(serialize_with = "ser_hex")]
    pub bitcoin_key_1: [u8; 33],
    /// `node_id_2`'s funding key.
    #[serde(serialize_with = "ser_hex")]
    pub bitcoin_key_2: [u8; 33],
    /// Signed data after the defined fields (kept, not understood).
    #[serde(serialize_with = "ser_hex")]
    pub excess_data: Vec<u8>,
}

/// The kind of a node address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressKind {
    /// Type 1.
    Ipv4,
    /// Type 2.
    Ipv6,
    /// Type 3 (deprecated by Tor).
    TorV2,
    /// Type 4.
    TorV3,
    /// Type 5.
    Dns,
}

/// One address of a `node_announcement`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Address {
    /// The address type.
    #[serde(rename = "type")]
    pub kind: AddressKind,
    /// `1.2.3.4`, `2001:db8::1`, `<base32>.onion` or the hostname.
    pub address: String,
    /// TCP port.
    pub port: u16,
}

/// A decoded `node_announcement` (257).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeAnnouncement {
    /// The exact message, type included.
    #[serde(rename = "raw_hex", serialize_with = "ser_hex")]
    pub raw: Vec<u8>,
    /// Signature by `node_id`.
    #[serde(serialize_with = "ser_hex")]
    pub signature: [u8; 64],
    /// Node feature bits, as on the wire.
    #[serde(serialize_with = "ser_hex")]
    pub features: Vec<u8>,
    /// The node's own timestamp (seconds).
    pub timestamp: u32,
    /// The node.
    #[serde(serialize_with = "ser_hex")]
    pub node_id: [u8; 33],
    /// Colour for user interfaces.
    #[serde(serialize_with = "ser_hex")]
    pub rgb_color: [u8; 3],
    /// Alias, UTF-8 (lossy) without its trailing NULs.
    pub alias: String,
    /// Addresses LDK understands, in order.
    pub addresses: Vec<Address>,
    /// Address bytes from the first unknown address type on.
    #[serde(serialize_with = "ser_hex")]
    pub excess_address_data: Vec<u8>,
    /// Signed data after the addresses (kept, not understood).
    #[serde(serialize_with = "ser_hex")]
    pub excess_data: Vec<u8>,
}

/// A decoded `channel_update` (258).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChannelUpdate {
    /// The exact message, type included.
    #[serde(rename = "raw_hex", serialize_with = "ser_hex")]
    pub raw: Vec<u8>,
    /// Signature by the node of `direction`.
    #[serde(serialize_with = "ser_hex")]
    pub signature: [u8; 64],
    /// Genesis block hash of the chain, in wire order (serialized in display order).
    #[serde(serialize_with = "ser_hex_rev")]
    pub chain_hash: [u8; 32],
    /// The channel.
    pub short_channel_id: ShortChannelId,
    /// The same, as a u64.
    pub short_channel_id_u64: u64,
    /// The sender's timestamp (seconds).
    pub timestamp: u32,
    /// Bit 0: `htlc_maximum_msat` present (required since 2022); bit 1: `dont_forward`.
    pub message_flags: u8,
    /// Bit 0: direction; bit 1: disabled.
    pub channel_flags: u8,
    /// `channel_flags & 1`: 0 = sent by `node_id_1`, 1 = by `node_id_2`.
    pub direction: u8,
    /// `channel_flags & 2`.
    pub disabled: bool,
    /// Blocks subtracted from an incoming HTLC's expiry.
    pub cltv_expiry_delta: u16,
    /// Smallest HTLC routed.
    pub htlc_minimum_msat: u64,
    /// Largest HTLC routed (absent in legacy updates).
    pub htlc_maximum_msat: Option<u64>,
    /// Base fee.
    pub fee_base_msat: u32,
    /// Proportional fee.
    pub fee_proportional_millionths: u32,
    /// LND's inbound fee (TLV 55555), when the trailing data carries it.
    pub inbound_fee_base_msat: Option<i32>,
    /// LND's inbound proportional fee (TLV 55555).
    pub inbound_fee_proportional_millionths: Option<i32>,
    /// Signed data after the defined fields, e.g. TLV records (kept).
    #[serde(serialize_with = "ser_hex")]
    pub excess_data: Vec<u8>,
}

/// One decoded message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Gossip {
    /// 256 (boxed: it is twice the size of the others).
    ChannelAnnouncement(Box<ChannelAnnouncement>),
    /// 257.
    NodeAnnouncement(NodeAnnouncement),
    /// 258.
    ChannelUpdate(ChannelUpdate),
    /// 4101: the capacity of the channel announced just before, in the same stream.
    ChannelAmount {
        /// Capacity.
        satoshis: u64,
    },
    /// 4106: the funding output was spent; Core Lightning forgets the channel at `blockheight`.
    ChannelDying {
        /// The channel.
        short_channel_id: ShortChannelId,
        /// 12 blocks after the spend.
        blockheight: u32,
    },
    /// Another Core Lightning record (4102–4105, 4107), recognised and not used.
    Skipped {
        /// Its type.
        msg_type: u16,
        /// Its name.
        name: &'static str,
    },
}

impl Gossip {
    /// The message type.
    pub fn msg_type(&self) -> u16 {
        match self {
            Self::ChannelAnnouncement(_) => wire::CHANNEL_ANNOUNCEMENT,
            Self::NodeAnnouncement(_) => wire::NODE_ANNOUNCEMENT,
            Self::ChannelUpdate(_) => wire::CHANNEL_UPDATE,
            Self::ChannelAmount { .. } => wire::CHANNEL_AMOUNT,
            Self::ChannelDying { .. } => wire::CHANNEL_DYING,
            Self::Skipped { msg_type, .. } => *msg_type,
        }
    }
    /// The type's name (`channel_update`, `channel_dying`, ...).
    pub fn name(&self) -> &'static str {
        wire::type_name(self.msg_type()).unwrap_or("unknown")
    }
    /// The raw bytes of a BOLT #7 message.
    pub fn raw(&self) -> Option<&[u8]> {
        match self {
            Self::ChannelAnnouncement(m) => Some(&m.raw),
            Self::NodeAnnouncement(m) => Some(&m.raw),
            Self::ChannelUpdate(m) => Some(&m.raw),
            _ => None,
        }
    }
    /// The message's own timestamp (node announcements and channel updates).
    pub fn timestamp(&self) -> Option<u32> {
        match self {
            Self::NodeAnnouncement(m) => Some(m.timestamp),
            Self::ChannelUpdate(m) => Some(m.timestamp),
            _ => None,
        }
    }
    /// The channel the message is about, if any.
    pub fn short_channel_id(&self) -> Option<ShortChannelId> {
        match self {
            Self::ChannelAnnouncement(m) => Some(m.short_channel_id),
            Self::ChannelUpdate(m) => Some(m.short_channel_id),
            Self::ChannelDying { short_channel_id, .. } => Some(*short_channel_id),
            _ => None,
        }
    }
}
