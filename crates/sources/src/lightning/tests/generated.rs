//! Edge cases signed with libsecp256k1 by `scripts/make_gossip_fixtures.py` (coincurve): valid messages
//! verify, tampered ones fail naming the signature, other chains are rejected, envelopes re-frame.

use super::hex_lines;
use crate::lightning::envelope::{self, Framing};
use crate::lightning::gossip::AddressKind;
use crate::lightning::verify::{Network, Verifier, VerifyError};
use crate::lightning::{Gossip, decode, gossip_id};

fn decoded(name: &str) -> Vec<(String, Gossip)> {
    hex_lines(name)
        .into_iter()
        .map(|(c, m)| (c, decode(&m).unwrap_or_else(|e| panic!("{name}: {e}"))))
        .collect()
}

#[test]
fn valid_generated_messages_verify_and_decode_every_field() {
    let msgs = decoded("generated/valid.hex");
    let mut v = Verifier::new(Network::Mainnet);
    for (comment, g) in &msgs {
        v.verify(g).unwrap_or_else(|e| panic!("{comment}: {e}"));
    }
    let Gossip::NodeAnnouncement(a) = &msgs[1].1 else {
        panic!("second line is a node_announcement")
    };
    let addrs: Vec<_> = a
        .addresses
        .iter()
        .map(|x| (x.kind, x.address.as_str(), x.port))
        .collect();
    assert_eq!(addrs[0], (AddressKind::Ipv4, "203.0.113.7", 9735));
    assert_eq!(addrs[1], (AddressKind::Ipv6, "2001:db8::1", 9736));
    assert_eq!(addrs[2].0, AddressKind::TorV3);
    assert!(addrs[2].1.ends_with(".onion") && addrs[2].1.len() == 56 + 6);
    assert_eq!(addrs[3], (AddressKind::Dns, "node.example.com", 9738));
    assert_eq!(a.alias, "tributary-a");
    assert_eq!(hex::encode(a.rgb_color), "ff9900");
    let Gossip::NodeAnnouncement(b) = &msgs[2].1 else {
        panic!()
    };
    assert_eq!(b.alias, "tributary-b ⚡");

    let Gossip::ChannelUpdate(inbound) = &msgs[4].1 else {
        panic!()
    };
    assert_eq!(inbound.direction, 1);
    assert_eq!(inbound.inbound_fee_base_msat, Some(-100));
    assert_eq!(inbound.inbound_fee_proportional_millionths, Some(-5));
    assert_eq!(inbound.excess_data.len(), 12);
    let Gossip::ChannelUpdate(legacy) = &msgs[5].1 else {
        panic!()
    };
    assert_eq!(legacy.message_flags, 0);
    assert_eq!(legacy.htlc_maximum_msat, None);
    assert_eq!(legacy.fee_base_msat, 1000);
    assert_eq!(legacy.cltv_expiry_delta, 40);
}

#[test]
fn tampered_signatures_fail_naming_the_signature() {
    let msgs = decoded("generated/tampered_signature.hex");
    assert_eq!(msgs.len(), 5);
    let mut v = Verifier::new(Network::Mainnet);
    // The updates need their (valid) channel known.
    let Gossip::ChannelAnnouncement(ca) = &decoded("generated/valid.hex")[0].1 else {
        panic!()
    };
    v.verify(&Gossip::ChannelAnnouncement(ca.clone())).unwrap();
    for (comment, g) in &msgs {
        let expected = comment
            .strip_prefix("expect bad_signature ")
            .and_then(|c| c.split(' ').next())
            .unwrap_or_else(|| panic!("comment {comment:?}"));
        match v.verify(g) {
            Err(VerifyError::BadSignature { signature, .. }) => {
                assert_eq!(signature, expected, "{comment}")
            }
            other => panic!("{comment}: {other:?}"),
        }
    }
    // Direction 1 signed with node_id_1's key: checked against node_id_2.
    let err = v.verify(&msgs[4].1).unwrap_err();
    assert!(
        matches!(err, VerifyError::BadSignature { key: "node_id_2", .. }),
        "{err}"
    );
}

#[test]
fn other_chain_is_rejected_even_when_validly_signed() {
    let msgs = decoded("generated/other_chain.hex");
    let mut mainnet = Verifier::new(Network::Mainnet);
    for (comment, g) in &msgs {
        let err = mainnet.verify(g).unwrap_err();
        match &err {
            VerifyError::WrongChain {
                expected, got_network, ..
            } => {
                assert!(expected.starts_with("000000000019d6689c"), "{comment}");
                assert_eq!(*got_network, Some(Network::Testnet), "{comment}");
            }
            other => panic!("{comment}: {other}"),
        }
        assert!(err.to_string().contains("(testnet)"), "{err}");
    }
    // The same messages verify on the chain they were made for.
    let mut testnet = Verifier::new(Network::Testnet);
    let results = testnet.verify_batch(&msgs.into_iter().map(|(_, g)| g).collect::<Vec<_>>());
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

#[test]
fn every_envelope_shape_reframes_to_the_message() {
    let valid: Vec<Vec<u8>> = hex_lines("generated/valid.hex").into_iter().map(|(_, m)| m).collect();
    let lines = hex_lines("generated/envelopes.hex");
    assert_eq!(lines.len(), valid.len() * 5);
    for (i, (comment, blob)) in lines.iter().enumerate() {
        let want = &valid[i / 5];
        let shape = comment.split(' ').next().unwrap();
        let expected = match shape {
            "canonical" => Framing::Canonical,
            "off_by_two" => Framing::OffByTwo,
            "no_varint" => Framing::NoVarint,
            "varint_payload" => Framing::VarintPayload,
            "payload_only" => Framing::PayloadOnly,
            other => panic!("shape {other}"),
        };
        let r = envelope::reframe(blob).unwrap_or_else(|| panic!("{comment}"));
        assert_eq!(r.framing, expected, "{comment}");
        assert_eq!(&*r.msg, &want[..], "{comment}");
        let id = comment.rsplit("id=").next().unwrap();
        assert_eq!(gossip_id(&r.msg).unwrap().to_hex(), id, "{comment}");
    }
}
