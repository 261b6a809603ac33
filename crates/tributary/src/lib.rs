//! The `tributary` command: run a node, the demo, benchmarks and offline checks.
//!
//! - [`node`]: start a node with its HTTP API and stop it in order (used by `run`, `demo` and `bench`).
//! - [`bench`]: `tributary bench` — ingest, delivery, latency, memory and Lightning import figures next to
//!   references.
//! - [`client`]: the client commands (`sources`, `events`, `subscriptions`, `dlq`, `replay`, `tenants`)
//!   that operate a running node through its HTTP API.
//! - [`demo`]: `tributary demo` — a node, a verifying receiver and the bundled Lightning gossip, end to end.
//! - [`import`]: `tributary import` — a Lightning gossip file into the store, verified on all cores.
//! - [`gossip`]: the bundled gossip sample and ln-history's canonical `gossip_id`.

pub mod bench;
pub mod client;
#[cfg(feature = "lightning")]
pub mod demo;
#[cfg(feature = "lightning")]
pub mod gossip;
#[cfg(feature = "lightning")]
pub mod import;
pub mod node;
