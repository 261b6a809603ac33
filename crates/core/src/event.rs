//! Events as sources produce them and as the log stores them.

use crate::{EventId, Timestamp};
use serde::{Deserialize, Serialize};

/// An event a source hands to ingest. Its `id` is already derived by the source's documented rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Content address.
    pub id: EventId,
    /// Dot-separated kind, e.g. `ln.channel_update`.
    pub kind: String,
    /// Orders events that must stay in order (channel id, contract address, aggregate id).
    pub key: Option<String>,
    /// When the event happened, by the source's own clock, if it says.
    pub occurred_at: Option<Timestamp>,
    /// The source's coordinate for this event (block number, byte offset, line), free-form.
    pub position: Option<String>,
    /// The raw bytes as received (may be empty when `data` is the original).
    #[serde(with = "hex_bytes")]
    pub payload: Vec<u8>,
    /// Decoded content.
    pub data: serde_json::Value,
    /// Owning tenant, if the source is tenant-scoped.
    pub tenant: Option<String>,
    /// The id of an earlier event this one undoes (chain reorganisations).
    pub retracts: Option<EventId>,
}

/// An event in the durable log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Position in the log; strictly increasing, starting at 1.
    pub seq: u64,
    /// The name of the source that first delivered it.
    pub source: String,
    /// When the store made it durable.
    pub ingested_at: Timestamp,
    /// The event itself.
    #[serde(flatten)]
    pub event: NewEvent,
}

/// Who saw an event and when. Seeing a known event again adds (or refreshes) an observation, never an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// The event seen.
    pub event_id: EventId,
    /// The collector, relay URL, RPC provider or source name that saw it.
    pub observer: String,
    /// First time this observer saw it.
    pub first_seen: Timestamp,
    /// Last time this observer saw it.
    pub last_seen: Timestamp,
    /// How many times this observer delivered it.
    pub count: u64,
}

/// Input a source could not turn into an event, kept for inspection with its reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// Where in the source (for example `line 42`).
    pub position: String,
    /// What was wrong.
    pub reason: String,
    /// The start of the offending input (at most 1 KiB).
    pub excerpt: String,
    /// When it was rejected.
    pub at: Timestamp,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}
