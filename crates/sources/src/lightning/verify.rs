//! Signature and chain checks for BOLT #7 gossip, one message at a time or in parallel batches.
//!
//! What is checked, always over the exact received bytes (never a re-encoding):
//! - `channel_announcement`: `chain_hash` is the configured network's genesis hash; the four
//!   signatures (`node_signature_1/2` by `node_id_1/2`, `bitcoin_signature_1/2` by `bitcoin_key_1/2`)
//!   each sign `sha256d(body[256..])`, the body after the signatures.
//! - `node_announcement`: `signature` by `node_id` over `sha256d(body[64..])`.
//! - `channel_update`: `chain_hash`, then `signature` over `sha256d(body[64..])` by `node_id_1` when
//!   `channel_flags & 1 == 0`, else by `node_id_2`, taken from the channel's verified announcement.
//!
//! Signatures must be low-S compact ECDSA (libsecp256k1's rule, as LDK and Core Lightning apply it).
//! The tests cross-check every sample message with LDK's `verify_channel_announcement` and
//! `verify_node_announcement`. CPU-heavy: async callers run batches in `spawn_blocking`.

use super::gossip::{ChannelAnnouncement, ChannelUpdate, Gossip, NodeAnnouncement, ShortChannelId};
pub use super::network::Network;
use super::wire::{self, Malformed};
use bitcoin::hashes::{Hash, sha256d};
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1, VerifyOnly, ecdsa::Signature};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Hex of a chain hash in display order (reversed), as explorers show genesis hashes.
fn display_hash(h: &[u8; 32]) -> String {
    let mut r = *h;
    r.reverse();
    hex::encode(r)
}

/// Why a message was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The bytes do not form the message (the field is named).
    #[error(transparent)]
    Malformed(#[from] Malformed),
    /// A signature does not sign the message with its key.
    #[error("bad signature: {signature} does not verify against {key} {key_hex}")]
    BadSignature {
        /// Which signature (`node_signature_2`, `signature`, ...).
        signature: &'static str,
        /// Which key it was checked against (`node_id_1`, `bitcoin_key_2`, ...).
        key: &'static str,
        /// That key, hex.
        key_hex: String,
    },
    /// The message belongs to another chain.
    #[error("wrong chain: expected {expected} ({network}), got {got}{}", got_network.map(|n| format!(" ({n})")).unwrap_or_default())]
    WrongChain {
        /// The configured network.
        network: Network,
        /// Its genesis hash, display order.
        expected: String,
        /// The message's chain hash, display order.
        got: String,
        /// The network of `got`, if it is a known one.
        got_network: Option<Network>,
    },
    /// A channel update whose channel announcement has not been verified (yet).
    #[error("unknown channel {short_channel_id}: no verified channel_announcement for this channel_update yet")]
    UnknownChannel {
        /// The channel.
        short_channel_id: ShortChannelId,
    },
}

impl VerifyError {
    /// A stable, low-cardinality reason code for metrics and the problems store.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::BadSignature { .. } => "bad_signature",
            Self::WrongChain { .. } => "wrong_chain",
            Self::UnknownChannel { .. } => "unknown_channel",
        }
    }
}

fn secp() -> &'static Secp256k1<VerifyOnly> {
    static CTX: OnceLock<Secp256k1<VerifyOnly>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::verification_only)
}

fn check_chain(network: Network, got: &[u8; 32]) -> Result<(), VerifyError> {
    let expected = network.chain_hash();
    if &expected == got {
        return Ok(());
    }
    Err(VerifyError::WrongChain {
        network,
        expected: display_hash(&expected),
        got: display_hash(got),
        got_network: Network::from_chain_hash(got),
    })
}

/// sha256d of the signed part of a type-prefixed BOLT #7 message.
fn digest(raw: &[u8]) -> Message {
    let t = wire::msg_type(raw).unwrap_or(0);
    let from = 2 + wire::signed_from(t).unwrap_or(0);
    Message::from_digest(sha256d::Hash::hash(&raw[from.min(raw.len())..]).to_byte_array())
}

