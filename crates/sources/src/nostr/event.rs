//! NIP-01 events as relays send them: parsed with bounds, their id recomputed from the NIP-01
//! serialisation, and their BIP-340 signature verified. Nothing is stored that fails (issue 11: a
//! failure is a reject with its reason and the relay).
//!
//! The serialisation is `[0, pubkey, created_at, kind, tags, content]` as JSON without whitespace,
//! UTF-8, strings escaped as JSON.stringify does (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other control
//! characters as `\u00XX`, everything else as is) — which is serde_json's compact output. The fixtures
//! of `fixtures/nostr/signed_events.jsonl` are signed by another implementation (Python's json and
//! libsecp256k1 through coincurve: `scripts/make_nostr_fixtures.py`).

use bitcoin::secp256k1::{Message, Secp256k1, VerifyOnly, XOnlyPublicKey, schnorr};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// A NIP-01 event whose fields have the right shapes (not yet verified: see [`NostrEvent::verify`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NostrEvent {
    /// The id it claims: sha256 of its serialisation.
    pub id: [u8; 32],
    /// The author's x-only public key.
    pub pubkey: [u8; 32],
    /// Seconds since the epoch, as the author says.
    pub created_at: u64,
    /// 0 to 65535.
    pub kind: u16,
    /// Arrays of strings.
    pub tags: Vec<Vec<String>>,
    /// Any text.
    pub content: String,
    /// The BIP-340 signature of the id.
    pub sig: [u8; 64],
}

/// Why an event from a relay is not stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Longer than `max_event_bytes`.
    #[error("the event is {bytes} bytes, more than max_event_bytes = {max}")]
    TooBig {
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Not a NIP-01 event: which field, and what is wrong.
    #[error("not a NIP-01 event: {0}")]
    Malformed(String),
    /// The id is not the hash of the event's serialisation (the event was changed, or the id made up).
    #[error("the id {claimed} is not the event's: its serialisation hashes to {computed}")]
    IdMismatch {
        /// The id it claims, hex.
        claimed: String,
        /// The id of what it holds, hex.
        computed: String,
    },
    /// The signature does not verify against the pubkey (forged, or signed by another key).
    #[error("the signature does not verify against pubkey {pubkey}")]
    BadSignature {
        /// The pubkey, hex.
        pubkey: String,
    },
}

impl EventError {
    /// A short name, for counting (`too_big`, `malformed`, `id_mismatch`, `bad_signature`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooBig { .. } => "too_big",
            Self::Malformed(_) => "malformed",
            Self::IdMismatch { .. } => "id_mismatch",
            Self::BadSignature { .. } => "bad_signature",
        }
    }
}

fn secp() -> &'static Secp256k1<VerifyOnly> {
    static CTX: OnceLock<Secp256k1<VerifyOnly>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::verification_only)
}

/// `N` bytes from exactly `2 N` lowercase hex digits.
fn lower_hex<const N: usize>(v: &Value, field: &str) -> Result<[u8; N], EventError> {
    let s = v
        .as_str()
        .ok_or_else(|| EventError::Malformed(format!("{field} is not a string")))?;
    if s.len() != 2 * N || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(EventError::Malformed(format!(
            "{field} is not {} lowercase hex digits",
            2 * N
        )));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|e| EventError::Malformed(format!("{field}: {e}")))?;
    Ok(out)
}

impl NostrEvent {
    /// Parses the JSON object of an event (as in `["EVENT", sub, {…}]`), at most `max_bytes` long.
    /// Fields beyond NIP-01's are ignored.
    pub fn parse(json: &str, max_bytes: usize) -> Result<Self, EventError> {
        if json.len() > max_bytes {
            return Err(EventError::TooBig {
                bytes: json.len(),
                max: max_bytes,
            });
        }
        let v: Value = serde_json::from_str(json).map_err(|e| EventError::Malformed(format!("invalid JSON ({e})")))?;
        Self::from_value(&v)
    }

