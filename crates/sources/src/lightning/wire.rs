//! BOLT #7 byte layouts, walked without allocating: message types, CompactSize, field-by-field length
//! checks that name the first field that does not fit.
//!
//! Every message is `type (u16 BE) ‖ body`. Body layouts (all integers big-endian):
//!
//! ```text
//! channel_announcement (256)  node_signature_1 [64] node_signature_2 [64] bitcoin_signature_1 [64]
//!                             bitcoin_signature_2 [64] flen u16 features [flen] chain_hash [32]
//!                             short_channel_id u64 node_id_1 [33] node_id_2 [33] bitcoin_key_1 [33]
//!                             bitcoin_key_2 [33] (trailing data)        signed: body[256..]
//! node_announcement (257)     signature [64] flen u16 features [flen] timestamp u32 node_id [33]
//!                             rgb_color [3] alias [32] addrlen u16 addresses [addrlen]
//!                             (trailing data)                           signed: body[64..]
//! channel_update (258)        signature [64] chain_hash [32] short_channel_id u64 timestamp u32
//!                             message_flags u8 channel_flags u8 cltv_expiry_delta u16
//!                             htlc_minimum_msat u64 fee_base_msat u32 fee_proportional_millionths u32
//!                             htlc_maximum_msat u64 (present when message_flags & 1)
//!                             (trailing TLV data)                       signed: body[64..]
//! ```
//!
//! Core Lightning's internal `gossip_store` records: 4101 `channel_amount` (satoshis u64), 4102
//! `private_update` (len u16, update), 4103 `delete_channel` (scid u64), 4104 `private_channel`
//! (satoshis u64, len u16, announcement), 4105 `gossip_store_ended` (equivalent_offset u64, and since
//! store v16 a 32-byte uuid), 4106 `channel_dying` (scid u64, blockheight u32), 4107 `store_uuid` (uuid
//! \[32\]).

use serde::Serialize;

/// BOLT #7 `channel_announcement`.
pub const CHANNEL_ANNOUNCEMENT: u16 = 256;
/// BOLT #7 `node_announcement`.
pub const NODE_ANNOUNCEMENT: u16 = 257;
/// BOLT #7 `channel_update`.
pub const CHANNEL_UPDATE: u16 = 258;
/// Core Lightning `gossip_store_channel_amount`: the capacity of the preceding announcement.
pub const CHANNEL_AMOUNT: u16 = 4101;
/// Core Lightning `gossip_store_private_update`.
pub const PRIVATE_CHANNEL_UPDATE: u16 = 4102;
/// Core Lightning `gossip_store_delete_chan`.
pub const DELETE_CHANNEL: u16 = 4103;
/// Core Lightning `gossip_store_private_channel`.
pub const PRIVATE_CHANNEL_ANNOUNCEMENT: u16 = 4104;
/// Core Lightning `gossip_store_ended`: the store was rewritten; reopen it.
pub const GOSSIP_STORE_ENDED: u16 = 4105;
/// Core Lightning `gossip_store_chan_dying`: the funding output was spent.
pub const CHANNEL_DYING: u16 = 4106;
/// Core Lightning `gossip_store_uuid` (store v16): the store generation.
pub const GOSSIP_STORE_UUID: u16 = 4107;

/// The longest message BOLT #1 allows, its 2-byte type included: 65,535 bytes (the transport's length
/// field is a u16). Every framing refuses longer messages before reading them.
pub const MAX_MESSAGE_LEN: usize = 65_535;
/// The longest envelope of a [`MAX_MESSAGE_LEN`] message: a 9-byte CompactSize in front of it.
pub const MAX_ENVELOPE_LEN: usize = MAX_MESSAGE_LEN + 9;

/// The reason given for a message longer than [`MAX_MESSAGE_LEN`].
pub fn too_long(len: u64) -> String {
    format!("a {len}-byte message is longer than BOLT #1 allows (65,535 bytes, type included)")
}

/// Body length of a `channel_update` without `htlc_maximum_msat` or trailing data.
pub const CHANNEL_UPDATE_BASE_LEN: usize = 128;
/// Offset of `message_flags` in a `channel_update` body.
pub const CHANNEL_UPDATE_FLAGS_AT: usize = 108;

