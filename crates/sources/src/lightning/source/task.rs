//! The running `lightning` source: restores the known channels, then runs its inputs until shutdown.

use super::LightningSourceConfig;
use crate::lightning::events::Origin;
use crate::lightning::pipeline::{Output, Pipeline};
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use tokio::task::JoinSet;
use tributary_core::store::Checkpoint;
use tributary_core::{Reject, Source, SourceContext, SourceError, Timestamp};

/// The pipeline shared by a source's inputs.
pub(crate) type Shared = Arc<Mutex<Pipeline>>;

/// A running `lightning` source.
pub struct LightningSource {
    config: LightningSourceConfig,
}

impl LightningSource {
    /// A source from its config.
    pub fn new(config: LightningSourceConfig) -> Self {
        Self { config }
    }
}

pub(crate) fn store_err(cx: &SourceContext) -> impl Fn(tributary_core::StoreError) -> SourceError + '_ {
    move |error| SourceError::Store {
        source_name: cx.name.clone(),
        error,
    }
}

/// Appends what a pipeline produced: the first write carries the rejects and the checkpoint.
pub(crate) async fn append(
    cx: &SourceContext,
    mut out: Output,
    extra_rejects: Vec<Reject>,
    checkpoint: Option<Checkpoint>,
) -> Result<(), SourceError> {
    out.rejects.extend(extra_rejects);
    for batch in out.into_batches(&cx.name, checkpoint) {
        if batch.events.is_empty() && batch.rejects.is_empty() && batch.checkpoint.is_none() && batch.meta.is_empty() {
            continue;
        }
        cx.store.append(batch).await.map_err(store_err(cx))?;
    }
    Ok(())
}

/// Processes `items` seen by `observer` on the blocking pool and appends the result.
pub(crate) async fn ingest(
    cx: &SourceContext,
    pipeline: &Shared,
    items: Vec<(Vec<u8>, Origin)>,
    observer: String,
    extra_rejects: Vec<Reject>,
    checkpoint: Option<Checkpoint>,
) -> Result<(), SourceError> {
    let p = pipeline.clone();
    let out = tokio::task::spawn_blocking(move || {
        p.lock()
            .expect("pipeline lock")
            .process(items, &observer, Timestamp::now())
    })
    .await
    .map_err(|e| SourceError::Io {
        source_name: cx.name.clone(),
        message: format!("the verification task failed: {e}"),
    })?;
    append(cx, out, extra_rejects, checkpoint).await
}

#[async_trait]
impl Source for LightningSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let c = &self.config;
        let mut pipeline = Pipeline::new(c.network, true, c.max_waiting_updates);
        let known = pipeline.restore(cx.store.as_ref()).await.map_err(store_err(&cx))?;
        let kept = super::waiting::load(&cx).await?;
        let kept_count = kept.len();
        let restored = pipeline.restore_waiting(kept);
        append(&cx, restored, Vec::new(), None).await?;
        tracing::info!(source = %cx.name, network = %c.network, known_channels = known, waiting = pipeline.stats.waiting, kept_waiting = kept_count, "lightning source starting");
        let pipeline: Shared = Arc::new(Mutex::new(pipeline));
        // Inputs stop together: a failing one cancels its siblings, never the node's other sources.
        let local = SourceContext {
            shutdown: cx.shutdown.child_token(),
            ..cx.clone()
        };
        let mut tasks = JoinSet::new();
        if let Some(path) = &c.gossip_store {
            let (cx, p, path) = (local.clone(), pipeline.clone(), path.clone());
            let (poll, batch) = (c.poll_interval(), c.batch_messages);
            tasks.spawn(async move { super::follow::follow(cx, p, path, poll, batch).await });
        }
        #[cfg(feature = "lightning-zmq")]
        for endpoint in &c.collectors {
            let (cx, p, endpoint) = (local.clone(), pipeline.clone(), endpoint.clone());
            let batch = c.batch_messages;
            tasks.spawn(async move { super::zmq::collect(cx, p, endpoint, batch).await });
        }
        if tasks.is_empty() {
            // Import-only source: nothing to follow; stay up so that /health shows it running.
            cx.shutdown.cancelled().await;
        }
        let mut result = Ok(());
        while let Some(joined) = tasks.join_next().await {
            let r = joined.unwrap_or_else(|e| {
                Err(SourceError::Io {
                    source_name: cx.name.clone(),
                    message: format!("an input task failed: {e}"),
                })
            });
            if r.is_err() && result.is_ok() {
                result = r;
                local.shutdown.cancel();
            }
        }
        // Updates still waiting for their channel are in the store already (written with each batch).
        result
    }
}
