//! Configuration of the `lightning` source.

use crate::lightning::Network;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[[sources]] type = "lightning"`: BOLT #7 gossip from Core Lightning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LightningSourceConfig {
    /// The chain whose gossip is accepted: `mainnet` (default), `testnet`, `testnet4`, `signet`, `regtest`.
    #[serde(default)]
    pub network: Network,
    /// ZeroMQ endpoints of `gossip-publisher-zmq` plugins to subscribe to (`tcp://host:port`), one per
    /// collector node. Needs the `lightning-zmq` cargo feature.
    #[serde(default)]
    pub collectors: Vec<String>,
    /// A Core Lightning `gossip_store` file to follow (checkpointed by byte offset).
    #[serde(default)]
    pub gossip_store: Option<PathBuf>,
    /// Messages per atomic append. Default 1,000.
    #[serde(default = "default_batch")]
    pub batch_messages: usize,
    /// How often to look for new records at the end of `gossip_store`, in milliseconds. Default 200.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// At most this many channel updates wait for their channel's announcement (kept across a graceful
    /// restart). Default 100,000, at most 1,000,000.
    #[serde(default = "default_waiting")]
    pub max_waiting_updates: usize,
}

/// Upper bound of `batch_messages`.
pub const MAX_BATCH: usize = 100_000;

fn default_batch() -> usize {
    1000
}
fn default_poll_ms() -> u64 {
    200
}
fn default_waiting() -> usize {
    crate::lightning::pipeline::DEFAULT_WAITING
}

impl LightningSourceConfig {
    /// How long to wait at the end of `gossip_store`.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(1))
    }

    /// Problems with this config, as (field, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        for (i, c) in self.collectors.iter().enumerate() {
            if !(c.starts_with("tcp://") || c.starts_with("ipc://")) {
                errors.push((
                    format!("collectors[{i}]"),
                    format!("expected a ZeroMQ endpoint such as tcp://127.0.0.1:5675, got {c:?}"),
                ));
            }
        }
        if !self.collectors.is_empty() && !cfg!(feature = "lightning-zmq") {
            errors.push((
                "collectors".into(),
                "this tributary was built without ZeroMQ; rebuild with --features lightning-zmq".into(),
            ));
        }
        if self.gossip_store.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            errors.push(("gossip_store".into(), "expected a file path".into()));
        }
        if self.batch_messages == 0 || self.batch_messages > MAX_BATCH {
            errors.push((
                "batch_messages".into(),
                format!("expected 1 to {MAX_BATCH}, got {}", self.batch_messages),
            ));
        }
        let max_waiting = crate::lightning::pipeline::MAX_WAITING;
        if self.max_waiting_updates == 0 || self.max_waiting_updates > max_waiting {
            errors.push((
                "max_waiting_updates".into(),
                format!("expected 1 to {max_waiting}, got {}", self.max_waiting_updates),
            ));
        }
        errors
    }
}
