//! Background services of plug-ins: state a source type keeps for the whole node.
//!
//! A service is started once by the node for the configured sources of its type (the Lightning graph
//! keeper follows the log and keeps one graph per `lightning` source). It runs on the node's worker
//! tracker, so shutdown waits for it after the sources stopped, like a subscription worker; it should
//! write what it wants to keep (a snapshot) when `shutdown` is cancelled.

use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tributary_core::Store;

/// What a service gets from the node.
#[derive(Clone)]
pub struct ServiceContext {
    /// The store (read the log, keep small meta entries).
    pub store: Arc<dyn Store>,
    /// A directory where the service may keep files (its snapshots), or `None` when the node keeps
    /// nothing on disk (the in-memory store).
    pub data_dir: Option<PathBuf>,
    /// The store is shared by several nodes (PostgreSQL): every node runs the service, so it must not
    /// keep state entries derived from its own reading of the log (each node would write them
    /// differently).
    pub shared: bool,
    /// Cancelled when the service must stop (after the sources have stopped).
    pub shutdown: CancellationToken,
    /// Where to spawn the service's tasks; the node waits for them at shutdown.
    pub tracker: TaskTracker,
}
