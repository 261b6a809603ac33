//! NIP-01 filters: what a source asks relays for (`filters = [{ kinds = [0, 1] }]`) and what the
//! archive's queries take. Parsed with bounds, rendered back for a `REQ`, and matched against events as
//! a relay matches them: every condition of a filter holds (`ids`, `authors`, `kinds`, each `#x` tag
//! list, `since`, `until`); within a list, any value. `limit` only bounds a first answer.

use super::NostrEvent;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The most values one list of a filter may hold.
pub const MAX_VALUES: usize = 1_000;
/// The most tag conditions (`#e`, `#p`, …) one filter may hold.
pub const MAX_TAG_CONDITIONS: usize = 26 * 2;
/// The largest `limit`.
pub const MAX_LIMIT: u64 = 5_000;

/// One NIP-01 filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "Value")]
pub struct NostrFilter {
    /// Event ids (64 lowercase hex digits each).
    pub ids: Option<BTreeSet<[u8; 32]>>,
    /// Authors' pubkeys (64 lowercase hex digits each).
    pub authors: Option<BTreeSet<[u8; 32]>>,
    /// Kinds.
    pub kinds: Option<BTreeSet<u16>>,
    /// `#x`: events with a tag `["x", value, …]` for one of the values; by letter.
    pub tags: BTreeMap<char, BTreeSet<String>>,
    /// `created_at >= since`.
    pub since: Option<u64>,
    /// `created_at <= until`.
    pub until: Option<u64>,
    /// At most this many events in a first answer.
    pub limit: Option<u64>,
}

/// Why a filter was refused: the field, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("filter.{field}: {why}")]
pub struct FilterError {
    /// The field (`kinds`, `#e`, …).
    pub field: String,
    /// What is wrong and what is expected.
    pub why: String,
}

fn err(field: &str, why: impl Into<String>) -> FilterError {
    FilterError {
        field: field.to_owned(),
        why: why.into(),
    }
}

fn list<'a>(field: &str, v: &'a Value) -> Result<&'a Vec<Value>, FilterError> {
    let items = v.as_array().ok_or_else(|| err(field, "expected a list"))?;
    if items.len() > MAX_VALUES {
        return Err(err(
            field,
            format!("{} values; expected at most {MAX_VALUES}", items.len()),
        ));
    }
    Ok(items)
}

fn hex32(field: &str, v: &Value) -> Result<[u8; 32], FilterError> {
    let s = v.as_str().unwrap_or_default();
    let mut out = [0u8; 32];
    let lower = s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if s.len() != 64 || !lower || hex::decode_to_slice(s, &mut out).is_err() {
        return Err(err(field, format!("{v} is not 64 lowercase hex digits")));
    }
    Ok(out)
}

fn seconds(field: &str, v: &Value, most: u64) -> Result<u64, FilterError> {
    v.as_u64()
        .filter(|n| *n <= most)
        .ok_or_else(|| err(field, format!("{v} is not a whole number from 0 to {most}")))
}

impl TryFrom<Value> for NostrFilter {
    type Error = FilterError;

    fn try_from(v: Value) -> Result<Self, FilterError> {
        Self::parse(&v)
    }
}

