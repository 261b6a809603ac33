//! Lightning Network gossip (BOLT #7): the library core of the `lightning` source.
//!
//! - [`wire`]: message types, byte layouts, CompactSize.
//! - [`gossip`]: the decoded `channel_announcement`, `node_announcement`, `channel_update` and Core
//!   Lightning's internal records 4101–4107, keeping the raw bytes; [`decode`](mod@decode) makes them
//!   (through LDK).
//! - [`verify`]: chain and signature checks, and batches verified on all cores; [`network`]: the
//!   configured chain.
//! - [`id`]: ln-history's canonical `raw_gossip` framing and `gossip_id`.
//! - [`known`]: the verified channels kept in meta entries, so that a restart need not read the log.
//! - [`envelope`]: the canonical and the historic mis-framed envelopes, re-framed.
//! - [`formats`]: `gossip_store`, GSP, CompactSize-stream and hex-lines layouts, format detection, CRC;
//!   [`reader`]: the incremental reader.
//! - [`events`]: gossip as tributary events (kinds, ids, keys) and problems as rejects and
//!   `ln.problem.*` events; [`pipeline`]: decode → verify → events in batches on all cores, with the
//!   bounded queue of updates waiting for their announcement.
//! - [`source`]: the `lightning` source task (`gossip_store` follower, ZeroMQ collectors).
//! - [`import`]: a gossip file into a source (`tributary import`, and `POST /v1/lightning/import` on a
//!   running node).
//! - [`generate`]: validly signed gossip for benchmarks.
//! - [`graph`]: the channel graph in time; [`snapshot`]: what its queries return (snapshots, channel and
//!   node states with validity intervals, diffs).
//! - [`keeper`]: the graphs the node keeps from the log (the source type's background service, with its
//!   snapshot); [`routes`]: `/v1/lightning/…`, the routes it contributes to the API.
//!
//! Built with the `lightning` cargo feature (on by default).

pub mod decode;
pub mod envelope;
pub mod events;
pub mod formats;
pub mod generate;
pub mod gossip;
pub mod graph;
pub mod id;
pub mod import;
mod import_route;
pub mod keeper;
pub mod known;
pub mod network;
pub mod pipeline;
pub mod reader;
pub mod routes;
pub mod snapshot;
pub mod source;
pub mod verify;
pub mod wire;

#[cfg(test)]
mod tests;

pub use decode::decode;
pub use formats::{Format, Reader, Record, detect_format};
pub use gossip::{Gossip, ShortChannelId};
pub use graph::Graph;
pub use id::gossip_id;
pub use pipeline::Pipeline;
pub use source::{LightningSource, LightningSourceConfig};
pub use verify::{Network, Verifier, VerifyError};
