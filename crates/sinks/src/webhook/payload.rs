//! The body formats of a webhook delivery: `standard` (the default, see `sink::render_body`) and
//! `platform_event`, ln-history's `PlatformEvent.to_dict()` so that its consumers read tributary's output
//! unchanged:
//!
//! ```json
//! {"metadata": {"type": 258, "id": "<gossip_id hex>", "timestamp": 1700000000},
//!  "raw_gossip_hex": "<CompactSize(len(body)) ‖ type ‖ body, hex>"}
//! ```
//!
//! `type` is the message type, `id` the event id (for gossip, ln-history's `gossip_id`: the sha256 of the
//! bytes of `raw_gossip_hex`), `timestamp` the event's `occurred_at` (else its `ingested_at`) in Unix
//! seconds. Events whose payload is not a type-prefixed message (not `ln.*`) keep the standard body.
//!
//! `ethhook` is EthHook's flat JSON for EVM logs, shared by every sink: [`crate::format::ethhook`].

use serde::{Deserialize, Serialize};
use serde_json::json;
use tributary_core::Delivery;

/// `payload = "standard" | "platform_event" | "ethhook"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayloadFormat {
    /// `{"type", "timestamp", "data": {...}}`.
    #[default]
    Standard,
    /// ln-history's `PlatformEvent`, for `ln.*` events.
    PlatformEvent,
    /// EthHook's flat JSON, for `evm.*` events ([`crate::format::ethhook`]).
    Ethhook,
}

impl PayloadFormat {
    /// Whether this is the default (left out when serializing a config).
    pub fn is_standard(&self) -> bool {
        *self == Self::Standard
    }
}

/// The `PlatformEvent` body of an `ln.*` event, or `None` for other events.
pub(crate) fn platform_event(delivery: &Delivery) -> Option<Vec<u8>> {
    let stored = &delivery.event;
    let e = &stored.event;
    if !e.kind.starts_with("ln.") || e.payload.len() < 2 {
        return None;
    }
    let msg_type = u16::from_be_bytes([e.payload[0], e.payload[1]]);
    let mut raw_gossip = Vec::with_capacity(e.payload.len() + 9);
    tributary_core::id::write_compact_size((e.payload.len() - 2) as u64, &mut raw_gossip);
    raw_gossip.extend_from_slice(&e.payload);
    let timestamp = e.occurred_at.unwrap_or(stored.ingested_at).unix_secs();
    let body = json!({
        "metadata": {"type": msg_type, "id": e.id.to_hex(), "timestamp": timestamp},
        "raw_gossip_hex": hex::encode(raw_gossip),
    });
    Some(serde_json::to_vec(&body).expect("a JSON value serializes"))
}

#[cfg(test)]
mod tests {
    use super::platform_event;
    use serde_json::{Value, json};
    use std::sync::Arc;
    use tributary_core::{Delivery, EventId, NewEvent, StoredEvent, Timestamp};

    fn delivery(kind: &str, payload: Vec<u8>) -> Delivery {
        let mut raw_gossip = vec![(payload.len() - 2) as u8];
        raw_gossip.extend_from_slice(&payload);
        Delivery {
            subscription: "s".into(),
            message_id: "m".into(),
            event: Arc::new(StoredEvent {
                seq: 1,
                source: "ln".into(),
                ingested_at: Timestamp::from_unix_secs(1_800_000_000),
                event: NewEvent {
                    id: EventId::sha256(&raw_gossip),
                    kind: kind.into(),
                    key: None,
                    occurred_at: Some(Timestamp::from_unix_secs(1_700_000_000)),
                    position: None,
                    payload,
                    data: json!({}),
                    tenant: None,
                    retracts: None,
                },
            }),
            attempt: 1,
        }
    }

    #[test]
    fn platform_event_has_ln_history_keys_and_its_id_hashes_raw_gossip() {
        let d = delivery("ln.channel_update", vec![0x01, 0x02, 0xaa, 0xbb]);
        let v: Value = serde_json::from_slice(&platform_event(&d).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({
                "metadata": {"type": 258, "id": d.event.event.id.to_hex(), "timestamp": 1_700_000_000},
                "raw_gossip_hex": "020102aabb",
            })
        );
        assert_eq!(EventId::sha256(&hex::decode("020102aabb").unwrap()), d.event.event.id);
        assert!(platform_event(&delivery("orders.created", vec![1, 2, 3])).is_none());
    }
}
