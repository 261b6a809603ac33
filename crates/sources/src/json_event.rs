//! The JSON event shape accepted by the `http` and `file` sources.
//!
//! ```json
//! {"kind": "orders.created", "data": {"order": 42}, "key": "order-42",
//!  "id": "<64 lowercase hex>", "occurred_at": "2026-11-22T05:32:28Z"}
//! ```
//! `kind` (dot-separated) and `data` (any JSON) are required. Without `id`, the id is
//! [`EventId::of_json_event`]: sha256 of the canonical JSON of `{data, key, kind}`. Unknown fields are
//! rejected so that a typo (`ocurred_at`) is not silently dropped.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::fmt;
use tributary_core::{EventId, NewEvent, Timestamp};

/// Why one item is not a valid event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {message}", index.map(|i| format!("events[{i}]")).unwrap_or_else(|| "event".to_owned()), field.as_ref().map(|f| format!(".{f}")).unwrap_or_default())]
pub struct ItemError {
    /// Position in the request array (None for a single object).
    pub index: Option<usize>,
    /// The offending field, if one.
    pub field: Option<String>,
    /// What was wrong and what is expected.
    pub message: String,
}

/// Why a request body was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Malformed JSON or an invalid event (400).
    #[error(transparent)]
    Invalid(ItemError),
    /// Over a limit: too many events, or a `data`, `key` or `kind` too long (413).
    #[error(transparent)]
    TooLarge(ItemError),
    /// The memory charge for the decoded events was refused (the caller says why).
    #[error("the decoded events do not fit in the memory left for ingest")]
    OverBudget,
}

/// Longest `kind`, in bytes.
pub const MAX_KIND_BYTES: usize = 256;

/// Limits on the events of one request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventLimits {
    /// Most events in one body.
    pub max_events: usize,
    /// Longest `data`, as JSON text in bytes.
    pub max_data_bytes: usize,
    /// Longest `key`, in bytes.
    pub max_key_bytes: usize,
}

const FIELDS: &str = "kind, data, id, key, occurred_at";

/// Whether `kind` is dot-separated segments of letters, digits, `_` and `-`, at most 256 bytes.
pub fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= MAX_KIND_BYTES
        && kind
            .split('.')
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

/// The fields of one event object, before validation.
#[derive(Default)]
struct Fields {
    kind: Option<Value>,
    data: Option<Value>,
    id: Option<Value>,
    key: Option<Value>,
    occurred_at: Option<Value>,
}

/// Validates one JSON value as an event.
pub fn parse_item(value: Value, index: Option<usize>) -> Result<NewEvent, ItemError> {
    let err = |field: Option<&str>, message: String| ItemError {
        index,
        field: field.map(str::to_owned),
        message,
    };
    let Value::Object(obj) = value else {
        return Err(err(
            None,
            format!("expected a JSON object with fields {FIELDS}, got {}", type_name(&value)),
        ));
    };
    let mut fields = Fields::default();
    for (k, v) in obj {
        match k.as_str() {
            "kind" => fields.kind = Some(v),
            "data" => fields.data = Some(v),
            "id" => fields.id = Some(v),
            "key" => fields.key = Some(v),
            "occurred_at" => fields.occurred_at = Some(v),
            _ => return Err(err(Some(&k), format!("unknown field, expected one of {FIELDS}"))),
        }
    }
    finish(fields, index, None).map_err(|e| match e {
        BodyError::Invalid(e) | BodyError::TooLarge(e) => e,
        BodyError::OverBudget => unreachable!("no budget without limits"),
    })
}

