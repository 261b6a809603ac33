//! The bundled real mainnet gossip: decoding, LDK round trips, signatures (ours and LDK's).

use super::sample;
use crate::lightning::verify::{Network, Verifier, VerifyError, verify_channel_announcement};
use crate::lightning::{Gossip, decode, wire};
use ::lightning::ln::msgs;
use ::lightning::util::ser::{LengthReadable, Writeable};
use bitcoin::secp256k1::Secp256k1;
use std::collections::{BTreeMap, HashSet};

#[test]
fn every_sample_message_decodes_and_ldk_reencodes_it_byte_for_byte() {
    let msgs = sample();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &msgs {
        let g = decode(m).unwrap_or_else(|e| panic!("{e}: {}", hex::encode(m)));
        *counts.entry(g.name()).or_default() += 1;
        let body = &m[2..];
        let again = match &g {
            Gossip::ChannelAnnouncement(c) => {
                assert_eq!(c.raw, *m);
                assert_eq!(c.short_channel_id.0, c.short_channel_id_u64);
                msgs::ChannelAnnouncement::read_from_fixed_length_buffer(&mut &body[..])
                    .unwrap()
                    .encode()
            }
            Gossip::NodeAnnouncement(n) => {
                assert_eq!(n.raw, *m);
                msgs::NodeAnnouncement::read_from_fixed_length_buffer(&mut &body[..])
                    .unwrap()
                    .encode()
            }
            Gossip::ChannelUpdate(u) => {
                assert_eq!(u.raw, *m);
                assert_eq!(u.direction, u.channel_flags & 1);
                msgs::ChannelUpdate::read_from_fixed_length_buffer(&mut &body[..])
                    .unwrap()
                    .encode()
            }
            Gossip::ChannelAmount { satoshis } => {
                assert!(*satoshis > 0);
                continue;
            }
            other => panic!("unexpected record in the sample: {other:?}"),
        };
        assert_eq!(again, body, "LDK re-encoding differs");
    }
    let expected = BTreeMap::from([
        ("channel_amount", 37),
        ("channel_announcement", 39),
        ("channel_update", 27),
        ("node_announcement", 38),
    ]);
    assert_eq!(counts, expected);
}

#[test]
fn sample_fields_are_decoded() {
    let msgs = sample();
    let Gossip::ChannelAnnouncement(first) = decode(&msgs[0]).unwrap() else {
        panic!("the sample starts with a channel_announcement");
    };
    assert_eq!(first.short_channel_id.block(), 523_111);
    assert_eq!(first.short_channel_id.to_string().parse(), Ok(first.short_channel_id));
    let json = serde_json::to_value(Gossip::ChannelAnnouncement(first)).unwrap();
    assert_eq!(json["type"], "channel_announcement");
    assert_eq!(
        json["chain_hash"],
        "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
    );
    // The one update with trailing data carries LND's inbound fee TLV.
    let tlv: Vec<_> = msgs
        .iter()
        .filter_map(|m| match decode(m).unwrap() {
            Gossip::ChannelUpdate(u) if !u.excess_data.is_empty() => Some(u),
            _ => None,
        })
        .collect();
    assert_eq!(tlv.len(), 1);
    assert!(tlv[0].inbound_fee_base_msat.is_some());
    let nodes_with_addresses = msgs
        .iter()
        .filter(|m| matches!(decode(m).unwrap(), Gossip::NodeAnnouncement(n) if !n.addresses.is_empty()))
        .count();
    assert!(nodes_with_addresses > 0);
}

