//! A running node: the store, the sources and one delivery worker per subscription.
//!
//! Task topology (all on [`TaskTracker`]s):
//! ```text
//! file sources ─┐                      ┌─▶ worker(subscription 1) ─▶ sink
//! http source ──┼─▶ store.append ─▶ log ┼─▶ worker(subscription 2) ─▶ sink
//! (via the API) ┘   (group commit)      └─▶ ...
//! ```
//! Shutdown: sources are cancelled first and awaited (their last batch commits with its checkpoint); then
//! workers stop starting deliveries, let those in flight finish within the grace period, and commit.
//! Subscriptions can be added, changed and removed while the node runs (see [`crate::registry`]).

use crate::config::{Config, StoreKind};
use crate::registry::{Loaded, Origin, SubscriptionHandle};
use crate::source_status::{ObservedStore, SourceStatus};
use crate::subscription::SubscriptionConfig;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tributary_core::{Log, SourceContext, SourceReport, Store, StoreError};
use tributary_plugin::ServiceContext;
use tributary_sources::{BuiltSource, Services, SourceSpec, http::HttpSource};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The store could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A subscription's config is invalid.
    #[error("subscriptions.{subscription}: {}", problems.join("; "))]
    Invalid {
        /// The subscription.
        subscription: String,
        /// Every problem, with its path.
        problems: Vec<String>,
    },
    /// The node cannot join the nodes sharing its store.
    #[error("{0}")]
    Cluster(String),
    /// A sink could not be built.
    #[error("subscriptions.{subscription}.sink: {message}")]
    Sink {
        /// The subscription.
        subscription: String,
        /// What is wrong.
        message: String,
    },
}

/// A running node.
pub struct Node {
    /// The config it runs.
    pub config: Arc<Config>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Every source, by name.
    pub sources: BTreeMap<String, SourceHandle>,
    /// Renders `/metrics`.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// The sources' background services and the routes they contribute (the Lightning graph).
    pub services: Services,
    pub(crate) subscriptions: Arc<RwLock<BTreeMap<String, Arc<SubscriptionHandle>>>>,
    /// Who this node is among the nodes sharing its store; `None` on a store of its own.
    pub cluster: Option<Arc<crate::cluster::ClusterSettings>>,
    /// Told when another node changed an API subscription ([`crate::cluster::sync`]).
    pub(crate) sync_now: Arc<tokio::sync::Notify>,
    /// Subscriptions that could not be started (reported, paused), by name.
    pub(crate) broken: RwLock<BTreeMap<String, crate::registry::BrokenSubscription>>,
    /// Node-wide bound on deliveries in flight (`[limits] max_deliveries_in_flight`).
    pub(crate) delivery_permits: Arc<tokio::sync::Semaphore>,
    sources_token: CancellationToken,
    pub(crate) workers_token: CancellationToken,
    source_tasks: TaskTracker,
    pub(crate) workers: TaskTracker,
    /// Subscription management operations run one at a time (no two creates of one name).
    pub(crate) manage: tokio::sync::Mutex<()>,
}

/// One configured source.
pub struct SourceHandle {
    /// Its config.
    pub config: SourceSpec,
    /// Live counters.
    pub status: Arc<SourceStatus>,
    /// The log as this source writes to it (counted).
    pub store: Arc<dyn Log>,
    /// For push sources, the endpoint the API serves.
    pub push: Option<HttpSource>,
    /// What the source reports about its parts (problems for `/health`, details for `/v1/sources`).
    pub report: SourceReport,
}

/// Opens the store the config names (the embedded one on a blocking thread: opening replays its journal).
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match &config.node.store {
        StoreKind::Embedded => {
            let dir = config.node.data_dir.clone();
            let opened = tokio::task::spawn_blocking(move || tributary_store::FjallStore::open(&dir)).await;
            Arc::new(opened.map_err(|e| StoreError::Backend {
                op: "open",
                source: Box::new(e),
            })??)
        }
        StoreKind::Memory => Arc::new(tributary_store::MemoryStore::new()),
        StoreKind::Postgres(pg) => Arc::new(tributary_store::PostgresStore::open(&pg.settings()).await?),
    })
}