fn finish(f: Fields, index: Option<usize>, limits: Option<&EventLimits>) -> Result<NewEvent, BodyError> {
    let err = |field: &str, message: String| {
        BodyError::Invalid(ItemError {
            index,
            field: Some(field.to_owned()),
            message,
        })
    };
    let too_large = |field: &str, message: String| {
        BodyError::TooLarge(ItemError {
            index,
            field: Some(field.to_owned()),
            message,
        })
    };
    let kind = match f.kind {
        Some(Value::String(k)) if k.len() > MAX_KIND_BYTES && limits.is_some() => {
            return Err(too_large(
                "kind",
                format!("{} bytes, more than the most of {MAX_KIND_BYTES}", k.len()),
            ));
        }
        Some(Value::String(k)) if valid_kind(&k) => k,
        Some(Value::String(k)) => {
            return Err(err(
                "kind",
                format!(
                    "expected dot-separated segments of letters, digits, '_' or '-' such as \"orders.created\" (at most {MAX_KIND_BYTES} bytes), got {k:?}"
                ),
            ));
        }
        Some(other) => return Err(err("kind", format!("expected a string, got {}", type_name(&other)))),
        None => return Err(err("kind", "missing required field".to_owned())),
    };
    let data = f.data.ok_or_else(|| err("data", "missing required field".to_owned()))?;
    let key = opt_string(f.key).map_err(|m| err("key", m))?;
    if let (Some(k), Some(l)) = (&key, limits)
        && k.len() > l.max_key_bytes
    {
        return Err(too_large(
            "key",
            format!(
                "{} bytes, more than the source's max_key_bytes of {}",
                k.len(),
                l.max_key_bytes
            ),
        ));
    }
    let occurred_at = match opt_string(f.occurred_at).map_err(|m| err("occurred_at", m))? {
        Some(s) => Some(Timestamp::parse_rfc3339(&s).map_err(|m| err("occurred_at", m))?),
        None => None,
    };
    let id = match opt_string(f.id).map_err(|m| err("id", m))? {
        Some(s) => s.parse::<EventId>().map_err(|e| err("id", e.to_string()))?,
        None => EventId::of_json_event(&kind, key.as_deref(), &data),
    };
    Ok(NewEvent {
        id,
        kind,
        key,
        occurred_at,
        position: None,
        payload: Vec::new(),
        data,
        tenant: None,
        retracts: None,
    })
}

/// Parses a request body: one event object or an array of them. The first problem rejects the whole body.
pub fn parse_body(body: &[u8]) -> Result<Vec<NewEvent>, ItemError> {
    let limits = EventLimits {
        max_events: usize::MAX,
        max_data_bytes: usize::MAX,
        max_key_bytes: usize::MAX,
    };
    parse_body_within(body, &limits, &mut |_| true).map_err(|e| match e {
        BodyError::Invalid(e) | BodyError::TooLarge(e) => e,
        BodyError::OverBudget => unreachable!("the charge never refuses"),
    })
}

/// Parses a request body within `limits`, event by event: no JSON tree of the whole body is built, and
/// a `data` over the limit is refused before it is decoded. `charge` is called with the estimated memory
/// of each decoded event; when it returns false, parsing stops with [`BodyError::OverBudget`].
pub fn parse_body_within(
    body: &[u8],
    limits: &EventLimits,
    charge: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<NewEvent>, BodyError> {
    let mut failure = None;
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = BodySeed {
        limits,
        charge,
        failure: &mut failure,
    }
    .deserialize(&mut de)
    .and_then(|events| de.end().map(|()| events));
    match (parsed, failure) {
        (_, Some(f)) => Err(f),
        (Ok(events), None) => Ok(events),
        (Err(e), None) => Err(BodyError::Invalid(ItemError {
            index: None,
            field: None,
            message: format!("body is not valid JSON: {e}"),
        })),
    }
}

/// Estimated heap memory of a decoded event (its struct, strings and `data` tree).
pub fn event_footprint(e: &NewEvent) -> usize {
    // The event (twice: a Vec may hold twice its length), its id in the answer, the answer's text.
    2 * std::mem::size_of::<NewEvent>()
        + 100
        + heap_string(&e.kind)
        + e.key.as_deref().map_or(0, heap_string)
        + value_footprint(&e.data)
}

fn heap_string(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        s.len().next_multiple_of(16) + 16
    }
}

/// Estimated heap memory under a JSON value (not counting the value itself).
pub fn value_footprint(v: &Value) -> usize {
    const SLOT: usize = std::mem::size_of::<Value>();
    match v {
        // A number may own a string (serde_json's arbitrary_precision): count one small allocation.
        Value::Number(_) => 32,
        Value::Null | Value::Bool(_) => 0,
        Value::String(s) => heap_string(s),
        Value::Array(items) => items.len() * 2 * SLOT + 16 + items.iter().map(value_footprint).sum::<usize>(),
        Value::Object(map) if map.is_empty() => 0,
        Value::Object(map) => {
            // B-tree nodes of 11 slots of (String, Value), about 640 bytes each, usually half full.
            640 * map.len().div_ceil(6).max(1)
                + map
                    .iter()
                    .map(|(k, v)| heap_string(k) + value_footprint(v))
                    .sum::<usize>()
        }
    }
}

struct BodySeed<'a> {
    limits: &'a EventLimits,
    charge: &'a mut dyn FnMut(usize) -> bool,
    failure: &'a mut Option<BodyError>,
}