impl NostrFilter {
    /// Parses a filter object; every problem names its field.
    pub fn parse(v: &Value) -> Result<Self, FilterError> {
        let obj = v
            .as_object()
            .ok_or_else(|| err("", "expected a table (a JSON object)"))?;
        let mut f = Self::default();
        for (key, value) in obj {
            match key.as_str() {
                "ids" => {
                    f.ids = Some(
                        list(key, value)?
                            .iter()
                            .map(|x| hex32(key, x))
                            .collect::<Result<_, _>>()?,
                    )
                }
                "authors" => {
                    f.authors = Some(
                        list(key, value)?
                            .iter()
                            .map(|x| hex32(key, x))
                            .collect::<Result<_, _>>()?,
                    )
                }
                "kinds" => {
                    let kinds = list(key, value)?.iter().map(|k| {
                        (k.as_u64().and_then(|k| u16::try_from(k).ok()))
                            .ok_or_else(|| err(key, format!("{k} is not a kind from 0 to 65535")))
                    });
                    f.kinds = Some(kinds.collect::<Result<_, _>>()?);
                }
                "since" => f.since = Some(seconds(key, value, i64::MAX as u64)?),
                "until" => f.until = Some(seconds(key, value, i64::MAX as u64)?),
                "limit" => f.limit = Some(seconds(key, value, MAX_LIMIT)?),
                tag if tag.starts_with('#') => {
                    let mut letters = tag[1..].chars();
                    let (Some(letter), None) = (letters.next(), letters.next()) else {
                        return Err(err(tag, "a tag condition is # and one letter (#e, #p, #t)"));
                    };
                    if !letter.is_ascii_alphabetic() {
                        return Err(err(tag, "a tag condition is # and one letter (#e, #p, #t)"));
                    }
                    let values = (list(tag, value)?.iter())
                        .map(|x| {
                            x.as_str()
                                .map(str::to_owned)
                                .ok_or_else(|| err(tag, format!("{x} is not a string")))
                        })
                        .collect::<Result<_, _>>()?;
                    f.tags.insert(letter, values);
                    if f.tags.len() > MAX_TAG_CONDITIONS {
                        return Err(err(tag, format!("more than {MAX_TAG_CONDITIONS} tag conditions")));
                    }
                }
                other => {
                    return Err(err(
                        other,
                        "unknown field; expected ids, authors, kinds, #<letter>, since, until or limit",
                    ));
                }
            }
        }
        if let (Some(since), Some(until)) = (f.since, f.until)
            && since > until
        {
            return Err(err("since", format!("{since} is after until = {until}")));
        }
        Ok(f)
    }

