//! The JSON event shape accepted by the `http` and `file` sources.
//!
//! ```json
//! {"kind": "orders.created", "data": {"order": 42}, "key": "order-42",
//!  "id": "<64 lowercase hex>", "occurred_at": "2026-11-22T05:32:28Z"}
//! ```
//! `kind` (dot-separated) and `data` (any JSON) are required. Without `id`, the id is
//! [`EventId::of_json_event`]: sha256 of the canonical JSON of `{data, key, kind}`. Unknown fields are
//! rejected so that a typo (`ocurred_at`) is not silently dropped.

use serde_json::{Map, Value};
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

const FIELDS: &str = "kind, data, id, key, occurred_at";

/// Whether `kind` is dot-separated segments of letters, digits, `_` and `-`.
pub fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 256
        && kind
            .split('.')
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
}

/// Validates one JSON value as an event.
pub fn parse_item(value: Value, index: Option<usize>) -> Result<NewEvent, ItemError> {
    let err = |field: Option<&str>, message: String| ItemError {
        index,
        field: field.map(str::to_owned),
        message,
    };
    let Value::Object(mut obj) = value else {
        return Err(err(
            None,
            format!("expected a JSON object with fields {FIELDS}, got {}", type_name(&value)),
        ));
    };
    if let Some(unknown) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "kind" | "data" | "id" | "key" | "occurred_at"))
    {
        return Err(err(Some(unknown), format!("unknown field, expected one of {FIELDS}")));
    }
    let kind = match obj.remove("kind") {
        Some(Value::String(k)) if valid_kind(&k) => k,
        Some(Value::String(k)) => {
            return Err(err(
                Some("kind"),
                format!(
                    "expected dot-separated segments of letters, digits, '_' or '-' such as \"orders.created\", got {k:?}"
                ),
            ));
        }
        Some(other) => {
            return Err(err(
                Some("kind"),
                format!("expected a string, got {}", type_name(&other)),
            ));
        }
        None => return Err(err(Some("kind"), "missing required field".to_owned())),
    };
    let data = obj
        .remove("data")
        .ok_or_else(|| err(Some("data"), "missing required field".to_owned()))?;
    let key = take_opt_string(&mut obj, "key").map_err(|m| err(Some("key"), m))?;
    let occurred_at = match take_opt_string(&mut obj, "occurred_at").map_err(|m| err(Some("occurred_at"), m))? {
        Some(s) => Some(Timestamp::parse_rfc3339(&s).map_err(|m| err(Some("occurred_at"), m))?),
        None => None,
    };
    let id = match take_opt_string(&mut obj, "id").map_err(|m| err(Some("id"), m))? {
        Some(s) => s.parse::<EventId>().map_err(|e| err(Some("id"), e.to_string()))?,
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
    let value: Value = serde_json::from_slice(body).map_err(|e| ItemError {
        index: None,
        field: None,
        message: format!("body is not valid JSON: {e}"),
    })?;
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ItemError {
                    index: None,
                    field: None,
                    message: "expected at least one event, got an empty array".to_owned(),
                });
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| parse_item(v, Some(i)))
                .collect()
        }
        other => Ok(vec![parse_item(other, None)?]),
    }
}

fn take_opt_string(obj: &mut Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match obj.remove(field) {
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
    }
}