/// Aborts deserialization; the reason is in `failure`.
fn stop<E: de::Error>() -> E {
    E::custom("stopped")
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_> {
    type Value = Vec<NewEvent>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_> {
    type Value = Vec<NewEvent>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an event object or an array of them")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let BodySeed {
            limits,
            charge,
            failure,
        } = self;
        let mut events = Vec::new();
        loop {
            let index = events.len();
            let seed = EventSeed {
                index: Some(index),
                limits,
                failure: &mut *failure,
            };
            let Some(event) = seq.next_element_seed(seed)? else {
                break;
            };
            if index >= limits.max_events {
                *failure = Some(BodyError::TooLarge(ItemError {
                    index: None,
                    field: None,
                    message: format!(
                        "more than {} events in one request (the source's max_events_per_request); send smaller batches",
                        limits.max_events
                    ),
                }));
                return Err(stop());
            }
            if !charge(event_footprint(&event)) {
                *failure = Some(BodyError::OverBudget);
                return Err(stop());
            }
            events.push(event);
        }
        if events.is_empty() {
            *failure = Some(BodyError::Invalid(ItemError {
                index: None,
                field: None,
                message: "expected at least one event, got an empty array".to_owned(),
            }));
            return Err(stop());
        }
        Ok(events)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let BodySeed {
            limits,
            charge,
            failure,
        } = self;
        let event = EventSeed {
            index: None,
            limits,
            failure: &mut *failure,
        }
        .visit_map(map)?;
        if !charge(event_footprint(&event)) {
            *failure = Some(BodyError::OverBudget);
            return Err(stop());
        }
        Ok(vec![event])
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(not_an_object(self.failure, None, "a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(not_an_object(self.failure, None, "a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(not_an_object(self.failure, None, "a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(not_an_object(self.failure, None, "a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(not_an_object(self.failure, None, "a string"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(not_an_object(self.failure, None, "null"))
    }
}

fn not_an_object<E: de::Error>(failure: &mut Option<BodyError>, index: Option<usize>, got: &str) -> E {
    *failure = Some(BodyError::Invalid(ItemError {
        index,
        field: None,
        message: format!("expected a JSON object with fields {FIELDS}, got {got}"),
    }));
    stop()
}

struct EventSeed<'a> {
    index: Option<usize>,
    limits: &'a EventLimits,
    failure: &'a mut Option<BodyError>,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = NewEvent;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EventSeed<'_> {
    type Value = NewEvent;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields::default();
        let err = |field: &str, message: String| ItemError {
            index: self.index,
            field: Some(field.to_owned()),
            message,
        };
        while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match k.as_ref() {
                "kind" => fields.kind = Some(map.next_value()?),
                "id" => fields.id = Some(map.next_value()?),
                "key" => fields.key = Some(map.next_value()?),
                "occurred_at" => fields.occurred_at = Some(map.next_value()?),
                "data" => {
                    // Measured as sent, and refused before it is decoded when it is too long.
                    let raw: &'de RawValue = map.next_value()?;
                    let len = raw.get().len();
                    if len > self.limits.max_data_bytes {
                        *self.failure = Some(BodyError::TooLarge(err(
                            "data",
                            format!(
                                "{len} bytes of JSON, more than the source's max_event_bytes of {}",
                                self.limits.max_data_bytes
                            ),
                        )));
                        return Err(stop());
                    }
                    fields.data = Some(serde_json::from_str(raw.get()).map_err(de::Error::custom)?);
                }
                other => {
                    *self.failure = Some(BodyError::Invalid(err(
                        other,
                        format!("unknown field, expected one of {FIELDS}"),
                    )));
                    return Err(stop());
                }
            }
        }
        finish(fields, self.index, Some(self.limits)).map_err(|e| {
            *self.failure = Some(e);
            stop()
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(not_an_object(self.failure, self.index, "an array"))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(not_an_object(self.failure, self.index, "a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(not_an_object(self.failure, self.index, "a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(not_an_object(self.failure, self.index, "a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(not_an_object(self.failure, self.index, "a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(not_an_object(self.failure, self.index, "a string"))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(not_an_object(self.failure, self.index, "null"))
    }
}

fn opt_string(v: Option<Value>) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("expected a string, got {}", type_name(&other))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_object_and_array() {
        let one = parse_body(br#"{"kind":"a.b","data":{"x":1}}"#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(
            one[0].id,
            EventId::of_json_event("a.b", None, &serde_json::json!({"x": 1}))
        );
        let many = parse_body(
            br#"[{"kind":"a","data":1,"key":"k"},{"kind":"b","data":null,"occurred_at":"2026-01-01T00:00:00Z"}]"#,
        )
        .unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(many[0].key.as_deref(), Some("k"));
        assert!(many[1].occurred_at.is_some());
    }

    #[test]
    fn errors_name_index_and_field() {
        let e = parse_body(br#"[{"kind":"a","data":1},{"kind":"a..b","data":1}]"#).unwrap_err();
        assert_eq!((e.index, e.field.as_deref()), (Some(1), Some("kind")));
        assert!(e.to_string().starts_with("events[1].kind: "), "{e}");
        let e = parse_body(br#"{"kind":"a"}"#).unwrap_err();
        assert_eq!(e.to_string(), "event.data: missing required field");
        let e = parse_body(br#"[{"kind":"a","data":1,"id":"XYZ"}]"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("id"));
        let e = parse_body(br#"[{"kind":"a","data":1,"ocurred_at":"x"}]"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("ocurred_at"));
        let e = parse_body(br#"[{"kind":"a","data":1,"occurred_at":"yesterday"}]"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("occurred_at"));
        assert!(parse_body(b"not json").unwrap_err().message.contains("not valid JSON"));
        assert!(parse_body(b"[]").is_err());
        let e = parse_body(br#"[{"kind":"a","data":1},2]"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "events[1]: expected a JSON object with fields kind, data, id, key, occurred_at, got a number"
        );
        let e = parse_body(br#"[{"kind":"a","data":1}] x"#).unwrap_err();
        assert!(e.message.contains("not valid JSON"), "{e}");
    }

    const LIMITS: EventLimits = EventLimits {
        max_events: 3,
        max_data_bytes: 20,
        max_key_bytes: 4,
    };

    fn within(body: &str) -> Result<Vec<NewEvent>, BodyError> {
        parse_body_within(body.as_bytes(), &LIMITS, &mut |_| true)
    }

    #[test]
    fn limits_answer_too_large_with_the_limit_named() {
        assert_eq!(
            within(r#"[{"kind":"a","data":1},{"kind":"a","data":2},{"kind":"a","data":3}]"#)
                .unwrap()
                .len(),
            3
        );
        let Err(BodyError::TooLarge(e)) =
            within(r#"[{"kind":"a","data":1},{"kind":"a","data":2},{"kind":"a","data":3},{"kind":"a","data":4}]"#)
        else {
            panic!("4 events over a limit of 3")
        };
        assert!(
            e.message.contains("more than 3 events") && e.message.contains("max_events_per_request"),
            "{e}"
        );
        let Err(BodyError::TooLarge(e)) = within(r#"{"kind":"a","data":"123456789012345678901"}"#) else {
            panic!("data over 20 bytes")
        };
        assert_eq!(
            e.to_string(),
            "event.data: 23 bytes of JSON, more than the source's max_event_bytes of 20"
        );
        let Err(BodyError::TooLarge(e)) = within(r#"[{"kind":"a","data":1,"key":"12345"}]"#) else {
            panic!("key over 4 bytes")
        };
        assert_eq!((e.index, e.field.as_deref()), (Some(0), Some("key")));
        let long = "k".repeat(MAX_KIND_BYTES + 1);
        let Err(BodyError::TooLarge(e)) = within(&format!(r#"{{"kind":"{long}","data":1}}"#)) else {
            panic!("kind over 256 bytes")
        };
        assert!(e.message.contains("more than the most of 256"), "{e}");
        let Err(BodyError::Invalid(e)) = within(r#"{"kind":"a","data":1,"ocurred_at":"x"}"#) else {
            panic!("unknown field")
        };
        assert_eq!(e.field.as_deref(), Some("ocurred_at"));
    }

    #[test]
    fn the_charge_can_stop_parsing_and_sees_every_event() {
        let mut seen = 0;
        let body = br#"[{"kind":"a","data":{"x":[1,2,3]}},{"kind":"a","data":"s"},{"kind":"a","data":null}]"#;
        let r = parse_body_within(body, &LIMITS, &mut |n| {
            assert!(n > 2 * std::mem::size_of::<NewEvent>());
            seen += 1;
            seen < 2
        });
        assert_eq!((r, seen), (Err(BodyError::OverBudget), 2));
    }

    #[test]
    fn streaming_and_tree_parsing_agree() {
        let body = br#"[{"kind":"a.b","data":{"z":1,"a":[true,null,"x"]},"key":"k","occurred_at":"2026-01-01T00:00:00Z"},{"id":"0000000000000000000000000000000000000000000000000000000000000001","kind":"c","data":1.5}]"#;
        let streamed = parse_body(body).unwrap();
        let Value::Array(items) = serde_json::from_slice::<Value>(body).unwrap() else {
            unreachable!()
        };
        let tree: Vec<NewEvent> = items
            .into_iter()
            .enumerate()
            .map(|(i, v)| parse_item(v, Some(i)).unwrap())
            .collect();
        assert_eq!(streamed, tree);
    }

    #[test]
    fn footprints_grow_with_structure() {
        let small = value_footprint(&serde_json::json!(1));
        let objects = value_footprint(&serde_json::json!([{"a": 0}, {"a": 0}]));
        assert!(objects > 1000 && objects > 10 * small, "{objects}");
    }
}
