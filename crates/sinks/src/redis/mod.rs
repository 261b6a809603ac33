//! The `redis` sink: each event becomes one entry of a Redis (or Valkey) stream, written at most once per
//! subscription even across crashes and retries.
//!
//! - [`config`]: `[subscriptions.sink] type = "redis"`: `url`, `stream` (a
//!   [`Template`](crate::format::Template)), `maxlen`, `payload`, `dedup_ttl`, `timeout`.
//! - `sink`: one Lua script per delivery, atomic on the server: if the delivery's marker key
//!   `tributary:delivered:{stream}:{delivery id}` exists the entry was written already and its id is returned;
//!   otherwise `XADD` (with `MAXLEN ~` when set) and the marker is set to the new entry id with a TTL of
//!   `dedup_ttl`. A retry after a lost answer or a crash finds the marker and writes nothing.
//!
//! Entry fields: `id` (event id hex), `kind`, `source`, `key` (when the event has one), `seq` and `payload`
//! (the event in the `payload` format); with `payload = "fields"`, the top-level fields of the event's
//! data instead, and with `payload = "ethhook_fields"` those of EthHook's flat JSON (its `XADD
//! events:{chain_id} * chain_id … contract_address …` layout): strings as they are, other values as JSON.

pub mod config;
mod sink;

pub use config::{RedisConfig, RedisPayload};
pub use sink::RedisSink;
