//! The running `evm` source: one follower per provider, all appending to the same source.

use super::EvmSourceConfig;
use super::abi::Decoder;
use super::follow::Follower;
use super::rpc::Rpc;
use super::shared::Shared;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tributary_core::{Source, SourceContext, SourceError};

/// A running `evm` source.
pub struct EvmSource {
    config: Arc<EvmSourceConfig>,
}

impl EvmSource {
    /// A source from its (validated) config.
    pub fn new(config: EvmSourceConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }
}

#[async_trait]
impl Source for EvmSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let io = |message: String| SourceError::Io {
            source_name: cx.name.clone(),
            message,
        };
        let decoder = Arc::new(Decoder::new(&self.config.abi).map_err(|e| io(format!("abi: {e}")))?);
        let timeout = Duration::from_millis(self.config.request_timeout_ms);
        let shared = Arc::new(Shared {
            source: cx.name.clone(),
            cfg: self.config.clone(),
            decoder,
            store: cx.store.clone(),
            shutdown: cx.shutdown.clone(),
            report: cx.report.clone(),
            rejected: Default::default(),
        });
        let mut tasks = tokio::task::JoinSet::new();
        for url in &self.config.rpc {
            let rpc = Rpc::new(url.clone(), timeout, self.config.max_response_bytes).map_err(io)?;
            tasks.spawn(Follower::new(shared.clone(), rpc).await?.run());
        }
        // The source keeps going while one provider works: a provider that stops (another chain) is
        // reported and left out; a store failure stops the whole source.
        let mut last_error = None;
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e @ SourceError::Store { .. })) => {
                    tasks.abort_all();
                    return Err(e);
                }
                Ok(Err(e)) => last_error = Some(e),
                Err(join) => last_error = Some(io(format!("a provider follower panicked: {join}"))),
            }
        }
        match last_error {
            Some(e) if !cx.shutdown.is_cancelled() => Err(e),
            _ => Ok(()),
        }
    }
}
