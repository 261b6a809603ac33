//! Decoding type-prefixed messages into [`Gossip`].
//!
//! BOLT #7 messages go through LDK (`lightning::ln::msgs`, `LengthReadable::read_from_fixed_length_buffer`
//! on the body without its type), after [`wire::fields_len`] has checked the layout so that a short
//! message names its first missing field; when LDK refuses a complete layout, the error names the
//! invalid signature or the field LDK could not read. One exception: a legacy `channel_update` whose
//! `message_flags & 1` is 0 (no `htlc_maximum_msat`, before 2022) is refused by LDK 0.2 and is decoded
//! here from its fixed layout, with `htlc_maximum_msat: None`. Core Lightning's 4101 and 4106 are decoded;
//! 4102–4105 and 4107 are recognised and returned as [`Gossip::Skipped`] with their name.

use super::gossip::{
    Address, AddressKind, ChannelAnnouncement, ChannelUpdate, Gossip, NodeAnnouncement, ShortChannelId,
};
use super::wire::{self, Malformed};
use ::lightning::ln::msgs;
use ::lightning::util::ser::LengthReadable;

/// Decodes a type-prefixed message.
pub fn decode(raw: &[u8]) -> Result<Gossip, Malformed> {
    let Some(t) = wire::msg_type(raw) else {
        return Err(Malformed::new(
            0,
            "type",
            format!("{} bytes, shorter than the 2-byte type", raw.len()),
        ));
    };
    if raw.len() > wire::MAX_MESSAGE_LEN {
        return Err(Malformed::new(t, "length", wire::too_long(raw.len() as u64)));
    }
    let body = &raw[2..];
    let fields = wire::fields_len(t, body)?;
    let be64 = |at: usize| u64::from_be_bytes(body[at..at + 8].try_into().expect("8 bytes"));
    Ok(match t {
        wire::CHANNEL_ANNOUNCEMENT => Gossip::ChannelAnnouncement(Box::new(channel_announcement(raw)?)),
        wire::NODE_ANNOUNCEMENT => Gossip::NodeAnnouncement(node_announcement(raw)?),
        wire::CHANNEL_UPDATE => Gossip::ChannelUpdate(channel_update(raw, fields)?),
        wire::CHANNEL_AMOUNT => Gossip::ChannelAmount { satoshis: be64(0) },
        wire::CHANNEL_DYING => Gossip::ChannelDying {
            short_channel_id: ShortChannelId(be64(0)),
            blockheight: u32::from_be_bytes(body[8..12].try_into().expect("4 bytes")),
        },
        other => Gossip::Skipped {
            msg_type: other,
            name: wire::type_name(other).unwrap_or("unknown"),
        },
    })
}

/// Names the field LDK refused, once the layout is known to be complete.
fn ldk_error(t: u16, body: &[u8], e: msgs::DecodeError, sigs: &[&'static str]) -> Malformed {
    use bitcoin::secp256k1::ecdsa::Signature;
    for (i, name) in sigs.iter().enumerate() {
        if Signature::from_compact(&body[i * 64..(i + 1) * 64]).is_err() {
            return Malformed::new(t, name, "not a valid compact ECDSA signature");
        }
    }
    let field = match t {
        wire::NODE_ANNOUNCEMENT => "addresses",
        wire::CHANNEL_UPDATE => "message_flags",
        _ => "message",
    };
    Malformed::new(t, field, format!("LDK refused it: {e:?}"))
}

fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
    s.try_into().expect("length checked by the layout walk")
}

fn channel_announcement(raw: &[u8]) -> Result<ChannelAnnouncement, Malformed> {
    let body = &raw[2..];
    const SIGS: [&str; 4] = [
        "node_signature_1",
        "node_signature_2",
        "bitcoin_signature_1",
        "bitcoin_signature_2",
    ];
    let m = msgs::ChannelAnnouncement::read_from_fixed_length_buffer(&mut &body[..])
        .map_err(|e| ldk_error(wire::CHANNEL_ANNOUNCEMENT, body, e, &SIGS))?;
    let flen = u16::from_be_bytes([body[256], body[257]]) as usize;
    let c = &m.contents;
    Ok(ChannelAnnouncement {
        raw: raw.to_vec(),
        node_signature_1: m.node_signature_1.serialize_compact(),
        node_signature_2: m.node_signature_2.serialize_compact(),
        bitcoin_signature_1: m.bitcoin_signature_1.serialize_compact(),
        bitcoin_signature_2: m.bitcoin_signature_2.serialize_compact(),
        features: body[258..258 + flen].to_vec(),
        chain_hash: c.chain_hash.to_bytes(),
        short_channel_id: ShortChannelId(c.short_channel_id),
        short_channel_id_u64: c.short_channel_id,
        node_id_1: *c.node_id_1.as_array(),
        node_id_2: *c.node_id_2.as_array(),
        bitcoin_key_1: *c.bitcoin_key_1.as_array(),
        bitcoin_key_2: *c.bitcoin_key_2.as_array(),
        excess_data: c.excess_data.clone(),
    })
}