/// The name of a message type: BOLT #7 names, then ln-history's names for Core Lightning's records.
pub fn type_name(msg_type: u16) -> Option<&'static str> {
    Some(match msg_type {
        CHANNEL_ANNOUNCEMENT => "channel_announcement",
        NODE_ANNOUNCEMENT => "node_announcement",
        CHANNEL_UPDATE => "channel_update",
        CHANNEL_AMOUNT => "channel_amount",
        PRIVATE_CHANNEL_UPDATE => "private_channel_update",
        DELETE_CHANNEL => "delete_channel",
        PRIVATE_CHANNEL_ANNOUNCEMENT => "private_channel_announcement",
        GOSSIP_STORE_ENDED => "gossip_store_ended",
        CHANNEL_DYING => "channel_dying",
        GOSSIP_STORE_UUID => "gossip_store_uuid",
        _ => return None,
    })
}

/// Whether the type is one of the three public BOLT #7 messages.
pub fn is_bolt7(msg_type: u16) -> bool {
    matches!(msg_type, CHANNEL_ANNOUNCEMENT | NODE_ANNOUNCEMENT | CHANNEL_UPDATE)
}

/// The type of a type-prefixed message, if it has two bytes.
pub fn msg_type(msg: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(msg.get(..2)?.try_into().ok()?))
}

/// A message that does not have the layout of its type.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("malformed {message}: {field}: {reason}")]
pub struct Malformed {
    /// The message type's name (`message` when the type is unknown).
    pub message: &'static str,
    /// The first field that is wrong.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl Malformed {
    pub(crate) fn new(msg_type: u16, field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            message: type_name(msg_type).unwrap_or("message"),
            field,
            reason: reason.into(),
        }
    }
}

/// Walks fields in order, naming the first one that runs past the end.
struct Walk<'a> {
    body: &'a [u8],
    at: usize,
    msg_type: u16,
}

impl<'a> Walk<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.at + n;
        match self.body.get(self.at..end) {
            Some(s) => {
                self.at = end;
                Ok(s)
            }
            None => Err(Malformed::new(
                self.msg_type,
                field,
                format!(
                    "needs {n} bytes at body offset {}, only {} left",
                    self.at,
                    self.body.len().saturating_sub(self.at)
                ),
            )),
        }
    }
    fn u16(&mut self, field: &'static str) -> Result<usize, Malformed> {
        let b = self.take(field, 2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }
}

/// The length of a body's defined fields (without trailing data), or the first field that does not fit.
/// Unknown types are an error; the bodies of 4102 and 4104 include their wrapped message.
pub fn fields_len(msg_type: u16, body: &[u8]) -> Result<usize, Malformed> {
    let mut w = Walk { body, at: 0, msg_type };
    match msg_type {
        CHANNEL_ANNOUNCEMENT => {
            for f in [
                "node_signature_1",
                "node_signature_2",
                "bitcoin_signature_1",
                "bitcoin_signature_2",
            ] {
                w.take(f, 64)?;
            }
            let flen = w.u16("features length")?;
            w.take("features", flen)?;
            w.take("chain_hash", 32)?;
            w.take("short_channel_id", 8)?;
            for f in ["node_id_1", "node_id_2", "bitcoin_key_1", "bitcoin_key_2"] {
                w.take(f, 33)?;
            }
        }
        NODE_ANNOUNCEMENT => {
            w.take("signature", 64)?;
            let flen = w.u16("features length")?;
            w.take("features", flen)?;
            w.take("timestamp", 4)?;
            w.take("node_id", 33)?;
            w.take("rgb_color", 3)?;
            w.take("alias", 32)?;
            let alen = w.u16("addresses length")?;
            w.take("addresses", alen)?;
        }
        CHANNEL_UPDATE => {
            w.take("signature", 64)?;
            w.take("chain_hash", 32)?;
            w.take("short_channel_id", 8)?;
            w.take("timestamp", 4)?;
            let flags = w.take("message_flags", 1)?[0];
            w.take("channel_flags", 1)?;
            w.take("cltv_expiry_delta", 2)?;
            w.take("htlc_minimum_msat", 8)?;
            w.take("fee_base_msat", 4)?;
            w.take("fee_proportional_millionths", 4)?;
            if flags & 1 == 1 {
                w.take("htlc_maximum_msat", 8)?;
            }
        }
        CHANNEL_AMOUNT => {
            w.take("satoshis", 8)?;
        }
        PRIVATE_CHANNEL_UPDATE => {
            let n = w.u16("update length")?;
            w.take("update", n)?;
        }
        DELETE_CHANNEL => {
            w.take("short_channel_id", 8)?;
        }
        PRIVATE_CHANNEL_ANNOUNCEMENT => {
            w.take("satoshis", 8)?;
            let n = w.u16("announcement length")?;
            w.take("announcement", n)?;
        }
        GOSSIP_STORE_ENDED => {
            w.take("equivalent_offset", 8)?;
        }
        CHANNEL_DYING => {
            w.take("short_channel_id", 8)?;
            w.take("blockheight", 4)?;
        }
        GOSSIP_STORE_UUID => {
            w.take("uuid", 32)?;
        }
        other => {
            return Err(Malformed::new(other, "type", format!("unknown message type {other}")));
        }
    }
    Ok(w.at)
}

