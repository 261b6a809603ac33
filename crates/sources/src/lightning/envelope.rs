//! Envelopes: the canonical ln-history framing and the historic mis-framed shapes, recognised and
//! re-framed into plain type-prefixed messages.
//!
//! `lnhistoryclient.testing` reproduces the shapes found in ln-history's archive (its 2026-08 repair
//! touched ~148M rows); this module accepts all of them, plus the big-endian length prefix that
//! lnhistoryclient's GSP and plain-file readers use:
//!
//! | [`Framing`] | bytes | lnhistoryclient |
//! |---|---|---|
//! | `Canonical` | `CompactSize(len(body)) ‖ type ‖ body` | `canonical_envelope` |
//! | `OffByTwo` | `CompactSize(2 + len(body)) ‖ type ‖ body` | `offby2_envelope` |
//! | `NoVarint` | `type ‖ body` | `no_varint_envelope` |
//! | `VarintPayload` | `CompactSize(len(body)) ‖ body` (type stripped) | `varint_payload_envelope` |
//! | `PayloadOnly` | `body` | `payload_only_envelope` |
//! | `BigEndianLength` | CompactSize with big-endian multi-byte forms counting `type ‖ body` | `parser.gossip_file._iter_plain` |
//!
//! A candidate is accepted only if its type is known and every field of that type fits in it
//! ([`wire::fields_len`]). A type-less body is given the first type that explains it ([`infer_type`]):
//! a `channel_update` (its fields then nothing or a well-formed TLV stream, so LND's inbound-fee
//! updates are recovered too, which lnhistoryclient's exact-length rule gives up), else a
//! `channel_announcement` or `node_announcement` whose fields fill it exactly; a chain hash must be a
//! known network's and public keys must start with 02 or 03, which rules out chance matches.
//! In a stream, a candidate must also be followed by the end of the input or by another acceptable
//! record, which tells `Canonical` from `OffByTwo` when both fit.

use super::wire::{self, read_compact_size};
use serde::Serialize;
use std::borrow::Cow;

/// How an envelope was framed (see the module table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// ln-history's canonical `raw_gossip`.
    Canonical,
    /// The CompactSize also counts the two type bytes.
    OffByTwo,
    /// A bare type-prefixed message.
    NoVarint,
    /// CompactSize then the body, type stripped.
    VarintPayload,
    /// A bare body, no length and no type.
    PayloadOnly,
    /// Big-endian CompactSize counting type and body (GSP, lnhistoryclient plain files).
    BigEndianLength,
}

/// A recognised envelope: the type-prefixed message and where the envelope ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reframed<'a> {
    /// The type-prefixed message (owned only when the type had to be restored).
    pub msg: Cow<'a, [u8]>,
    /// The shape it had.
    pub framing: Framing,
    /// Bytes of input it used.
    pub len: usize,
}

/// Whether `msg` (type-prefixed) has a known type and all the fields of that type, and is no longer than
/// BOLT #1 allows ([`wire::MAX_MESSAGE_LEN`]).
pub(crate) fn fits(msg: &[u8]) -> bool {
    if msg.len() > wire::MAX_MESSAGE_LEN {
        return false;
    }
    match wire::msg_type(msg) {
        Some(t) if wire::type_name(t).is_some() => wire::fields_len(t, &msg[2..]).is_ok_and(|n| n <= msg.len() - 2),
        _ => false,
    }
}

fn is_point(b: &[u8]) -> bool {
    matches!(b.first(), Some(2 | 3))
}

fn known_chain(hash: &[u8]) -> bool {
    <[u8; 32]>::try_from(hash).is_ok_and(|h| super::verify::Network::from_chain_hash(&h).is_some())
}

/// The BOLT #7 type of a type-less `body`, if one explains it: a `channel_update` whose fields are
/// followed by nothing or by a well-formed TLV stream, or a `channel_announcement` or
/// `node_announcement` whose fields fill it exactly; chain hashes must be a known network's and public
/// keys must start with 02 or 03.
pub fn infer_type(body: &[u8]) -> Option<u16> {
    if body.len() + 2 > wire::MAX_MESSAGE_LEN {
        return None;
    }
    let len_of = |t| wire::fields_len(t, body).ok();
    if let Some(n) = len_of(wire::CHANNEL_UPDATE)
        && known_chain(&body[64..96])
        && wire::is_tlv_stream(&body[n..])
    {
        return Some(wire::CHANNEL_UPDATE);
    }
    if len_of(wire::CHANNEL_ANNOUNCEMENT) == Some(body.len()) {
        let flen = u16::from_be_bytes([body[256], body[257]]) as usize;
        let keys = 258 + flen + 40;
        if known_chain(&body[258 + flen..290 + flen]) && (0..4).all(|i| is_point(&body[keys + 33 * i..])) {
            return Some(wire::CHANNEL_ANNOUNCEMENT);
        }
    }
    if len_of(wire::NODE_ANNOUNCEMENT) == Some(body.len()) {
        let flen = u16::from_be_bytes([body[64], body[65]]) as usize;
        if is_point(&body[66 + flen + 4..]) {
            return Some(wire::NODE_ANNOUNCEMENT);
        }
    }
    None
}