#[test]
fn every_sample_signature_verifies_in_batch_and_one_by_one_and_ldk_agrees() {
    let decoded: Vec<Gossip> = sample().iter().map(|m| decode(m).unwrap()).collect();
    let mut batch = Verifier::new(Network::Mainnet);
    let results = batch.verify_batch(&decoded);
    let mut single = Verifier::new(Network::Mainnet);
    let one_by_one: Vec<_> = decoded.iter().map(|g| single.verify(g)).collect();
    assert_eq!(results, one_by_one);

    let announced: HashSet<_> = decoded
        .iter()
        .filter_map(|g| match g {
            Gossip::ChannelAnnouncement(c) => Some(c.short_channel_id),
            _ => None,
        })
        .collect();
    let (mut ok, mut unknown) = (BTreeMap::<&str, usize>::new(), Vec::new());
    for (g, r) in decoded.iter().zip(&results) {
        match r {
            Ok(()) => *ok.entry(g.name()).or_default() += 1,
            Err(VerifyError::UnknownChannel { short_channel_id }) => {
                assert!(!announced.contains(short_channel_id));
                unknown.push(*short_channel_id);
            }
            Err(e) => panic!("{}: {e}", g.name()),
        }
    }
    assert_eq!(ok["channel_announcement"], 39);
    assert_eq!(ok["node_announcement"], 38);
    assert_eq!(ok["channel_update"], 26, "updates whose announcement is in the sample");
    assert_eq!(unknown.len(), 1, "one update's announcement is not in the sample");
    eprintln!(
        "real mainnet sample: 39/39 channel_announcements (4 signatures each), 38/38 node_announcements, \
         26/27 channel_updates verified; 1 update ({}) has no announcement in the sample",
        unknown[0]
    );

    // LDK's own verifiers agree on every announcement.
    let secp = Secp256k1::verification_only();
    for m in sample() {
        match wire::msg_type(&m) {
            Some(wire::CHANNEL_ANNOUNCEMENT) => {
                let l = msgs::ChannelAnnouncement::read_from_fixed_length_buffer(&mut &m[2..]).unwrap();
                assert!(::lightning::routing::gossip::verify_channel_announcement(&l, &secp).is_ok());
            }
            Some(wire::NODE_ANNOUNCEMENT) => {
                let l = msgs::NodeAnnouncement::read_from_fixed_length_buffer(&mut &m[2..]).unwrap();
                assert!(::lightning::routing::gossip::verify_node_announcement(&l, &secp).is_ok());
            }
            _ => {}
        }
    }
}

#[test]
fn decode_and_verify_batch_matches_the_two_steps() {
    let raws = sample();
    let mut v = Verifier::new(Network::Mainnet);
    let r = v.decode_and_verify_batch(&raws);
    assert_eq!(r.len(), raws.len());
    assert_eq!(r.iter().filter(|r| r.is_ok()).count(), raws.len() - 1);
    assert_eq!(v.channel_count(), 39);
}

#[test]
fn altered_real_announcements_are_rejected_with_the_reason() {
    let raw = sample().remove(0);
    let sig_of = |raw: &[u8]| match decode(raw).unwrap() {
        Gossip::ChannelAnnouncement(c) => verify_channel_announcement(&c, Network::Mainnet),
        _ => unreachable!(),
    };
    assert!(sig_of(&raw).is_ok());

    let mut flipped = raw.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1; // bitcoin_key_2 changes: every signature's message changes
    let err = sig_of(&flipped).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::BadSignature {
                signature: "node_signature_1",
                ..
            } | VerifyError::Malformed(_)
        ),
        "{err}"
    );

    let mut swapped = raw.clone();
    swapped[2 + 64..2 + 128].copy_from_slice(&raw[2..2 + 64]);
    let err = sig_of(&swapped).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::BadSignature {
                signature: "node_signature_2",
                key: "node_id_2",
                ..
            }
        ),
        "{err}"
    );

    let mut chain = raw.clone();
    chain[2 + 258] ^= 0xff; // first byte of chain_hash (no features in this one)
    let err = sig_of(&chain).unwrap_err();
    assert_eq!(err.reason(), "wrong_chain", "{err}");
    assert!(err.to_string().contains("000000000019d6689c"), "{err}");

    let testnet = Verifier::new(Network::Testnet);
    let g = decode(&raw).unwrap();
    let mut testnet = testnet;
    let err = testnet.verify(&g).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::WrongChain {
                got_network: Some(Network::Mainnet),
                ..
            }
        ),
        "{err}"
    );

    let short = &raw[..300];
    let err = decode(short).unwrap_err();
    assert_eq!(err.field, "node_id_1", "{err}");
}