    /// The event of a JSON value already parsed (its size checked by the caller).
    pub fn from_value(v: &Value) -> Result<Self, EventError> {
        let obj = v
            .as_object()
            .ok_or_else(|| EventError::Malformed("the event is not a JSON object".into()))?;
        let field = |name: &str| {
            obj.get(name)
                .ok_or_else(|| EventError::Malformed(format!("{name} is missing")))
        };
        let created_at = field("created_at")?
            .as_u64()
            .filter(|t| *t <= i64::MAX as u64)
            .ok_or_else(|| EventError::Malformed("created_at is not a whole number of seconds from 0".into()))?;
        let kind = field("kind")?
            .as_u64()
            .and_then(|k| u16::try_from(k).ok())
            .ok_or_else(|| EventError::Malformed("kind is not a whole number from 0 to 65535".into()))?;
        let tags = field("tags")?
            .as_array()
            .ok_or_else(|| EventError::Malformed("tags is not an array".into()))?
            .iter()
            .enumerate()
            .map(|(i, tag)| {
                let items = tag
                    .as_array()
                    .ok_or_else(|| EventError::Malformed(format!("tags[{i}] is not an array")))?;
                (items.iter().enumerate())
                    .map(|(j, s)| {
                        s.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| EventError::Malformed(format!("tags[{i}][{j}] is not a string")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let content = field("content")?
            .as_str()
            .ok_or_else(|| EventError::Malformed("content is not a string".into()))?
            .to_owned();
        Ok(Self {
            id: lower_hex(field("id")?, "id")?,
            pubkey: lower_hex(field("pubkey")?, "pubkey")?,
            created_at,
            kind,
            tags,
            content,
            sig: lower_hex(field("sig")?, "sig")?,
        })
    }

    /// The NIP-01 serialisation the id is the hash of.
    pub fn serialise(&self) -> Vec<u8> {
        let array = serde_json::json!([
            0,
            hex::encode(self.pubkey),
            self.created_at,
            self.kind,
            self.tags,
            self.content
        ]);
        serde_json::to_vec(&array).unwrap_or_default()
    }

    /// sha256 of [`NostrEvent::serialise`].
    pub fn computed_id(&self) -> [u8; 32] {
        Sha256::digest(self.serialise()).into()
    }

    /// Checks that the id is the event's and that the author signed it.
    pub fn verify(&self) -> Result<(), EventError> {
        let computed = self.computed_id();
        if computed != self.id {
            return Err(EventError::IdMismatch {
                claimed: hex::encode(self.id),
                computed: hex::encode(computed),
            });
        }
        let bad = || EventError::BadSignature {
            pubkey: hex::encode(self.pubkey),
        };
        let key = XOnlyPublicKey::from_slice(&self.pubkey).map_err(|_| bad())?;
        let sig = schnorr::Signature::from_slice(&self.sig).map_err(|_| bad())?;
        secp()
            .verify_schnorr(&sig, &Message::from_digest(self.id), &key)
            .map_err(|_| bad())
    }

    /// The event as NIP-01 JSON (what `data` of a `nostr.<kind>` event holds).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": hex::encode(self.id),
            "pubkey": hex::encode(self.pubkey),
            "created_at": self.created_at,
            "kind": self.kind,
            "tags": self.tags,
            "content": self.content,
            "sig": hex::encode(self.sig),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> Vec<Value> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/nostr/signed_events.jsonl");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn events_signed_elsewhere_verify_and_tampered_ones_are_refused_with_the_reason() {
        let cases = fixtures();
        assert!(cases.len() >= 20, "{}", cases.len());
        let mut valid = 0;
        for case in &cases {
            let text = case["event"].to_string();
            let event = NostrEvent::parse(&text, 1 << 20).unwrap_or_else(|e| panic!("{text}: {e}"));
            let verdict = match event.verify() {
                Ok(()) => "valid",
                Err(e) => e.reason(),
            };
            assert_eq!(verdict, case["verdict"], "{case}");
            if verdict == "valid" {
                valid += 1;
                // What the archive keeps is the event as it came.
                assert_eq!(event.to_json(), case["event"]);
            }
        }
        assert_eq!(valid, 13);
    }

    #[test]
    fn malformed_events_say_which_field() {
        let good = fixtures()[1]["event"].clone();
        let with = |k: &str, v: Value| {
            let mut e = good.clone();
            e[k] = v;
            NostrEvent::from_value(&e).unwrap_err().to_string()
        };
        assert!(with("id", "ABCD".into()).contains("id is not 64 lowercase hex"));
        assert!(with("pubkey", Value::Null).contains("pubkey is not a string"));
        assert!(with("sig", "zz".repeat(64).into()).contains("sig is not 128 lowercase hex"));
        assert!(with("kind", 65536.into()).contains("kind is not a whole number"));
        assert!(with("kind", (-1).into()).contains("kind"));
        assert!(with("created_at", 1.5.into()).contains("created_at"));
        assert!(with("tags", serde_json::json!([["e", 1]])).contains("tags[0][1] is not a string"));
        assert!(with("tags", serde_json::json!(["e"])).contains("tags[0] is not an array"));
        assert!(with("content", 5.into()).contains("content is not a string"));
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("sig");
        assert!(
            NostrEvent::from_value(&missing)
                .unwrap_err()
                .to_string()
                .contains("sig is missing")
        );
        assert_eq!(NostrEvent::parse("{", 100).unwrap_err().reason(), "malformed");
        let big = good.to_string();
        assert_eq!(NostrEvent::parse(&big, big.len() - 1).unwrap_err().reason(), "too_big");
    }

    #[test]
    fn a_point_not_on_the_curve_is_a_bad_signature_not_a_panic() {
        let mut e = NostrEvent::from_value(&fixtures()[1]["event"]).unwrap();
        e.pubkey = [0xff; 32];
        e.id = e.computed_id();
        assert_eq!(e.verify().unwrap_err().reason(), "bad_signature");
    }
}
