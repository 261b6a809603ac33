//! The stored position of one relay (checkpoint partition = the relay's normalised URL), committed in the
//! same append as the events it covers.
//!
//! Position text (JSON): `{"cursors": {"<filter key>": {"through": created_at, "id": "hex" | null}}}`.
//! Per filter, every event the relay holds with `created_at <= through` has been archived; `id` is the
//! highest id archived at second `through` (the (created_at, id) cursor of the issue; the walk resumes at
//! `through + 1`). The filter key is the start of the sha256 of the filter's NIP-01 JSON, so changing
//! one filter of the config starts its walk over and leaves the others where they are.

use super::NostrFilter;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One filter's cursor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Every event up to this second is archived.
    pub through: u64,
    /// The highest id archived at `through`, if one was.
    pub id: Option<[u8; 32]>,
}

/// A relay's position: a cursor per filter key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Position {
    /// By [`filter_key`].
    pub cursors: BTreeMap<String, Cursor>,
}

/// The key of a filter in a position.
pub fn filter_key(filter: &NostrFilter) -> String {
    let mut buf = Vec::new();
    tributary_core::id::canonical_json(&filter.to_json(), &mut buf);
    hex::encode(&Sha256::digest(&buf)[..8])
}

impl Position {
    /// The position text.
    pub fn render(&self) -> String {
        let cursors: Map<String, Value> = (self.cursors.iter())
            .map(|(k, c)| (k.clone(), json!({"through": c.through, "id": c.id.map(hex::encode)})))
            .collect();
        json!({ "cursors": cursors }).to_string()
    }

    /// Parses a position text written by [`Position::render`].
    pub fn parse(s: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))?;
        let cursors = v["cursors"].as_object().ok_or("cursors: expected an object")?;
        let mut out = Self::default();
        for (key, c) in cursors {
            let through = c["through"]
                .as_u64()
                .ok_or_else(|| format!("cursors.{key}.through: expected seconds"))?;
            let id = match &c["id"] {
                Value::Null => None,
                Value::String(h) => {
                    let mut id = [0u8; 32];
                    hex::decode_to_slice(h, &mut id).map_err(|e| format!("cursors.{key}.id: {e}"))?;
                    Some(id)
                }
                _ => return Err(format!("cursors.{key}.id: expected hex or null")),
            };
            out.cursors.insert(key.clone(), Cursor { through, id });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_reads_back() {
        let f = NostrFilter::parse(&json!({"kinds": [1]})).unwrap();
        let mut p = Position::default();
        p.cursors.insert(
            filter_key(&f),
            Cursor {
                through: 1_700_000_000,
                id: Some([7; 32]),
            },
        );
        p.cursors.insert("other".into(), Cursor { through: 5, id: None });
        assert_eq!(Position::parse(&p.render()).unwrap(), p);
        assert_ne!(filter_key(&f), filter_key(&NostrFilter::default()));
        assert!(Position::parse("{}").is_err());
        assert!(Position::parse(r#"{"cursors": {"a": {"through": "x"}}}"#).is_err());
    }
}
