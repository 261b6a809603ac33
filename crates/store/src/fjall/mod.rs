//! The embedded backend: a [fjall](https://docs.rs/fjall) database in one directory.
//!
//! - `keys`: the keyspaces, their key layout and the small value encodings.
//! - `record`: the event record codec.
//! - `prepare`: encoding done by callers before a write reaches the writer.
//! - `writer`: the group-commit writer thread, the only code that writes.
//! - `group`: one commit group's staged writes, and how an append is staged.
//! - `read`: reads, straight from the keyspaces.
//! - `store`: [`FjallStore`], opening, shutdown and the [`Store`](tributary_core::Store) impl.
//! - [`fuzzing`] (cargo feature `fuzzing`, off by default): the decoders, for the fuzz targets.
//!
//! Invariants, on top of those of [`tributary_core::store`]:
//! - One writer thread owns every write. Callers send it a request and wait for its answer; it commits
//!   everything queued (up to 256 requests) as one atomic batch with one journal sync, then answers.
//!   Sequence numbers are assigned by the writer only: the next is the last plus one, and on open the
//!   last is read from the last key of `events`.
//! - A group holding an append is synced with `fdatasync` before anyone is answered: an acknowledged
//!   event survives `kill -9` and power loss. A group holding only delivery commits and meta values is
//!   flushed to the OS without a sync: it survives `kill -9`, and a power loss can only take back the
//!   newest delivery progress, which re-delivers (never loses) events. The journal is written in order,
//!   so the next synced group makes every earlier group durable as well.
//! - The sync happens inside the commit, before the memtables are updated, so readers never see an
//!   unsynced write.
//! - A failed commit or sync poisons the store: that group and every later write fail with
//!   [`StoreError::Poisoned`](tributary_core::StoreError::Poisoned); reads keep working.
//! - Within one delivery update, removals are applied before insertions.
//! - A caller that stops waiting (its future dropped) does not cancel its write once it is queued.

#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod group;
mod keys;
mod migrate;
mod prepare;
mod read;
mod record;
mod store;
#[cfg(test)]
mod tests;
mod writer;

pub use store::{FjallStore, OpenError};
