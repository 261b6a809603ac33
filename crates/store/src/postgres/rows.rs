//! How records become rows and back: an event's fields (all but its payload) are one JSON object in the
//! `event` column; pending deliveries, attempts, dead letters and rejects are their serde JSON.

use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use tributary_core::{EventId, NewEvent, StoreError, StoredEvent, Timestamp};

/// The `event` column.
#[derive(Serialize, Deserialize)]
struct EventFields<T> {
    id: EventId,
    kind: T,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    key: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    occurred_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    position: Option<T>,
    data: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    tenant: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    retracts: Option<EventId>,
}

/// The `event` column's text for an event.
pub(super) fn event_json(ev: &NewEvent) -> String {
    let fields = EventFields {
        id: ev.id,
        kind: ev.kind.as_str(),
        key: ev.key.as_deref(),
        occurred_at: ev.occurred_at,
        position: ev.position.as_deref(),
        data: ev.data.clone(),
        tenant: ev.tenant.as_deref(),
        retracts: ev.retracts,
    };
    // A struct of strings and a `Value` always serializes.
    serde_json::to_string(&fields).unwrap_or_default()
}

/// The columns an event is read with.
pub(super) const EVENT_COLUMNS: &str = "seq, source, ingested_at, event::text, payload";

/// An event from a row of [`EVENT_COLUMNS`].
pub(super) fn event_from(row: &Row) -> Result<StoredEvent, StoreError> {
    let seq: i64 = row.get(0);
    let fields: EventFields<String> = decode("events", seq, row.get(3))?;
    Ok(StoredEvent {
        seq: seq as u64,
        source: row.get(1),
        ingested_at: Timestamp(row.get(2)),
        event: NewEvent {
            id: fields.id,
            kind: fields.kind,
            key: fields.key,
            occurred_at: fields.occurred_at,
            position: fields.position,
            payload: row.get(4),
            data: fields.data,
            tenant: fields.tenant,
            retracts: fields.retracts,
        },
    })
}

/// A record's JSON text.
pub(super) fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A record from its JSON text; a row that does not decode is reported with where it is.
pub(super) fn decode<T: for<'de> Deserialize<'de>>(table: &'static str, at: i64, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: table,
        detail: format!("row {at}: {e}"),
    })
}

/// An id from a `bytea` column.
pub(super) fn id_from(table: &'static str, bytes: &[u8]) -> Result<EventId, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(EventId)
        .map_err(|_| StoreError::Corrupt {
            what: table,
            detail: format!("an id of {} bytes, not 32", bytes.len()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_fields_round_trip_with_nul_and_big_numbers() {
        let ev = NewEvent {
            id: EventId::sha256(b"x"),
            kind: "k\0ind".into(),
            key: Some("key\u{e9}".into()),
            occurred_at: Some(Timestamp(5)),
            position: None,
            payload: vec![1, 2],
            data: serde_json::from_str(r#"{"big": 123456789012345678901234567890, "s": "a\u0000b"}"#).unwrap(),
            tenant: None,
            retracts: Some(EventId::sha256(b"y")),
        };
        let text = event_json(&ev);
        assert!(!text.contains('\0'), "{text}");
        let back: EventFields<String> = decode("events", 1, &text).unwrap();
        assert_eq!(back.kind, ev.kind);
        assert_eq!(back.data, ev.data);
        assert_eq!(back.retracts, ev.retracts);
        assert_eq!(back.key, ev.key);
    }
}
