//! Event ids: 32-byte content addresses, shown as 64 lowercase hex characters.
//!
//! Every source documents how it derives ids from content or source coordinates (never from arrival time).
//! Events posted without an id get [`EventId::of_json_event`]: sha256 of the canonical JSON of
//! `{"data": .., "key": .., "kind": ..}` (keys sorted, no whitespace, `key` is `null` when absent).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The content address of an event.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub [u8; 32]);

impl EventId {
    /// sha256 of the given bytes.
    pub fn sha256(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The id of an event given without one: sha256 of the canonical JSON of `{data, key, kind}`.
    pub fn of_json_event(kind: &str, key: Option<&str>, data: &serde_json::Value) -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(b"{\"data\":");
        canonical_json(data, &mut buf);
        buf.extend_from_slice(b",\"key\":");
        match key {
            Some(k) => write_json_string(k, &mut buf),
            None => buf.extend_from_slice(b"null"),
        }
        buf.extend_from_slice(b",\"kind\":");
        write_json_string(kind, &mut buf);
        buf.push(b'}');
        Self::sha256(&buf)
    }

    /// The store's dedup key of this id in a source: sha256(`tributary/dedup/v1` ‖ len(source) u32 BE ‖
    /// source ‖ id). Events are deduplicated per source (ADR 0005): the same id posted to another source
    /// is another event, so no one can suppress, replace or detect the events of a source it cannot
    /// write to or read; several observers (collectors, relays, providers) of one source still meet one
    /// event with several observations.
    pub fn in_source(&self, source: &str) -> EventId {
        let mut h = Sha256::new();
        h.update(b"tributary/dedup/v1");
        h.update((source.len() as u32).to_be_bytes());
        h.update(source.as_bytes());
        h.update(self.0);
        Self(h.finalize().into())
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// Appends the canonical JSON of `value`: object keys sorted by their UTF-8 bytes, no whitespace.
/// Independent of serde_json's `preserve_order` feature.
pub fn canonical_json(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_string(k, out);
                out.push(b':');
                canonical_json(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(v, out);
            }
            out.push(b']');
        }
        Value::Number(n) => out.extend_from_slice(canonical_number(n).as_bytes()),
        // Other scalars have one serde_json rendering, which has no whitespace.
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

/// A number's canonical text. serde_json's `arbitrary_precision` keeps numbers as sent, so that integers
/// beyond 64 bits stay exact; the canonical form stays what it was before: 64-bit integers in decimal,
/// other numbers as the shortest text of their f64 (`1.50` and `1.5` are one number, `1E2` is `100.0`).
/// Only an integer beyond 64 bits, or a number beyond f64, keeps its digits (before, it became a float).
fn canonical_number(n: &serde_json::Number) -> String {
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let text = n.to_string();
    if text == "-0" {
        return "-0.0".to_owned();
    }
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    let integer = text
        .strip_prefix('-')
        .unwrap_or(&text)
        .bytes()
        .all(|b| b.is_ascii_digit());
    if integer {
        return text;
    }
    match n.as_f64().and_then(serde_json::Number::from_f64) {
        Some(f) => f.to_string(),
        None => text,
    }
}

fn write_json_string(s: &str, out: &mut Vec<u8>) {
    // serde_json's string escaping is the canonical one (RFC 8259 minimal escapes).
    out.extend_from_slice(serde_json::Value::from(s).to_string().as_bytes());
}

/// Appends Bitcoin's CompactSize encoding of `n` (multi-byte values little-endian), as used by
/// ln-history's canonical `gossip_id` framing and its `PlatformEvent` bodies.
pub fn write_compact_size(n: u64, out: &mut Vec<u8>) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Why a string is not an event id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected 64 lowercase hex characters, got {got:?}")]
pub struct ParseIdError {
    /// What was given, shortened to 80 characters.
    pub got: String,
}

impl FromStr for EventId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseIdError {
            got: s.chars().take(80).collect(),
        };
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(err());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| err())?;
        Ok(Self(out))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.to_hex())
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let mut out = Vec::new();
        canonical_json(&json!({"b": [1, {"z": 1, "a": "x"}], "a": null}), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":null,"b":[1,{"a":"x","z":1}]}"#);
    }

    #[test]
    fn canonical_numbers_are_those_of_f64_except_integers_beyond_64_bits() {
        // Renderings before serde_json's arbitrary_precision was turned on, so that ids stay the same.
        for (text, canonical) in [
            ("0", "0"),
            ("-0", "-0.0"),
            ("1", "1"),
            ("-5", "-5"),
            ("1.5", "1.5"),
            ("1.50", "1.5"),
            ("1E2", "100.0"),
            ("1e-7", "1e-7"),
            ("0.1", "0.1"),
            ("100.0", "100.0"),
            ("1.5e300", "1.5e+300"),
            ("18446744073709551615", "18446744073709551615"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("9007199254740993", "9007199254740993"),
            ("2.5e-5", "0.000025"),
            ("123456789.123456789", "123456789.12345679"),
        ] {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            let mut out = Vec::new();
            canonical_json(&v, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), canonical, "{text}");
        }
        let big: serde_json::Value = serde_json::from_str("12345678901234567890123").unwrap();
        let mut out = Vec::new();
        canonical_json(&big, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "12345678901234567890123",
            "exact beyond 64 bits"
        );
        assert_eq!(
            big.to_string(),
            "12345678901234567890123",
            "kept exactly (arbitrary_precision)"
        );
    }

    #[test]
    fn id_of_json_event_is_sha256_of_canonical_form() {
        let id = EventId::of_json_event("a.b", None, &json!({"x": 1}));
        let expected = EventId::sha256(br#"{"data":{"x":1},"key":null,"kind":"a.b"}"#);
        assert_eq!(id, expected);
    }

    #[test]
    fn parse_rejects_uppercase_and_wrong_length() {
        assert!("AB".repeat(32).parse::<EventId>().is_err());
        assert!("ab".repeat(31).parse::<EventId>().is_err());
        let id: EventId = "ab".repeat(32).parse().unwrap();
        assert_eq!(id.to_hex(), "ab".repeat(32));
    }
}