fn address(a: &msgs::SocketAddress) -> Address {
    use msgs::SocketAddress as S;
    let (kind, address, port) = match a {
        S::TcpIpV4 { addr, port } => (AddressKind::Ipv4, std::net::Ipv4Addr::from(*addr).to_string(), *port),
        S::TcpIpV6 { addr, port } => (AddressKind::Ipv6, std::net::Ipv6Addr::from(*addr).to_string(), *port),
        S::OnionV2(b) => (
            AddressKind::TorV2,
            format!("{}.onion", wire::base32(&b[..10])),
            u16::from_be_bytes([b[10], b[11]]),
        ),
        S::OnionV3 {
            ed25519_pubkey,
            checksum,
            version,
            port,
        } => {
            let mut id = ed25519_pubkey.to_vec();
            id.extend_from_slice(&checksum.to_be_bytes());
            id.push(*version);
            (AddressKind::TorV3, format!("{}.onion", wire::base32(&id)), *port)
        }
        S::Hostname { hostname, port } => (AddressKind::Dns, hostname.to_string(), *port),
    };
    Address { kind, address, port }
}

fn node_announcement(raw: &[u8]) -> Result<NodeAnnouncement, Malformed> {
    let body = &raw[2..];
    let m = msgs::NodeAnnouncement::read_from_fixed_length_buffer(&mut &body[..])
        .map_err(|e| ldk_error(wire::NODE_ANNOUNCEMENT, body, e, &["signature"]))?;
    let flen = u16::from_be_bytes([body[64], body[65]]) as usize;
    let c = &m.contents;
    let alias = &c.alias.0;
    let alias_len = alias.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    Ok(NodeAnnouncement {
        raw: raw.to_vec(),
        signature: m.signature.serialize_compact(),
        features: body[66..66 + flen].to_vec(),
        timestamp: c.timestamp,
        node_id: *c.node_id.as_array(),
        rgb_color: c.rgb,
        alias: String::from_utf8_lossy(&alias[..alias_len]).into_owned(),
        addresses: c.addresses.iter().map(address).collect(),
        excess_address_data: c.excess_address_data.clone(),
        excess_data: c.excess_data.clone(),
    })
}

/// LND's inbound-fee record at the start of the trailing data: BigSize type 55555, length 8, two i32.
fn inbound_fees(tail: &[u8]) -> (Option<i32>, Option<i32>) {
    match tail {
        [0xfd, 0xd9, 0x03, 0x08, rest @ ..] if rest.len() >= 8 => (
            Some(i32::from_be_bytes(arr(&rest[..4]))),
            Some(i32::from_be_bytes(arr(&rest[4..8]))),
        ),
        _ => (None, None),
    }
}

fn channel_update(raw: &[u8], fields: usize) -> Result<ChannelUpdate, Malformed> {
    let body = &raw[2..];
    let flags = body[wire::CHANNEL_UPDATE_FLAGS_AT];
    let u = if flags & 1 == 1 {
        let m = msgs::ChannelUpdate::read_from_fixed_length_buffer(&mut &body[..])
            .map_err(|e| ldk_error(wire::CHANNEL_UPDATE, body, e, &["signature"]))?;
        let c = m.contents;
        ChannelUpdate {
            raw: Vec::new(),
            signature: m.signature.serialize_compact(),
            chain_hash: c.chain_hash.to_bytes(),
            short_channel_id: ShortChannelId(c.short_channel_id),
            short_channel_id_u64: c.short_channel_id,
            timestamp: c.timestamp,
            message_flags: c.message_flags,
            channel_flags: c.channel_flags,
            direction: c.channel_flags & 1,
            disabled: c.channel_flags & 2 != 0,
            cltv_expiry_delta: c.cltv_expiry_delta,
            htlc_minimum_msat: c.htlc_minimum_msat,
            htlc_maximum_msat: Some(c.htlc_maximum_msat),
            fee_base_msat: c.fee_base_msat,
            fee_proportional_millionths: c.fee_proportional_millionths,
            inbound_fee_base_msat: None,
            inbound_fee_proportional_millionths: None,
            excess_data: c.excess_data,
        }
    } else {
        // Legacy layout (LDK requires htlc_maximum_msat): fixed offsets, checked by the layout walk.
        use bitcoin::secp256k1::ecdsa::Signature;
        if Signature::from_compact(&body[..64]).is_err() {
            return Err(Malformed::new(
                wire::CHANNEL_UPDATE,
                "signature",
                "not a valid compact ECDSA signature",
            ));
        }
        let scid = u64::from_be_bytes(arr(&body[96..104]));
        let channel_flags = body[109];
        ChannelUpdate {
            raw: Vec::new(),
            signature: arr(&body[..64]),
            chain_hash: arr(&body[64..96]),
            short_channel_id: ShortChannelId(scid),
            short_channel_id_u64: scid,
            timestamp: u32::from_be_bytes(arr(&body[104..108])),
            message_flags: flags,
            channel_flags,
            direction: channel_flags & 1,
            disabled: channel_flags & 2 != 0,
            cltv_expiry_delta: u16::from_be_bytes(arr(&body[110..112])),
            htlc_minimum_msat: u64::from_be_bytes(arr(&body[112..120])),
            htlc_maximum_msat: None,
            fee_base_msat: u32::from_be_bytes(arr(&body[120..124])),
            fee_proportional_millionths: u32::from_be_bytes(arr(&body[124..128])),
            inbound_fee_base_msat: None,
            inbound_fee_proportional_millionths: None,
            excess_data: body[fields..].to_vec(),
        }
    };
    let (base, prop) = inbound_fees(&u.excess_data);
    Ok(ChannelUpdate {
        raw: raw.to_vec(),
        inbound_fee_base_msat: base,
        inbound_fee_proportional_millionths: prop,
        ..u
    })
}
