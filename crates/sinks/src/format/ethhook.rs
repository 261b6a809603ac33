//! `payload = "ethhook"`: EthHook's flat `ProcessedEvent` JSON for `evm.*` events, so its consumers read
//! tributary's output unchanged:
//!
//! ```json
//! {"chain_id": 1, "block_number": 18000000, "block_hash": "0x…", "transaction_hash": "0x…",
//!  "log_index": 3, "contract_address": "0xa0b8…", "topics": ["0xddf2…"], "data": "0x…",
//!  "timestamp": 1709876864}
//! ```
//!
//! Numbers are decimal, hex strings lowercase (as the `evm` source stores them). A retraction
//! (`evm.log.removed`) carries the original's fields and `"removed": true`, the flag EthHook's providers
//! send. Events that are not EVM logs (no `block_hash` in their data) keep the standard body.

use serde_json::{Map, Value};
use tributary_core::Delivery;

/// The fields of the flat object, in order: EthHook's name and the `evm` event's data field it comes from.
const FIELDS: [(&str, &str); 9] = [
    ("chain_id", "chain_id"),
    ("block_number", "block_number"),
    ("block_hash", "block_hash"),
    ("transaction_hash", "transaction_hash"),
    ("log_index", "log_index"),
    ("contract_address", "address"),
    ("topics", "topics"),
    ("data", "data"),
    ("timestamp", "block_timestamp"),
];

/// The flat object of an `evm.*` event, or `None` for other events.
pub fn object(delivery: &Delivery) -> Option<Map<String, Value>> {
    let event = &delivery.event.event;
    if !event.kind.starts_with("evm.") {
        return None;
    }
    let data = event.data.as_object()?;
    let mut out = Map::new();
    for (name, from) in FIELDS {
        out.insert(name.to_owned(), data.get(from)?.clone());
    }
    if event.retracts.is_some() {
        out.insert("removed".to_owned(), Value::Bool(true));
    }
    Some(out)
}

/// The body of an `evm.*` event, or `None` for other events.
pub fn body(delivery: &Delivery) -> Option<Vec<u8>> {
    object(delivery).map(|o| serde_json::to_vec(&o).expect("a JSON object serializes"))
}

#[cfg(test)]
mod tests {
    use super::body;
    use serde_json::{Value, json};
    use std::sync::Arc;
    use tributary_core::{Delivery, EventId, NewEvent, StoredEvent, Timestamp};

    fn delivery(kind: &str, data: Value, retracts: Option<EventId>) -> Delivery {
        Delivery {
            subscription: "s".into(),
            message_id: "m".into(),
            event: Arc::new(StoredEvent {
                seq: 1,
                source: "base".into(),
                ingested_at: Timestamp::from_unix_secs(1_800_000_000),
                event: NewEvent {
                    id: EventId::sha256(b"x"),
                    kind: kind.into(),
                    key: None,
                    occurred_at: None,
                    position: None,
                    payload: Vec::new(),
                    data,
                    tenant: None,
                    retracts,
                },
            }),
            attempt: 1,
        }
    }

    fn log_data() -> Value {
        json!({
            "chain_id": 8453, "block_number": 18000000, "block_hash": "0xbb", "block_timestamp": 1709876864,
            "transaction_hash": "0xtt", "transaction_index": 2, "log_index": 3, "address": "0xaa",
            "topics": ["0xddf2"], "data": "0x989680", "event": "Transfer", "args": {"value": 10000000},
        })
    }

    #[test]
    fn a_log_becomes_ethhooks_flat_object() {
        let b: Value = serde_json::from_slice(&body(&delivery("evm.log", log_data(), None)).unwrap()).unwrap();
        assert_eq!(
            b,
            json!({
                "chain_id": 8453, "block_number": 18000000, "block_hash": "0xbb", "transaction_hash": "0xtt",
                "log_index": 3, "contract_address": "0xaa", "topics": ["0xddf2"], "data": "0x989680",
                "timestamp": 1709876864,
            })
        );
    }

    #[test]
    fn a_retraction_says_removed() {
        let d = delivery("evm.log.removed", log_data(), Some(EventId::sha256(b"y")));
        let b: Value = serde_json::from_slice(&body(&d).unwrap()).unwrap();
        assert_eq!(b["removed"], json!(true));
        assert_eq!(b["contract_address"], json!("0xaa"));
    }

    #[test]
    fn other_events_have_no_ethhook_body() {
        assert!(body(&delivery("orders.created", json!({"id": 1}), None)).is_none());
        assert!(body(&delivery("evm.log", json!({"chain_id": 1}), None)).is_none());
    }
}