fn pubkey(t: u16, field: &'static str, bytes: &[u8; 33]) -> Result<PublicKey, VerifyError> {
    PublicKey::from_slice(bytes).map_err(|_| Malformed::new(t, field, "not a valid secp256k1 public key").into())
}

fn check_sig(
    msg: &Message,
    t: u16,
    (signature, sig): (&'static str, &[u8; 64]),
    (key, pk): (&'static str, &PublicKey),
) -> Result<(), VerifyError> {
    let s = Signature::from_compact(sig)
        .map_err(|_| Malformed::new(t, signature, "not a valid compact ECDSA signature"))?;
    secp().verify_ecdsa(msg, &s, pk).map_err(|_| VerifyError::BadSignature {
        signature,
        key,
        key_hex: hex::encode(pk.serialize()),
    })
}

/// The node keys of a verified channel, which its updates are checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelKeys {
    /// The channel.
    pub short_channel_id: ShortChannelId,
    /// `node_id_1` (signs direction 0).
    pub node_1: PublicKey,
    /// `node_id_2` (signs direction 1).
    pub node_2: PublicKey,
}

/// Checks a channel announcement's chain and its four signatures; returns its node keys.
pub fn verify_channel_announcement(m: &ChannelAnnouncement, network: Network) -> Result<ChannelKeys, VerifyError> {
    let t = wire::CHANNEL_ANNOUNCEMENT;
    check_chain(network, &m.chain_hash)?;
    let msg = digest(&m.raw);
    let n1 = pubkey(t, "node_id_1", &m.node_id_1)?;
    let n2 = pubkey(t, "node_id_2", &m.node_id_2)?;
    let b1 = pubkey(t, "bitcoin_key_1", &m.bitcoin_key_1)?;
    let b2 = pubkey(t, "bitcoin_key_2", &m.bitcoin_key_2)?;
    check_sig(&msg, t, ("node_signature_1", &m.node_signature_1), ("node_id_1", &n1))?;
    check_sig(&msg, t, ("node_signature_2", &m.node_signature_2), ("node_id_2", &n2))?;
    check_sig(
        &msg,
        t,
        ("bitcoin_signature_1", &m.bitcoin_signature_1),
        ("bitcoin_key_1", &b1),
    )?;
    check_sig(
        &msg,
        t,
        ("bitcoin_signature_2", &m.bitcoin_signature_2),
        ("bitcoin_key_2", &b2),
    )?;
    Ok(ChannelKeys {
        short_channel_id: m.short_channel_id,
        node_1: n1,
        node_2: n2,
    })
}

/// Checks a node announcement's signature (node announcements carry no chain hash).
pub fn verify_node_announcement(m: &NodeAnnouncement) -> Result<(), VerifyError> {
    let t = wire::NODE_ANNOUNCEMENT;
    let pk = pubkey(t, "node_id", &m.node_id)?;
    check_sig(&digest(&m.raw), t, ("signature", &m.signature), ("node_id", &pk))
}

/// Checks a channel update's chain and its signature by the node of its direction.
pub fn verify_channel_update(m: &ChannelUpdate, network: Network, keys: &ChannelKeys) -> Result<(), VerifyError> {
    check_chain(network, &m.chain_hash)?;
    let key = if m.direction == 0 {
        ("node_id_1", &keys.node_1)
    } else {
        ("node_id_2", &keys.node_2)
    };
    check_sig(&digest(&m.raw), wire::CHANNEL_UPDATE, ("signature", &m.signature), key)
}

/// Maps `items` on all cores (scoped threads over contiguous chunks), keeping their order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const MIN_CHUNK: usize = 64;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || items.len() < 2 * MIN_CHUNK {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads).max(MIN_CHUNK);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a verification thread panicked"))
            .collect()
    })
}

