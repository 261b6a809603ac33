//! The `file` source: newline-delimited JSON events (one [`json_event`](crate::json_event) per line),
//! followed as the file grows.
//!
//! Checkpoint: partition = the configured path, position = `"{byte_offset}:{lines_consumed}"`, committed in
//! the same atomic write as the events of the lines before that offset, so a restart never re-ingests.
//! A line without its final newline is left for later. Bad lines are kept as rejects with their line
//! number, logged, and never stop the source. A file shorter than the checkpoint was truncated or
//! replaced: it is read again from the start. A file rotated by rename (another inode at the path) is read
//! to its end, then the new file is followed from its start.

mod config;
mod source;
#[cfg(test)]
mod tests;

pub use config::FileSourceConfig;
pub use source::FileSource;
