//! The [`Source`] trait: a task that produces events and appends them with its checkpoint.

use crate::Store;
use async_trait::async_trait;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a running source gets from the engine.
#[derive(Clone)]
pub struct SourceContext {
    /// The source's configured name.
    pub name: String,
    /// Where to append (atomically with the checkpoint).
    pub store: Arc<dyn Store>,
    /// Cancelled when the source must stop.
    pub shutdown: CancellationToken,
}

impl SourceContext {
    /// Whether shutdown was requested.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}

/// Why a source stopped.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The store refused the write.
    #[error("source {source_name}: {error}")]
    Store {
        /// The source.
        source_name: String,
        /// The store's error.
        #[source]
        error: crate::StoreError,
    },
    /// An I/O problem the source cannot recover from.
    #[error("source {source_name}: {message}")]
    Io {
        /// The source.
        source_name: String,
        /// What happened and what to do.
        message: String,
    },
}

/// A running source.
#[async_trait]
pub trait Source: Send + 'static {
    /// Runs until shutdown is requested or an unrecoverable error occurs.
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError>;
}