/// Runs a pulling source. One that stopped because the store failed for a while (a PostgreSQL store
/// whose server is down) is built again and restarted from its checkpoints after a backoff (0.5 s
/// doubling to 10 s), as long as the store is not poisoned; one whose lease was lost just stops (its
/// caller stands by); any other error stops it for good, reported in its status.
pub(crate) async fn supervise(
    mut task: Box<dyn tributary_core::Source>,
    cx: SourceContext,
    spec: SourceSpec,
    store: Arc<dyn Store>,
    status: Arc<SourceStatus>,
) {
    const FIRST: Duration = Duration::from_millis(500);
    let mut backoff = FIRST;
    loop {
        let started = std::time::Instant::now();
        let Err(error) = task.run(cx.clone()).await else { break };
        if matches!(
            &error,
            tributary_core::SourceError::Store {
                error: StoreError::LeaseLost { .. },
                ..
            }
        ) {
            tracing::warn!(source = %cx.name, %error, "source stopped: this node lost its lease");
            break;
        }
        let transient =
            matches!(&error, tributary_core::SourceError::Store { error, .. } if error.is_transient(store.as_ref()));
        if !transient || cx.shutdown.is_cancelled() {
            tracing::error!(source = %cx.name, %error, "source stopped; fix the cause and restart tributary");
            *status.failure.lock().expect("failure lock") = Some(error.to_string());
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = FIRST;
        }
        tracing::warn!(source = %cx.name, %error, retry_in_ms = backoff.as_millis() as u64, "source stopped on a store error; restarting it from its checkpoints");
        *status.failure.lock().expect("failure lock") =
            Some(format!("{error}; restarting in {} ms", backoff.as_millis()));
        tokio::select! {
            _ = cx.shutdown.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
        let BuiltSource::Task(again) = spec.build() else { break };
        task = again;
        *status.failure.lock().expect("failure lock") = None;
    }
    status.running.store(false, Relaxed);
}

impl Node {
    /// Opens the store and starts everything.
    pub async fn start(config: Config) -> Result<Self, NodeError> {
        let store = open_store(&config).await?;
        Self::start_with_store(config, store).await
    }

    /// Starts sources and workers (config-defined and API-created subscriptions) on an open store.
    pub async fn start_with_store(config: Config, store: Arc<dyn Store>) -> Result<Self, NodeError> {
        let metrics = crate::metrics::install();
        let cluster = store
            .leases()
            .and(crate::cluster::ClusterSettings::of(&config))
            .map(Arc::new);
        let announcement = tributary_core::cluster::NodeAnnouncement {
            id: cluster.as_ref().map(|c| c.node_id.clone()).unwrap_or_default(),
            url: cluster.as_ref().map(|c| c.url.clone()).unwrap_or_default(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: tributary_core::Timestamp::now(),
            problems: Vec::new(),
        };
        if let Some(c) = &cluster {
            crate::cluster::join(store.as_ref(), c, &announcement).await?;
            tracing::info!(node = %c.node_id, url = %c.url, lease_ms = c.lease.as_millis() as u64, "joined the nodes sharing this store");
        }
        let sources_token = CancellationToken::new();
        let source_tasks = TaskTracker::new();
        let mut sources = BTreeMap::new();
        for sc in &config.sources {
            crate::metrics::source_registered(sc.name());
            let status = Arc::new(SourceStatus::default());
            let observed: Arc<dyn Log> = Arc::new(ObservedStore::new(store.clone(), sc.name(), status.clone()));
            status.running.store(true, Relaxed);
            status.started_at.store(tributary_core::Timestamp::now().0, Relaxed);
            let report = SourceReport::default();
            let push = match sc.build() {
                BuiltSource::Push(h) => Some(h),
                BuiltSource::Task(task) => {
                    let cx = SourceContext {
                        name: sc.name().to_owned(),
                        store: observed.clone(),
                        shutdown: sources_token.clone(),
                        report: report.clone(),
                    };
                    match &cluster {
                        Some(c) => source_tasks.spawn(crate::cluster::run_source(
                            task,
                            cx,
                            sc.clone(),
                            store.clone(),
                            status.clone(),
                            c.clone(),
                        )),
                        None => source_tasks.spawn(supervise(task, cx, sc.clone(), store.clone(), status.clone())),
                    };
                    None
                }
            };
            sources.insert(
                sc.name().to_owned(),
                SourceHandle {
                    config: sc.clone(),
                    status,
                    store: observed,
                    push,
                    report,
                },
            );
        }
        source_tasks.close();
        let workers_token = CancellationToken::new();
        let workers = TaskTracker::new();
        let services = Services::start(
            &config.sources,
            &ServiceContext {
                store: store.clone(),
                // Services keep their files in the data directory; the in-memory store keeps nothing.
                data_dir: (config.node.store == StoreKind::Embedded).then(|| config.node.data_dir.clone()),
                shared: cluster.is_some(),
                shutdown: workers_token.clone(),
                tracker: workers.clone(),
            },
        );
        let delivery_permits = Arc::new(tokio::sync::Semaphore::new(
            config.limits.max_deliveries_in_flight.clamp(1, 65_536),
        ));
        let node = Self {
            config: Arc::new(config),
            store,
            sources,
            metrics,
            subscriptions: Arc::new(RwLock::new(BTreeMap::new())),
            cluster: cluster.clone(),
            sync_now: Arc::default(),
            broken: RwLock::new(BTreeMap::new()),
            delivery_permits,
            sources_token,
            workers_token,
            source_tasks,
            workers,
            manage: tokio::sync::Mutex::new(()),
            services,
        };
        // No subscription can stop the node from starting: one that cannot start is reported and paused.
        let configured: Vec<SubscriptionConfig> = node.config.subscriptions.clone();
        for sub in configured {
            node.launch_or_report(sub, Origin::Config).await;
        }
        for loaded in crate::registry::load_api_subscriptions(node.store.as_ref()).await? {
            match loaded {
                Loaded::Ok(sub) => {
                    if node.subscription(&sub.name).is_some()
                        || node.broken.read().expect("broken lock").contains_key(&sub.name)
                    {
                        tracing::warn!(subscription = %sub.name, "an API-created subscription has the name of one in the config file; the config file wins");
                        continue;
                    }
                    node.launch_or_report(*sub, Origin::Api).await;
                }
                Loaded::Broken(b) => node.report_broken(b).await,
            }
        }
        if let Some(c) = &cluster {
            node.workers.spawn(crate::cluster::relay::receive(
                node.store.clone(),
                c.clone(),
                node.subscriptions.clone(),
                node.sync_now.clone(),
                node.workers_token.clone(),
            ));
            let (sources, subscriptions) = (node.source_problems(), node.subscriptions.clone());
            let problems = move || {
                let mut out: Vec<String> = sources
                    .iter()
                    .filter_map(|(name, s)| {
                        s.failure
                            .lock()
                            .expect("failure lock")
                            .as_ref()
                            .map(|f| format!("source {name}: {f}"))
                    })
                    .collect();
                let subs = subscriptions.read().expect("subscriptions lock");
                out.extend(
                    subs.values()
                        .filter(|h| h.status.paused.load(Relaxed))
                        .map(|h| format!("subscription {}: paused", h.config.name)),
                );
                out
            };
            tokio::spawn(crate::cluster::announce(
                node.store.clone(),
                c.clone(),
                announcement,
                problems,
                node.sources_token.clone(),
            ));
        }
        Ok(node)
    }

    /// Each source's status, by name (for the node's announcement).
    fn source_problems(&self) -> Vec<(String, Arc<SourceStatus>)> {
        (self.sources.iter())
            .map(|(name, h)| (name.clone(), h.status.clone()))
            .collect()
    }

    /// One subscription by name.
    pub fn subscription(&self, name: &str) -> Option<Arc<SubscriptionHandle>> {
        self.subscriptions
            .read()
            .expect("subscriptions lock")
            .get(name)
            .cloned()
    }

    /// The subscription a tenant calls `name`: its API subscription `{tenant}:{name}`, or one of its
    /// config-file (or older) subscriptions named `name`.
    pub fn subscription_for(&self, tenant: &str, name: &str) -> Option<Arc<SubscriptionHandle>> {
        let subs = self.subscriptions.read().expect("subscriptions lock");
        if let Some(h) = subs.get(&format!("{tenant}:{name}")) {
            return Some(h.clone());
        }
        subs.get(name)
            .filter(|h| h.config.tenant.as_deref() == Some(tenant))
            .cloned()
    }

    /// Every subscription, by name.
    /// Runs every running subscription's sink healthcheck at once; the failures, by subscription name.
    pub async fn sink_problems(&self) -> BTreeMap<String, String> {
        let checks = self.subscription_list().into_iter().map(|h| async move {
            let result = h.healthcheck().await;
            (h.config.name.clone(), result)
        });
        futures_util::future::join_all(checks)
            .await
            .into_iter()
            .filter_map(|(name, r)| r.err().map(|e| (name, e)))
            .collect()
    }

    pub fn subscription_list(&self) -> Vec<Arc<SubscriptionHandle>> {
        self.subscriptions
            .read()
            .expect("subscriptions lock")
            .values()
            .cloned()
            .collect()
    }

    /// Stops sources, drains deliveries within the grace period, and returns once everything is committed.
    pub async fn shutdown(&self) {
        let grace = self.config.node.shutdown_grace();
        self.sources_token.cancel();
        if tokio::time::timeout(grace, self.source_tasks.wait()).await.is_err() {
            tracing::warn!(
                still_running = self.source_tasks.len(),
                "sources did not stop within the grace period"
            );
        }
        self.workers_token.cancel();
        self.workers.close();
        if tokio::time::timeout(grace + Duration::from_secs(2), self.workers.wait())
            .await
            .is_err()
        {
            let names: Vec<_> = self.subscription_list().iter().map(|h| h.config.name.clone()).collect();
            tracing::warn!(?names, "delivery workers did not stop within the grace period");
        }
    }
}