    /// Whether `event` matches, as a relay decides (`limit` aside).
    pub fn matches(&self, event: &NostrEvent) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&event.id))
            && self.authors.as_ref().is_none_or(|a| a.contains(&event.pubkey))
            && self.kinds.as_ref().is_none_or(|k| k.contains(&event.kind))
            && self.since.is_none_or(|s| event.created_at >= s)
            && self.until.is_none_or(|u| event.created_at <= u)
            && self.tags.iter().all(|(letter, values)| {
                let mut name = [0u8; 4];
                let name = letter.encode_utf8(&mut name);
                (event.tags.iter()).any(|t| {
                    t.first().map(String::as_str) == Some(name) && t.get(1).is_some_and(|v| values.contains(v))
                })
            })
    }

    /// The filter as NIP-01 JSON (for a `REQ`).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let hexes = |s: &BTreeSet<[u8; 32]>| Value::from(s.iter().map(hex::encode).collect::<Vec<_>>());
        if let Some(ids) = &self.ids {
            m.insert("ids".into(), hexes(ids));
        }
        if let Some(authors) = &self.authors {
            m.insert("authors".into(), hexes(authors));
        }
        if let Some(kinds) = &self.kinds {
            m.insert("kinds".into(), kinds.iter().copied().collect::<Vec<_>>().into());
        }
        for (letter, values) in &self.tags {
            m.insert(format!("#{letter}"), values.iter().cloned().collect::<Vec<_>>().into());
        }
        for (key, value) in [("since", self.since), ("until", self.until), ("limit", self.limit)] {
            if let Some(v) = value {
                m.insert(key.into(), v.into());
            }
        }
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: u16, created_at: u64, tags: Vec<Vec<&str>>) -> NostrEvent {
        NostrEvent {
            id: [1; 32],
            pubkey: [2; 32],
            created_at,
            kind,
            tags: tags
                .into_iter()
                .map(|t| t.into_iter().map(str::to_owned).collect())
                .collect(),
            content: String::new(),
            sig: [0; 64],
        }
    }

    fn filter(v: Value) -> NostrFilter {
        NostrFilter::parse(&v).unwrap()
    }

    #[test]
    fn every_condition_holds_and_any_value_of_a_list() {
        let e = event(1, 100, vec![vec!["e", "abc"], vec!["t", "nostr", "extra"], vec!["p"]]);
        assert!(filter(json!({})).matches(&e));
        assert!(filter(json!({"kinds": [0, 1]})).matches(&e));
        assert!(!filter(json!({"kinds": [0]})).matches(&e));
        assert!(filter(json!({"since": 100, "until": 100})).matches(&e));
        assert!(!filter(json!({"since": 101})).matches(&e));
        assert!(!filter(json!({"until": 99})).matches(&e));
        assert!(filter(json!({"#t": ["x", "nostr"], "#e": ["abc"]})).matches(&e));
        assert!(
            !filter(json!({"#t": ["nostr"], "#e": ["zzz"]})).matches(&e),
            "every tag condition holds"
        );
        assert!(
            !filter(json!({"#p": [""]})).matches(&e),
            "a tag without a value matches no value"
        );
        assert!(filter(json!({"ids": ["01".repeat(32)], "authors": ["02".repeat(32)]})).matches(&e));
        assert!(!filter(json!({"authors": ["03".repeat(32)]})).matches(&e));
        assert!(!filter(json!({"ids": []})).matches(&e), "an empty list matches nothing");
    }

    #[test]
    fn a_filter_renders_back_to_itself() {
        let v = json!({"ids": ["ab".repeat(32)], "kinds": [1, 3], "#e": ["x"], "#p": ["y", "z"], "since": 5, "until": 9, "limit": 10});
        let f = filter(v.clone());
        assert_eq!(f.to_json(), v);
        assert_eq!(filter(f.to_json()), f);
    }

    #[test]
    fn bad_filters_name_their_field() {
        let e = |v: Value| NostrFilter::parse(&v).unwrap_err().to_string();
        assert!(e(json!({"kinds": [70000]})).starts_with("filter.kinds:"));
        assert!(e(json!({"kinds": "1"})).contains("expected a list"));
        assert!(e(json!({"ids": ["ABC"]})).starts_with("filter.ids:"));
        assert!(e(json!({"authors": ["AB".repeat(32)]})).contains("lowercase"));
        assert!(e(json!({"limit": 100000})).starts_with("filter.limit:"));
        assert!(e(json!({"since": -1})).starts_with("filter.since:"));
        assert!(e(json!({"since": 10, "until": 5})).contains("after until"));
        assert!(e(json!({"#ee": ["x"]})).starts_with("filter.#ee:"));
        assert!(e(json!({"#1": ["x"]})).starts_with("filter.#1:"));
        assert!(e(json!({"#e": [1]})).contains("not a string"));
        assert!(e(json!({"kind": [1]})).starts_with("filter.kind: unknown field"));
        assert!(e(json!({"kinds": vec![1; MAX_VALUES + 1]})).contains("at most"));
        assert!(e(json!([1])).contains("expected a table"));
    }

    #[test]
    fn filters_come_from_the_config_as_toml_tables() {
        #[derive(serde::Deserialize)]
        struct Source {
            filters: Vec<NostrFilter>,
        }
        let s: Source =
            toml::from_str("filters = [{ kinds = [0, 1, 3, 10002] }, { \"#t\" = [\"bitcoin\"], since = 1700000000 }]")
                .unwrap();
        assert_eq!(s.filters[0].kinds, Some([0, 1, 3, 10002].into_iter().collect()));
        assert_eq!(s.filters[1].since, Some(1_700_000_000));
        let bad = toml::from_str::<Source>("filters = [{ kinds = [70000] }]")
            .err()
            .unwrap()
            .to_string();
        assert!(bad.contains("filter.kinds"), "{bad}");
    }
}
