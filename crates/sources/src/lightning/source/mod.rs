//! The `lightning` source task: live gossip from Core Lightning.
//!
//! - [`config`]: `[[sources]] type = "lightning"`.
//! - `task`: the running source; one [`Pipeline`](super::pipeline::Pipeline) (and so one set of known
//!   channels and one queue of waiting updates) shared by all its inputs, restored from the store at start.
//! - `waiting`: the queue of updates waiting for their announcement, kept in meta entries written with
//!   each batch, read back at start.
//! - `follow`: follows a `gossip_store` file. Checkpoint: partition = the path, position =
//!   `"{byte_offset}:{inode}"`, committed with the events of the records before that offset. The store
//!   being rewritten (a `gossip_store_ended` record, another inode at the path, or a file shorter than
//!   the checkpoint) restarts reading from the start of the new file; what was seen already only adds
//!   observations.
//! - `zmq` (cargo feature `lightning-zmq`): subscribes to `gossip-publisher-zmq` plugins, one task per
//!   collector, each reconnecting with exponential backoff; observer = the collector's `sender_node_id`
//!   (or its endpoint when a message does not say).
//! - [`zmtp`] (cargo feature `lightning-zmq`): the ZeroMQ SUB client it uses (ZMTP 3.0, NULL mechanism),
//!   which checks every frame's length before reading it.

mod config;
mod follow;
mod task;
mod waiting;
#[cfg(feature = "lightning-zmq")]
mod zmq;
#[cfg(feature = "lightning-zmq")]
pub mod zmtp;

pub use config::LightningSourceConfig;
pub use task::LightningSource;
#[cfg(feature = "lightning-zmq")]
pub use zmq::parse_plugin_event;
