//! Lightning Network gossip (BOLT #7): the library core of the `lightning` source.
//!
//! - [`wire`]: message types, byte layouts, CompactSize.
//! - [`gossip`]: the decoded `channel_announcement`, `node_announcement`, `channel_update` and Core
//!   Lightning's internal records 4101–4107, keeping the raw bytes; [`decode`](mod@decode) makes them
//!   (through LDK).
//! - [`verify`]: chain and signature checks, and batches verified on all cores; [`network`]: the
//!   configured chain.
//! - [`id`]: ln-history's canonical `raw_gossip` framing and `gossip_id`.
//! - [`envelope`]: the canonical and the historic mis-framed envelopes, re-framed.
//! - [`formats`]: `gossip_store`, GSP, CompactSize-stream and hex-lines layouts, format detection, CRC;
//!   [`reader`]: the incremental reader.
//! - [`graph`]: the channel graph in time; [`snapshot`]: what its queries return (snapshots, channel and
//!   node states with validity intervals, diffs).
//!
//! Built with the `lightning` cargo feature (on by default).

pub mod decode;
pub mod envelope;
pub mod formats;
pub mod gossip;
pub mod graph;
pub mod id;
pub mod network;
pub mod reader;
pub mod snapshot;
pub mod verify;
pub mod wire;

#[cfg(test)]
mod tests;

pub use decode::decode;
pub use formats::{Format, Reader, Record, detect_format};
pub use gossip::{Gossip, ShortChannelId};
pub use graph::Graph;
pub use id::gossip_id;
pub use verify::{Network, Verifier, VerifyError};
