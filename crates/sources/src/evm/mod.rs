//! The `evm` source: contract logs of one EVM chain from one or more JSON-RPC providers.
//!
//! Each provider is followed on its own (its checkpoint partition is its masked URL), so the same log seen
//! by two providers is one event with two observations. Blocks deeper than `reorg_depth` below the head
//! are read by `eth_getLogs` over block ranges (halved on a provider's "too many results" or size errors,
//! grown back after successes); the blocks of the reorganisation window are read one by one, header
//! first (`parentHash` checked against the stored hash), then `eth_getLogs {blockHash}`, so every log
//! belongs to exactly the block whose hash is recorded. A parent hash that does not match walks back to
//! the common ancestor and retracts the logs of the dropped blocks (`evm.log.removed`).
//!
//! Checkpoint (one per provider, committed in the same append as the events it covers): the last
//! processed block and the recent blocks of the window, see [`checkpoint`].
//!
//! Event id: sha256(chain_id as 8 bytes big-endian ‖ block hash, 32 bytes ‖ log index as 8 bytes
//! big-endian), see [`event`].
//!
//! - [`config`]: `[[sources]] type = "evm"` and its validation; provider URLs masked in every view.
//! - [`rpc`]: a small JSON-RPC client over the workspace's reqwest (single and batch calls, capped bodies).
//! - [`ws`]: the same over one WebSocket connection, with the `newHeads` subscription.
//! - [`wire`]: strict parsing of provider answers (logs, headers, quantities).
//! - [`event`]: the event shape, ids and retractions.
//! - [`abi`]: decoding logs with the configured human-readable ABI entries.
//! - [`checkpoint`]: the stored position.
//! - [`follow`]: following one provider (ranges, window, reorganisations).
//! - [`shared`]: what the followers of one source share.
//! - [`source`]: the running source (one follower per provider).

pub mod abi;
pub mod checkpoint;
pub mod config;
pub mod event;
pub mod follow;
pub mod rpc;
pub mod shared;
pub mod source;
#[cfg(test)]
mod tests;
pub mod wire;
pub mod ws;

pub use config::EvmSourceConfig;
pub use source::EvmSource;