fn with_type(t: u16, body: &[u8]) -> Cow<'static, [u8]> {
    let mut v = Vec::with_capacity(body.len() + 2);
    v.extend_from_slice(&t.to_be_bytes());
    v.extend_from_slice(body);
    Cow::Owned(v)
}

/// Every reading of the bytes at the start of `buf` whose framing and fields fit, in preference order.
/// Shapes without a length (`NoVarint`, `PayloadOnly`) are read to the end of `buf` when `whole` is
/// set, and otherwise (`NoVarint` only) to the end of the type's fields.
fn candidates(buf: &[u8], whole: bool) -> Vec<Reframed<'_>> {
    let mut out = Vec::new();
    let mut framed = |framing, start: usize, end: usize| {
        if end <= buf.len() && start < end && fits(&buf[start..end]) {
            out.push(Reframed {
                msg: Cow::Borrowed(&buf[start..end]),
                framing,
                len: end,
            });
        }
    };
    if let Some((v, n)) = read_compact_size(buf, false) {
        let v = usize::try_from(v).unwrap_or(usize::MAX / 2);
        framed(Framing::Canonical, n, n.saturating_add(v).saturating_add(2));
        framed(Framing::OffByTwo, n, n.saturating_add(v));
    }
    if buf.first().is_some_and(|b| *b >= 0xfd)
        && let Some((v, n)) = read_compact_size(buf, true)
    {
        let v = usize::try_from(v).unwrap_or(usize::MAX / 2);
        framed(Framing::BigEndianLength, n, n.saturating_add(v));
    }
    match wire::msg_type(buf) {
        Some(_) if whole => framed(Framing::NoVarint, 0, buf.len()),
        Some(t) if wire::type_name(t).is_some() => {
            if let Ok(n) = wire::fields_len(t, &buf[2..]) {
                framed(Framing::NoVarint, 0, n + 2);
            }
        }
        _ => {}
    }
    if let Some((v, n)) = read_compact_size(buf, false) {
        let end = usize::try_from(v).ok().and_then(|v| v.checked_add(n));
        if let Some(body) = end.and_then(|e| buf.get(n..e))
            && let Some(t) = infer_type(body)
        {
            out.push(Reframed {
                msg: with_type(t, body),
                framing: Framing::VarintPayload,
                len: n + body.len(),
            });
        }
    }
    if whole && let Some(t) = infer_type(buf) {
        out.push(Reframed {
            msg: with_type(t, buf),
            framing: Framing::PayloadOnly,
            len: buf.len(),
        });
    }
    out
}

/// Re-frames one stored blob (a whole `raw_gossip` value) of any shape in the module table into its
/// type-prefixed message. `None` when no shape explains all of its bytes (a message longer than BOLT #1
/// allows is never explained: callers check [`oversized`] first to say so).
pub fn reframe(blob: &[u8]) -> Option<Reframed<'_>> {
    candidates(blob, true).into_iter().find(|c| c.len == blob.len())
}

/// Reads the next envelope of a stream of concatenated envelopes at the start of `buf` (any shape with
/// a length; `NoVarint` by its fields). A candidate followed by another acceptable envelope or by the
/// end of `buf` wins over one that is not. `None` when nothing fits: either the bytes are not an
/// envelope, or `buf` ends inside one (the caller tells which by whether more input may come).
pub fn next_in_stream(buf: &[u8]) -> Option<Reframed<'_>> {
    let all = candidates(buf, false);
    let followed = |c: &Reframed<'_>| {
        let rest = &buf[c.len..];
        rest.is_empty() || !candidates(rest, false).is_empty() || oversized_in_stream(rest).is_some()
    };
    let best = all.iter().position(followed)?;
    all.into_iter().nth(best)
}

/// Why a whole blob is too long to be the envelope of a message BOLT #1 allows, if it is.
pub fn oversized(blob: &[u8]) -> Option<String> {
    (blob.len() > wire::MAX_ENVELOPE_LEN).then(|| wire::too_long(blob.len() as u64))
}

/// A CompactSize length at the start of a stream that announces a message longer than BOLT #1 allows,
/// followed by a known type (so the bytes are an envelope, not garbage): the reason and the bytes the
/// envelope claims (to skip them without reading them).
pub fn oversized_in_stream(buf: &[u8]) -> Option<(String, u64)> {
    let (v, n) = read_compact_size(buf, false)?;
    let t = wire::msg_type(&buf[n..])?;
    wire::type_name(t)?;
    let msg_len = v.saturating_add(2);
    (msg_len > wire::MAX_MESSAGE_LEN as u64).then(|| (wire::too_long(msg_len), msg_len.saturating_add(n as u64)))
}

/// Writes the canonical envelope of each message (the framing [`reframe`] calls `Canonical`).
pub fn canonical<'a>(msgs: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        super::id::write_raw_gossip(m, &mut out);
    }
    out
}