/// Where the signed part of a BOLT #7 body starts (after its signatures).
pub fn signed_from(msg_type: u16) -> Option<usize> {
    match msg_type {
        CHANNEL_ANNOUNCEMENT => Some(256),
        NODE_ANNOUNCEMENT | CHANNEL_UPDATE => Some(64),
        _ => None,
    }
}

pub use tributary_core::id::write_compact_size;

/// Reads a CompactSize at the start of `buf`: `(value, bytes used)`, or `None` when `buf` is too short.
/// `big_endian` reads the multi-byte forms big-endian, as the GSP files of lnhistoryclient do.
pub fn read_compact_size(buf: &[u8], big_endian: bool) -> Option<(u64, usize)> {
    let first = *buf.first()?;
    let width = match first {
        0..=0xfc => return Some((first as u64, 1)),
        0xfd => 2,
        0xfe => 4,
        0xff => 8,
    };
    let bytes = buf.get(1..1 + width)?;
    let mut v = 0u64;
    if big_endian {
        for b in bytes {
            v = (v << 8) | *b as u64;
        }
    } else {
        for b in bytes.iter().rev() {
            v = (v << 8) | *b as u64;
        }
    }
    Some((v, 1 + width))
}

/// Whether `tail` is a well-formed TLV stream (BigSize type, BigSize length, value; types strictly
/// increasing) that ends exactly at its end. An empty tail is one.
pub fn is_tlv_stream(mut tail: &[u8]) -> bool {
    let mut last: Option<u64> = None;
    while !tail.is_empty() {
        let Some((t, n)) = read_compact_size(tail, true) else {
            return false;
        };
        let Some((len, m)) = read_compact_size(&tail[n..], true) else {
            return false;
        };
        let end = usize::try_from(len).ok().and_then(|l| l.checked_add(n + m));
        match end {
            Some(e) if e <= tail.len() && last.is_none_or(|l| t > l) => {
                last = Some(t);
                tail = &tail[e..];
            }
            _ => return false,
        }
    }
    true
}

/// Lowercase RFC 4648 base32 without padding (Tor onion addresses).
pub(crate) fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_size_round_trips_at_boundaries() {
        for n in [0u64, 0xfc, 0xfd, 0xffff, 0x1_0000, 0xffff_ffff, 0x1_0000_0000] {
            let mut v = Vec::new();
            write_compact_size(n, &mut v);
            assert_eq!(read_compact_size(&v, false), Some((n, v.len())), "{n}");
        }
        let mut v = Vec::new();
        write_compact_size(0xfd, &mut v);
        assert_eq!(v, [0xfd, 0xfd, 0x00]);
        assert_eq!(read_compact_size(&[0xfd, 0x01, 0xae], true), Some((430, 3)));
        assert_eq!(read_compact_size(&[0xfd, 0x01], false), None);
    }

    #[test]
    fn base32_matches_rfc4648() {
        assert_eq!(base32(b"foobar"), "mzxw6ytboi");
        assert_eq!(base32(b"f"), "my");
    }

    #[test]
    fn walker_names_the_first_short_field() {
        let mut body = vec![0u8; 64 + 32 + 8 + 4];
        body.push(1); // message_flags: htlc_maximum_msat present
        body.extend_from_slice(&[0; 1 + 2 + 8 + 4 + 4]);
        let err = fields_len(CHANNEL_UPDATE, &body).unwrap_err();
        assert_eq!(err.field, "htlc_maximum_msat");
        body.extend_from_slice(&[0; 8]);
        assert_eq!(fields_len(CHANNEL_UPDATE, &body), Ok(136));
        assert!(is_tlv_stream(&[0xfd, 0xd9, 0x03, 0x08, 1, 2, 3, 4, 5, 6, 7, 8]));
        assert!(!is_tlv_stream(&[0xfd, 0xd9, 0x03, 0x08, 1, 2, 3]));
        assert!(!is_tlv_stream(&[5, 0, 3, 0]), "types must increase");
        let err = fields_len(CHANNEL_ANNOUNCEMENT, &[0; 100]).unwrap_err();
        assert_eq!(err.field, "node_signature_2");
    }
}

/// Lowercase hex, by table (several times faster than `hex::encode`, which matters when every field of
/// a million messages is shown in hex).
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod hex_tests {
    #[test]
    fn to_hex_matches_the_hex_crate() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(super::to_hex(&all), hex::encode(&all));
    }
}
