//! What every sink shares: the payload formats and the name templates.
//!
//! - `payload`: `standard` (the webhook body, the default), `platform_event` (ln-history), `data` (the
//!   event's data as JSON), `raw` (the payload bytes) and `ethhook` (EthHook's flat JSON for EVM logs,
//!   see [`ethhook`]).
//! - [`template`]: `{kind}`, `{kind.N}`, `{source}`, `{key}`, `{data.PATH}` in topic, stream and subject
//!   names.

pub mod ethhook;
pub mod template;

use serde::{Deserialize, Serialize};
use tributary_core::{Delivery, Timestamp};

pub use template::{Template, TemplateError};

/// `payload = "standard" | "platform_event" | "data" | "raw" | "ethhook"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `{"type", "timestamp", "data": {id, source, key, occurred_at, ingested_at, seq, data, retracts?}}`.
    #[default]
    Standard,
    /// ln-history's `PlatformEvent` for `ln.*` events; other events get the standard body.
    PlatformEvent,
    /// The event's `data` as JSON.
    Data,
    /// The event's payload bytes as stored (for gossip, the type-prefixed message); an event without
    /// payload bytes gets its `data` as JSON.
    Raw,
    /// EthHook's flat JSON for `evm.*` events; other events get the standard body.
    Ethhook,
}

impl Format {
    /// The bytes of one delivery; `now` is the standard body's `timestamp`.
    pub fn render(self, delivery: &Delivery, now: Timestamp) -> Vec<u8> {
        let event = &delivery.event.event;
        match self {
            Format::Standard => crate::webhook::sink::render_body(delivery, now),
            Format::PlatformEvent => crate::webhook::payload::platform_event(delivery)
                .unwrap_or_else(|| crate::webhook::sink::render_body(delivery, now)),
            Format::Data => serde_json::to_vec(&event.data).expect("a JSON value serializes"),
            Format::Raw if event.payload.is_empty() => {
                serde_json::to_vec(&event.data).expect("a JSON value serializes")
            }
            Format::Raw => event.payload.clone(),
            Format::Ethhook => {
                ethhook::body(delivery).unwrap_or_else(|| crate::webhook::sink::render_body(delivery, now))
            }
        }
    }
}
