//! Cryptographically valid mainnet-shaped gossip, generated for benchmarks (`tributary bench --only
//! lightning`): every signature is a real libsecp256k1 ECDSA signature by a fixed test key, so the messages
//! verify exactly like real ones and cost the same to verify.
//!
//! Layout: channels `700000xCx0` between 64 test nodes, each as its `channel_announcement` (four
//! signatures) followed by `updates_per_channel` `channel_update`s alternating direction, with timestamps
//! `1_600_000_000 + i` and `fee_base_msat = i`, so that every message is distinct. Deterministic: the same
//! arguments give the same bytes.

use super::verify::{Network, par_map};
use super::wire;
use bitcoin::hashes::{Hash, sha256d};
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, SecretKey, SignOnly};
use std::sync::OnceLock;

const NODES: usize = 64;

fn secp() -> &'static Secp256k1<SignOnly> {
    static CTX: OnceLock<Secp256k1<SignOnly>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::signing_only)
}

fn keys() -> &'static [(SecretKey, [u8; 33])] {
    static KEYS: OnceLock<Vec<(SecretKey, [u8; 33])>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..NODES as u8)
            .map(|i| {
                let sk = SecretKey::from_slice(&[i + 1; 32]).expect("a valid secret key");
                (sk, PublicKey::from_secret_key(secp(), &sk).serialize())
            })
            .collect()
    })
}

fn sign(sk: &SecretKey, signed: &[u8]) -> [u8; 64] {
    let digest = Message::from_digest(sha256d::Hash::hash(signed).to_byte_array());
    secp().sign_ecdsa(&digest, sk).serialize_compact()
}

/// The announcement of channel `c` and its updates, as type-prefixed messages.
pub fn channel(c: u32, updates_per_channel: u32) -> Vec<Vec<u8>> {
    let k = keys();
    let (a, b) = (c as usize % NODES, (c as usize * 7 + 1) % NODES);
    let b = if a == b { (b + 1) % NODES } else { b };
    let (n1, n2) = if k[a].1 < k[b].1 {
        (&k[a], &k[b])
    } else {
        (&k[b], &k[a])
    };
    let scid = super::gossip::ShortChannelId::new(700_000, c, 0).0.to_be_bytes();
    let chain = Network::Mainnet.chain_hash();
    let mut tail = Vec::with_capacity(2 + 32 + 8 + 4 * 33);
    tail.extend_from_slice(&0u16.to_be_bytes());
    tail.extend_from_slice(&chain);
    tail.extend_from_slice(&scid);
    for key in [&n1.1, &n2.1, &n1.1, &n2.1] {
        tail.extend_from_slice(key);
    }
    let mut ann = wire::CHANNEL_ANNOUNCEMENT.to_be_bytes().to_vec();
    let (s1, s2) = (sign(&n1.0, &tail), sign(&n2.0, &tail));
    for s in [s1, s2, s1, s2] {
        ann.extend_from_slice(&s);
    }
    ann.extend_from_slice(&tail);
    let mut out = vec![ann];
    for i in 0..updates_per_channel {
        let direction = (i & 1) as u8;
        let mut signed = Vec::with_capacity(72);
        signed.extend_from_slice(&chain);
        signed.extend_from_slice(&scid);
        signed.extend_from_slice(&(1_600_000_000 + i).to_be_bytes());
        signed.push(1); // message_flags: htlc_maximum_msat present
        signed.push(direction);
        signed.extend_from_slice(&144u16.to_be_bytes());
        signed.extend_from_slice(&1_000u64.to_be_bytes());
        signed.extend_from_slice(&i.to_be_bytes());
        signed.extend_from_slice(&100u32.to_be_bytes());
        signed.extend_from_slice(&1_000_000_000u64.to_be_bytes());
        let signer = if direction == 0 { n1 } else { n2 };
        let mut upd = wire::CHANNEL_UPDATE.to_be_bytes().to_vec();
        upd.extend_from_slice(&sign(&signer.0, &signed));
        upd.extend_from_slice(&signed);
        out.push(upd);
    }
    out
}

/// Channels `first..first + count`, generated on all cores, in order.
pub fn channels(first: u32, count: u32, updates_per_channel: u32) -> Vec<Vec<u8>> {
    let ids: Vec<u32> = (first..first + count).collect();
    par_map(&ids, |c| channel(*c, updates_per_channel))
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::lightning::{Network, Verifier, decode};

    #[test]
    fn generated_gossip_decodes_and_verifies() {
        let msgs = super::channels(0, 3, 5);
        assert_eq!(msgs.len(), 18);
        let gossip: Vec<_> = msgs.iter().map(|m| decode(m).expect("decodes")).collect();
        let mut v = Verifier::new(Network::Mainnet);
        assert!(v.verify_batch(&gossip).iter().all(Result::is_ok));
        let mut ids: Vec<_> = msgs.iter().map(|m| crate::lightning::gossip_id(m).unwrap()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 18, "every message is distinct");
    }
}