/// Verifies a stream of messages, remembering verified channels so that their updates can be checked.
#[derive(Debug, Default)]
pub struct Verifier {
    network: Network,
    channels: HashMap<ShortChannelId, ChannelKeys>,
}

impl Verifier {
    /// A verifier for one network, knowing no channel yet.
    pub fn new(network: Network) -> Self {
        Self {
            network,
            channels: HashMap::new(),
        }
    }

    /// The configured network.
    pub fn network(&self) -> Network {
        self.network
    }

    /// Remembers a channel verified earlier (for example when restarting from a store).
    pub fn add_channel(&mut self, keys: ChannelKeys) {
        self.channels.insert(keys.short_channel_id, keys);
    }

    /// The keys of a verified channel.
    pub fn channel(&self, scid: ShortChannelId) -> Option<&ChannelKeys> {
        self.channels.get(&scid)
    }

    /// How many channels are known.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    fn check_stateless(&self, g: &Gossip) -> Result<Option<ChannelKeys>, VerifyError> {
        match g {
            Gossip::ChannelAnnouncement(m) => verify_channel_announcement(m, self.network).map(Some),
            Gossip::NodeAnnouncement(m) => verify_node_announcement(m).map(|()| None),
            Gossip::ChannelUpdate(m) => check_chain(self.network, &m.chain_hash).map(|()| None),
            _ => Ok(None),
        }
    }

    fn check_update(&self, g: &Gossip) -> Result<(), VerifyError> {
        let Gossip::ChannelUpdate(m) = g else {
            return Ok(());
        };
        let keys = self
            .channels
            .get(&m.short_channel_id)
            .ok_or(VerifyError::UnknownChannel {
                short_channel_id: m.short_channel_id,
            })?;
        verify_channel_update(m, self.network, keys)
    }

    /// Verifies one message. A verified channel announcement makes its channel known. Core Lightning
    /// records carry nothing to verify and pass.
    pub fn verify(&mut self, g: &Gossip) -> Result<(), VerifyError> {
        if let Some(keys) = self.check_stateless(g)? {
            self.add_channel(keys);
        }
        self.check_update(g)
    }

    /// Verifies a batch on all cores, one result per message in order. Announcements are checked first,
    /// so updates may follow their announcement anywhere in the same batch (or in an earlier one).
    pub fn verify_batch(&mut self, batch: &[Gossip]) -> Vec<Result<(), VerifyError>> {
        let first = par_map(batch, |g| self.check_stateless(g));
        let mut results = Vec::with_capacity(batch.len());
        for r in first {
            results.push(match r {
                Ok(Some(keys)) => {
                    self.add_channel(keys);
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            });
        }
        let updates: Vec<usize> = (0..batch.len())
            .filter(|&i| results[i].is_ok() && matches!(batch[i], Gossip::ChannelUpdate(_)))
            .collect();
        let checked = par_map(&updates, |&i| self.check_update(&batch[i]));
        for (i, r) in updates.into_iter().zip(checked) {
            results[i] = r;
        }
        results
    }

    /// Decodes then verifies raw type-prefixed messages on all cores.
    pub fn decode_and_verify_batch<M: AsRef<[u8]> + Sync>(&mut self, raws: &[M]) -> Vec<Result<Gossip, VerifyError>> {
        let mut ok = Vec::with_capacity(raws.len());
        let slots: Vec<Result<(), VerifyError>> = par_map(raws, |m| super::decode::decode(m.as_ref()))
            .into_iter()
            .map(|d| d.map(|g| ok.push(g)).map_err(VerifyError::from))
            .collect();
        let results = self.verify_batch(&ok);
        let mut verified = ok.into_iter().zip(results);
        slots
            .into_iter()
            .map(|slot| {
                slot?;
                let (g, r) = verified.next().expect("one result per decoded message");
                r.map(|()| g)
            })
            .collect()
    }
}
