//! The event shape of a log, its id, and retractions.
//!
//! - kind `evm.log`; id = sha256(chain_id u64 BE ‖ block hash (32 bytes) ‖ log index u64 BE);
//!   key = the contract address (lowercase hex); occurred_at = the block timestamp; position =
//!   `BLOCK:LOG_INDEX`; data = `{chain_id, block_number, block_hash, block_timestamp, transaction_hash,
//!   transaction_index, log_index, address, topics, data}` (lowercase 0x hex), plus `event` and `args`
//!   when an ABI entry decodes the log.
//! - kind `evm.log.removed`: a log of a block dropped by a reorganisation. Its id is
//!   sha256(`evm.log.removed` ‖ the original id), `retracts` = the original id, and its data, key,
//!   position and occurred_at are the original's.

use super::abi::Decoded;
use super::wire::Log;
use serde_json::{Value, json};
use tributary_core::{EventId, NewEvent, Timestamp};

/// The kind of a log.
pub const KIND: &str = "evm.log";
/// The kind of a retraction.
pub const KIND_REMOVED: &str = "evm.log.removed";

/// The id of the log at `log_index` of the block `block_hash` on chain `chain_id`.
pub fn log_id(chain_id: u64, block_hash: &[u8; 32], log_index: u64) -> EventId {
    let mut buf = [0u8; 48];
    buf[..8].copy_from_slice(&chain_id.to_be_bytes());
    buf[8..40].copy_from_slice(block_hash);
    buf[40..].copy_from_slice(&log_index.to_be_bytes());
    EventId::sha256(&buf)
}

/// The id of the retraction of `original`.
pub fn removed_id(original: &EventId) -> EventId {
    let mut buf = Vec::with_capacity(15 + 32);
    buf.extend_from_slice(KIND_REMOVED.as_bytes());
    buf.extend_from_slice(&original.0);
    EventId::sha256(&buf)
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// The event of a log whose block has timestamp `timestamp` (Unix seconds).
pub fn log_event(chain_id: u64, log: &Log, timestamp: u64, decoded: Option<Decoded>) -> NewEvent {
    let address = hex0x(&log.address);
    let mut data = json!({
        "chain_id": chain_id,
        "block_number": log.block_number,
        "block_hash": hex0x(&log.block_hash),
        "block_timestamp": timestamp,
        "transaction_hash": hex0x(&log.transaction_hash),
        "transaction_index": log.transaction_index,
        "log_index": log.log_index,
        "address": address,
        "topics": log.topics.iter().map(|t| Value::String(hex0x(t))).collect::<Vec<_>>(),
        "data": hex0x(&log.data),
    });
    if let Some(d) = decoded {
        data["event"] = Value::String(d.event);
        data["args"] = Value::Object(d.args);
    }
    NewEvent {
        id: log_id(chain_id, &log.block_hash, log.log_index),
        kind: KIND.to_owned(),
        key: Some(address),
        occurred_at: Some(Timestamp::from_unix_secs(i64::try_from(timestamp).unwrap_or(i64::MAX)).clamped()),
        position: Some(format!("{}:{}", log.block_number, log.log_index)),
        payload: Vec::new(),
        data,
        tenant: None,
        retracts: None,
    }
}

/// The retraction of a stored log event.
pub fn retraction(original: &NewEvent) -> NewEvent {
    NewEvent {
        id: removed_id(&original.id),
        kind: KIND_REMOVED.to_owned(),
        key: original.key.clone(),
        occurred_at: original.occurred_at,
        position: original.position.clone(),
        payload: Vec::new(),
        data: original.data.clone(),
        tenant: original.tenant.clone(),
        retracts: Some(original.id),
    }
}
