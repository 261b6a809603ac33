//! A running node: the store, the sources and one delivery worker per subscription.
//!
//! Task topology (all on one [`TaskTracker`]):
//! ```text
//! file sources ─┐                      ┌─▶ worker(subscription 1) ─▶ sink
//! http source ──┼─▶ store.append ─▶ log ┼─▶ worker(subscription 2) ─▶ sink
//! (via the API) ┘   (group commit)      └─▶ ...
//! ```
//! Shutdown: sources are cancelled first and awaited (their last batch commits with its checkpoint); then
//! workers stop starting deliveries, let those in flight finish within the grace period, and commit.

use crate::config::{Config, StoreKind};
use crate::subscription::{Control, SubscriptionConfig, SubscriptionStatus, Worker};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tributary_core::{SourceContext, Store, StoreError};
use tributary_sinks::{SinkContext, generate_secret};
use tributary_sources::{BuiltSource, http::HttpSource};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sink could not be built.
    #[error("subscriptions.{subscription}.sink: {message}")]
    Sink {
        /// The subscription.
        subscription: String,
        /// What is wrong.
        message: String,
    },
}

/// What the API needs to know about one subscription.
pub struct SubscriptionHandle {
    /// Its config.
    pub config: SubscriptionConfig,
    /// Live counters.
    pub status: Arc<SubscriptionStatus>,
    /// Pause / resume.
    pub control: mpsc::Sender<Control>,
    /// The sink, described.
    pub sink: String,
}

/// A running node.
pub struct Node {
    /// The config it runs.
    pub config: Arc<Config>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Push sources served by the API, by name.
    pub http_sources: BTreeMap<String, HttpSource>,
    /// Subscriptions by name.
    pub subscriptions: BTreeMap<String, SubscriptionHandle>,
    sources_token: CancellationToken,
    workers_token: CancellationToken,
    sources: TaskTracker,
    workers: TaskTracker,
}

/// Opens the store the config names.
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match config.node.store {
        StoreKind::Embedded => Arc::new(tributary_store::FjallStore::open(&config.node.data_dir)?),
        StoreKind::Memory => Arc::new(tributary_store::MemoryStore::new()),
    })
}

impl Node {
    /// Opens the store and starts everything.
    pub async fn start(config: Config) -> Result<Self, NodeError> {
        let store = open_store(&config)?;
        Self::start_with_store(config, store).await
    }

    /// Starts sources and workers on an open store.
    pub async fn start_with_store(
        config: Config,
        store: Arc<dyn Store>,
    ) -> Result<Self, NodeError> {
        let sources_token = CancellationToken::new();
        let workers_token = CancellationToken::new();
        let sources = TaskTracker::new();
        let workers = TaskTracker::new();
        let mut http_sources = BTreeMap::new();
        for sc in &config.sources {
            match sc.build() {
                BuiltSource::Push(h) => {
                    http_sources.insert(sc.name().to_owned(), h);
                }
                BuiltSource::Task(task) => {
                    let cx = SourceContext {
                        name: sc.name().to_owned(),
                        store: store.clone(),
                        shutdown: sources_token.clone(),
                    };
                    let name = sc.name().to_owned();
                    sources.spawn(async move {
                        if let Err(error) = task.run(cx).await {
                            tracing::error!(source = %name, %error, "source stopped");
                        }
                    });
                }
            }
        }
        let grace = config.node.shutdown_grace();
        let mut subscriptions = BTreeMap::new();
        for sub in &config.subscriptions {
            let mut cx = SinkContext::new(sub.name.as_str());
            if sub.sink.needs_generated_secret() {
                cx = cx.with_secret(resolve_secret(store.as_ref(), &sub.name).await?);
            }
            let sink = sub.sink.build(cx).map_err(|e| NodeError::Sink {
                subscription: sub.name.clone(),
                message: e.to_string(),
            })?;
            let status = Arc::new(SubscriptionStatus::default());
            let (control, control_rx) = mpsc::channel(16);
            let describe = sink.describe();
            let worker = Worker::new(sub.clone(), sink, store.clone(), status.clone()).await?;
            let token = workers_token.clone();
            let name = sub.name.clone();
            workers.spawn(async move {
                if let Err(error) = worker.run(token, grace, control_rx).await {
                    tracing::error!(subscription = %name, %error, "delivery worker stopped; deliveries resume from the cursor after restart");
                }
            });
            subscriptions.insert(
                sub.name.clone(),
                SubscriptionHandle {
                    config: sub.clone(),
                    status,
                    control,
                    sink: describe,
                },
            );
        }
        sources.close();
        workers.close();
        Ok(Self {
            config: Arc::new(config),
            store,
            http_sources,
            subscriptions,
            sources_token,
            workers_token,
            sources,
            workers,
        })
    }

    /// Stops sources, drains deliveries within the grace period, and returns once everything is committed.
    pub async fn shutdown(&self) {
        let grace = self.config.node.shutdown_grace();
        self.sources_token.cancel();
        if tokio::time::timeout(grace, self.sources.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                still_running = self.sources.len(),
                "sources did not stop within the grace period"
            );
        }
        self.workers_token.cancel();
        if tokio::time::timeout(grace + Duration::from_secs(2), self.workers.wait())
            .await
            .is_err()
        {
            let names: Vec<_> = self.subscriptions.keys().cloned().collect();
            tracing::warn!(
                ?names,
                "delivery workers did not stop within the grace period"
            );
        }
    }
}

/// The generated signing secret of a subscription whose sink config names none: made once, kept in the store.
async fn resolve_secret(store: &dyn Store, subscription: &str) -> Result<String, StoreError> {
    let key = format!("subscription/{subscription}/secret");
    if let Some(s) = store.get_meta(&key).await? {
        return Ok(s);
    }
    let secret = generate_secret();
    store.put_meta(&key, &secret).await?;
    tracing::info!(
        subscription,
        "generated a webhook signing secret; read it with GET /v1/subscriptions/{subscription}/secret"
    );
    Ok(secret)
}
