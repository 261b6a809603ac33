//! Subscriptions at run time: start, create, change, delete, rotate secrets, send test events, requeue.
//!
//! Config-file subscriptions are read-only through the API. API-created ones are kept in the store under
//! the meta key `api-subscription/{name}` (their full config as JSON, secret included) and started again
//! on every restart. A changed subscription keeps its name, hence its cursor, pending retries, dead letters
//! and `webhook-id`s.

use crate::node::{Node, NodeError};
use crate::subscription::{Control, SubscriptionConfig, SubscriptionStatus, Worker};
use serde::Serialize;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tributary_core::catalog::{Catalog, Entry, Expect, RecordKind};
use tributary_core::store::DeliveryUpdate;
use tributary_core::{
    AttemptReport, Delivery, EventId, FilterConfig, NewEvent, Seq, Sink, StoreError, StoredEvent, Timestamp,
};
use tributary_sinks::{SinkContext, generate_secret};

/// Where a subscription was defined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The config file: read-only through the API.
    Config,
    /// Created through the API: kept in the store.
    Api,
}

/// A running subscription.
pub struct SubscriptionHandle {
    /// Its config.
    pub config: SubscriptionConfig,
    /// Where it was defined.
    pub origin: Origin,
    /// Live counters.
    pub status: Arc<SubscriptionStatus>,
    /// Commands to its worker.
    pub control: mpsc::Sender<Control>,
    /// Its sink (for test events).
    pub sink: Arc<dyn Sink>,
    /// The filter the worker really applies: the configured one, limited for a tenant's subscription to
    /// the sources shared with that tenant. Replays use it too.
    pub effective_filter: FilterConfig,
    /// Several nodes on one store: where commands go while another node holds the lease.
    relay: Option<(Arc<dyn tributary_core::Store>, Arc<crate::cluster::ClusterSettings>)>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// A subscription that could not be started: its stored record does not load, no longer passes
/// validation, or its delivery state cannot be read. The node starts anyway; the subscription is reported
/// (log, `/health`, the API) and kept paused until it is fixed (`PUT`) or deleted.
#[derive(Clone, Debug, Serialize)]
pub struct BrokenSubscription {
    /// Its name.
    pub name: String,
    /// Where it was defined.
    pub origin: Origin,
    /// Its tenant, as far as the record tells.
    pub tenant: Option<String>,
    /// What is wrong and what to do.
    pub problem: String,
    /// The stored record (API subscriptions), secrets and all: never shown as is.
    #[serde(skip)]
    pub record: Option<serde_json::Value>,
}

/// What a stored API subscription record turned out to be.
pub(crate) enum Loaded {
    Ok(Box<SubscriptionConfig>),
    Broken(BrokenSubscription),
}

/// Why a subscription operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// The config is invalid: every problem, with its path.
    #[error("invalid subscription: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The name is taken.
    #[error("a subscription named {0:?} already exists")]
    Conflict(String),
    /// Defined in the config file.
    #[error(
        "subscription {0:?} is defined in the config file and is read-only through the API; change the file and restart"
    )]
    ReadOnly(String),
    /// No such subscription.
    #[error("no subscription named {0:?}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sink could not be built.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The worker is gone.
    #[error("the subscription's worker is not running")]
    Stopped,
    /// Several nodes on one store, and none holds the subscription's lease right now.
    #[error(
        "no node delivers subscription {0:?} right now (its lease is free or expired while a node takes it over); try again in a few seconds"
    )]
    NoHolder(String),
    /// A secret operation on a sink that signs with no secret.
    #[error("a {0} sink has no signing secret (only sinks that sign their deliveries have one)")]
    NoSecret(&'static str),
    /// The subscription names a tenant that does not exist.
    #[error("no tenant named {0:?}; create it first with `tributary tenants create {0}` (POST /v1/tenants)")]
    NoTenant(String),
    /// A tenant has as many subscriptions as it may.
    #[error(
        "tenant {tenant:?} has {limit} subscriptions, the most it may have ([limits] max_subscriptions_per_tenant); delete one first"
    )]
    Limit {
        /// The tenant.
        tenant: String,
        /// The limit.
        limit: usize,
    },
}

/// How long one sink healthcheck may take before it counts as failed.
const HEALTHCHECK_TIMEOUT: Duration = Duration::from_secs(3);

impl SubscriptionHandle {
    /// Runs the sink's healthcheck (bounded by [`HEALTHCHECK_TIMEOUT`]): `Err` says what is wrong.
    pub async fn healthcheck(&self) -> Result<(), String> {
        match tokio::time::timeout(HEALTHCHECK_TIMEOUT, self.sink.healthcheck()).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "{}: no answer within {HEALTHCHECK_TIMEOUT:?}",
                self.sink.describe()
            )),
        }
    }

    /// Sends a command to the worker: this node's, or, while another node holds the subscription's
    /// lease, that node's (relayed through the store).
    pub async fn send(&self, cmd: Control) -> Result<(), ManageError> {
        if let Some((store, cluster)) = &self.relay
            && self.is_standby()
            && crate::cluster::relay::forward(store.as_ref(), cluster, &self.config.name, cmd.clone()).await?
        {
            return Ok(());
        }
        self.control.send(cmd).await.map_err(|_| ManageError::Stopped)
    }

    /// Another node holds this subscription's lease and delivers it.
    pub fn is_standby(&self) -> bool {
        self.status.standby.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Pauses or resumes, and waits (at most 5 s) until the worker shows it, so that a read after the
    /// answer sees the new state.
    pub async fn set_paused(&self, paused: bool) -> Result<(), ManageError> {
        self.send(if paused { Control::Pause } else { Control::Resume }).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        if let Some((store, _)) = &self.relay
            && self.is_standby()
        {
            // Relayed: the holder stores the flag when its worker takes the command.
            while tokio::time::Instant::now() < deadline {
                if store.subscription_state(&self.config.name).await?.paused == paused {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            return Ok(());
        }
        while self.status.paused.load(std::sync::atomic::Ordering::Relaxed) != paused
            && tokio::time::Instant::now() < deadline
            && !self.control.is_closed()
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    pub(crate) async fn stop(&self) {
        self.stop.cancel();
        let task = self.task.lock().expect("task lock").take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

/// API-created subscriptions kept in the store; a record that does not parse is reported, not fatal.
pub(crate) async fn load_api_subscriptions(store: &dyn Catalog) -> Result<Vec<Loaded>, StoreError> {
    let mut out = Vec::new();
    for entry in store.records(RecordKind::Subscription, "").await? {
        let (name, json) = match entry {
            Entry::Ok { name, record } => (name, record.value),
            Entry::Broken { name, error } => {
                out.push(Loaded::Broken(BrokenSubscription {
                    tenant: name.split_once(':').map(|(t, _)| t.to_owned()),
                    problem: format!(
                        "its stored record cannot be read back ({error}); replace it with PUT /v1/subscriptions/{{name}} or delete it"
                    ),
                    name,
                    origin: Origin::Api,
                    record: None,
                }));
                continue;
            }
        };
        let record: Option<serde_json::Value> = serde_json::from_str(&json).ok();
        match serde_json::from_str::<SubscriptionConfig>(&json) {
            Ok(c) => out.push(Loaded::Ok(Box::new(c))),
            Err(e) => out.push(Loaded::Broken(BrokenSubscription {
                tenant: record
                    .as_ref()
                    .and_then(|r| r.get("tenant"))
                    .and_then(|t| t.as_str())
                    .map(str::to_owned),
                name,
                origin: Origin::Api,
                problem: format!(
                    "its stored record cannot be read ({e}); replace it with PUT /v1/subscriptions/{{name}} or delete it"
                ),
                record,
            })),
        }
    }
    Ok(out)
}

/// The generated signing secret of a subscription whose sink config names none: made once, kept in the store.
pub(crate) async fn resolve_secret(store: &dyn Catalog, subscription: &str) -> Result<String, StoreError> {
    if let Some(s) = store.record(RecordKind::SinkSecret, subscription).await? {
        return Ok(s.value);
    }
    let secret = generate_secret();
    let set = store.compare_and_set(RecordKind::SinkSecret, subscription, Expect::Absent, Some(&secret));
    if set.await?.is_err() {
        // Another start made it first: that one is the secret.
        if let Some(s) = store.record(RecordKind::SinkSecret, subscription).await? {
            return Ok(s.value);
        }
    }
    tracing::info!(
        subscription,
        "generated a signing secret; read it with GET /v1/subscriptions/{subscription}/secret"
    );
    Ok(secret)
}

impl Node {
    /// Builds the sink and starts the worker of one subscription, with fresh counters.
    pub(crate) async fn launch(
        &self,
        sub: SubscriptionConfig,
        origin: Origin,
    ) -> Result<Arc<SubscriptionHandle>, NodeError> {
        self.launch_with(sub, origin, Arc::default()).await
    }

    /// [`Node::launch`] keeping `status`: an update or a secret rotation restarts the worker, but the
    /// counters since the node started carry over (as the `/metrics` counters do).
    pub(crate) async fn launch_with(
        &self,
        sub: SubscriptionConfig,
        origin: Origin,
        status: Arc<SubscriptionStatus>,
    ) -> Result<Arc<SubscriptionHandle>, NodeError> {
        crate::metrics::subscription_registered(&sub.name);
        let mut cx = SinkContext::new(sub.name.as_str());
        if sub.sink.needs_generated_secret() {
            cx = cx.with_secret(resolve_secret(self.store.as_ref(), &sub.name).await?);
        }
        let sink = sub.sink.build(cx).map_err(|e| NodeError::Sink {
            subscription: sub.name.clone(),
            message: e.to_string(),
        })?;
        let (control, control_rx) = mpsc::channel(64);
        let effective_filter = self.tenant_filter(&sub);
        let mut worker_config = sub.clone();
        worker_config.filter = effective_filter.clone();
        // Fail closed: a filter that does not compile delivers nothing rather than everything.
        let filter = worker_config.filter.compile().map_err(|errors| NodeError::Invalid {
            subscription: sub.name.clone(),
            problems: errors.iter().map(|e| format!("filter.{e}")).collect(),
        })?;
        let stop = self.workers_token.child_token();
        let grace = self.config.node.shutdown_grace();
        let task = match &self.cluster {
            // Several nodes on one store: the worker runs while this node holds the lease.
            Some(cluster) => {
                status.standby.store(true, std::sync::atomic::Ordering::Relaxed);
                let work = crate::cluster::work::SubscriptionWork {
                    config: worker_config,
                    filter,
                    sink: sink.clone(),
                    store: self.store.clone(),
                    status: status.clone(),
                    permits: self.delivery_permits.clone(),
                    grace,
                };
                let run = crate::cluster::work::run_subscription(work, cluster.clone(), stop.clone(), control_rx);
                self.workers.spawn(run)
            }
            None => {
                let worker = Worker::new(
                    worker_config,
                    filter,
                    sink.clone(),
                    self.store.clone(),
                    status.clone(),
                    self.delivery_permits.clone(),
                    None,
                )
                .await?;
                let (token, name, mut control_rx) = (stop.clone(), sub.name.clone(), control_rx);
                self.workers.spawn(async move {
                    if let Err(error) = worker.run(token, grace, &mut control_rx).await {
                        tracing::error!(subscription = %name, %error, "delivery worker stopped; deliveries resume from the cursor after restart");
                    }
                })
            }
        };
        let handle = Arc::new(SubscriptionHandle {
            config: sub,
            origin,
            status,
            control,
            sink,
            effective_filter,
            relay: self.cluster.clone().map(|c| (self.store.clone(), c)),
            stop,
            task: Mutex::new(Some(task)),
        });
        self.subscriptions
            .write()
            .expect("subscriptions lock")
            .insert(handle.config.name.clone(), handle.clone());
        self.broken.write().expect("broken lock").remove(&handle.config.name);
        // The destination is checked once at start, without holding the start up: a failure is a warning
        // (deliveries are retried as usual) and the detailed `/health` checks again on every call. Not on
        // the workers' tracker: a check waiting for an unreachable server must not delay a shutdown.
        let checked = handle.clone();
        tokio::spawn(async move {
            if let Err(problem) = checked.healthcheck().await {
                tracing::warn!(subscription = %checked.config.name, %problem, "the sink's healthcheck failed at start; deliveries are retried until it answers (see /health)");
            }
        });
        Ok(handle)
    }

    /// Starts a subscription at node start; one that cannot start is reported and paused, never fatal.
    pub(crate) async fn launch_or_report(&self, sub: SubscriptionConfig, origin: Origin) {
        let problems = self.check(&sub).err().map(|e| e.to_string());
        let (name, tenant) = (sub.name.clone(), sub.tenant.clone());
        let record = (origin == Origin::Api).then(|| serde_json::to_value(&sub).unwrap_or_default());
        let problem = match problems {
            Some(p) => format!("{p}; fix it with PUT /v1/subscriptions/{name} (or in the config file) or delete it"),
            None => match self.launch(sub, origin).await {
                Ok(_) => return,
                Err(e) => format!("it cannot start: {e}"),
            },
        };
        self.report_broken(BrokenSubscription {
            name,
            origin,
            tenant,
            problem,
            record,
        })
        .await;
    }

    /// Records a subscription that cannot run: logged, shown by `/health` and the API, paused in the store.
    pub(crate) async fn report_broken(&self, b: BrokenSubscription) {
        tracing::error!(subscription = %b.name, problem = %b.problem, "subscription not started; it stays paused until fixed or deleted");
        crate::metrics::subscription_registered(&b.name);
        if self.cluster.is_some() {
            // Another node may run it: its shared delivery state is not this node's to pause.
            self.broken.write().expect("broken lock").insert(b.name.clone(), b);
            return;
        }
        let paused = DeliveryUpdate {
            paused: Some(true),
            ..Default::default()
        };
        if let Err(e) = self.store.commit_delivery(&b.name, paused).await {
            tracing::warn!(subscription = %b.name, error = %e, "could not store the paused flag of a subscription that cannot start");
        }
        self.broken.write().expect("broken lock").insert(b.name.clone(), b);
    }

    /// Subscriptions that could not be started, by name.
    pub fn broken_subscriptions(&self) -> Vec<BrokenSubscription> {
        self.broken.read().expect("broken lock").values().cloned().collect()
    }

    /// One subscription that could not be started.
    pub fn broken_subscription(&self, name: &str) -> Option<BrokenSubscription> {
        self.broken.read().expect("broken lock").get(name).cloned()
    }

    /// The subscription that could not be started that a tenant calls `name` (see
    /// [`Node::subscription_for`]).
    pub fn broken_for(&self, tenant: &str, name: &str) -> Option<BrokenSubscription> {
        let broken = self.broken.read().expect("broken lock");
        if let Some(b) = broken.get(&format!("{tenant}:{name}")) {
            return Some(b.clone());
        }
        broken
            .get(name)
            .filter(|b| b.tenant.as_deref() == Some(tenant))
            .cloned()
    }

    /// How many subscriptions (running or not) belong to `tenant`.
    fn tenant_subscriptions(&self, tenant: &str) -> usize {
        let running = (self.subscriptions.read().expect("subscriptions lock").values())
            .filter(|h| h.config.tenant.as_deref() == Some(tenant))
            .count();
        let broken = (self.broken.read().expect("broken lock").values())
            .filter(|b| b.tenant.as_deref() == Some(tenant))
            .count();
        running + broken
    }

    /// A tenant's subscription only ever sees the sources shared with its tenant, and of those no event
    /// owned by another tenant, whatever its filter says.
    fn tenant_filter(&self, sub: &SubscriptionConfig) -> FilterConfig {
        let mut filter = sub.filter.clone();
        let Some(tenant) = &sub.tenant else { return filter };
        let shared: Vec<String> = self
            .config
            .sources
            .iter()
            .filter(|s| s.shared_with(tenant))
            .map(|s| s.name().to_owned())
            .collect();
        filter.sources = if filter.sources.is_empty() {
            shared
        } else {
            filter.sources.into_iter().filter(|s| shared.contains(s)).collect()
        };
        if filter.sources.is_empty() {
            // No source is shared with the tenant: match nothing (source names never contain '<').
            filter.sources = vec!["<none>".to_owned()];
        }
        // Nor any event that carries another tenant (an outbox row's tenant column).
        filter.tenant = Some(tenant.clone());
        filter
    }

    fn check(&self, sub: &SubscriptionConfig) -> Result<(), ManageError> {
        let names: HashSet<&str> = self.config.sources.iter().map(|s| s.name()).collect();
        let problems: Vec<String> = sub
            .validate(&names)
            .into_iter()
            .map(|(p, m)| format!("{p}: {m}"))
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ManageError::Invalid(problems))
        }
    }

    /// An API subscription's tenant must exist: a subscription of no tenant would be an orphan no key manages.
    async fn check_tenant(&self, sub: &SubscriptionConfig) -> Result<(), ManageError> {
        let Some(tenant) = &sub.tenant else { return Ok(()) };
        match crate::tenants::Tenants::new(self.store.as_ref()).get(tenant).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ManageError::NoTenant(tenant.clone())),
            Err(crate::tenants::TenantError::Store(e)) => Err(e.into()),
            Err(_) => Err(ManageError::NoTenant(tenant.clone())),
        }
    }

    /// Keeps a new subscription: refused if a record of that name exists (on any node sharing the store).
    async fn persist_new(&self, sub: &SubscriptionConfig) -> Result<(), ManageError> {
        let json = serde_json::to_string(sub).expect("subscription configs serialize");
        let set = (self.store).compare_and_set(RecordKind::Subscription, &sub.name, Expect::Absent, Some(&json));
        match set.await? {
            Ok(_) => Ok(()),
            Err(_) => Err(ManageError::Conflict(sub.display_name().to_owned())),
        }
    }

    /// Replaces a kept subscription's record (a PUT: whatever version is there, unless it was deleted
    /// meanwhile).
    async fn persist_update(&self, sub: &SubscriptionConfig) -> Result<(), ManageError> {
        let json = serde_json::to_string(sub).expect("subscription configs serialize");
        loop {
            let expect = match self.store.record(RecordKind::Subscription, &sub.name).await? {
                Some(r) => Expect::Version(r.version),
                None => Expect::Absent,
            };
            let set = (self.store).compare_and_set(RecordKind::Subscription, &sub.name, expect, Some(&json));
            if set.await?.is_ok() {
                return Ok(());
            }
        }
    }

    /// Forgets a kept subscription and marks its name as used by a deleted one.
    async fn persist_delete(&self, name: &str) -> Result<(), StoreError> {
        let at = Timestamp::now().to_rfc3339();
        let mark = (self.store).compare_and_set(RecordKind::DeletedSubscription, name, Expect::Any, Some(&at));
        let _ = mark.await?;
        while let Some(r) = self.store.record(RecordKind::Subscription, name).await? {
            let gone = self
                .store
                .compare_and_set(RecordKind::Subscription, name, Expect::Version(r.version), None);
            if gone.await?.is_ok() {
                break;
            }
        }
        Ok(())
    }

    /// Creates and starts a subscription (kept across restarts). A webhook without a secret gets one.
    pub async fn create_subscription(
        &self,
        mut sub: SubscriptionConfig,
    ) -> Result<Arc<SubscriptionHandle>, ManageError> {
        let _one_at_a_time = self.manage.lock().await;
        sub.qualify();
        self.check(&sub)?;
        self.check_tenant(&sub).await?;
        let taken = match &sub.tenant {
            Some(t) => {
                let short = sub.display_name();
                self.subscription_for(t, short).is_some() || self.broken_for(t, short).is_some()
            }
            None => false,
        };
        if taken || self.subscription(&sub.name).is_some() || self.broken_subscription(&sub.name).is_some() {
            return Err(ManageError::Conflict(sub.display_name().to_owned()));
        }
        if let Some(tenant) = &sub.tenant {
            let limit = self.config.limits.max_subscriptions_per_tenant;
            if self.tenant_subscriptions(tenant) >= limit {
                return Err(ManageError::Limit {
                    tenant: tenant.clone(),
                    limit,
                });
            }
        }
        // A deleted subscription's history (cursor, attempts, dead letters) stays under its name: a new
        // subscription may not inherit it.
        if (self.store.record(RecordKind::DeletedSubscription, &sub.name).await?).is_some() {
            return Err(ManageError::Conflict(format!(
                "{} (used by a deleted subscription; choose another name)",
                sub.display_name()
            )));
        }
        sub.sink.ensure_secret();
        self.persist_new(&sub).await?;
        let h = self.launch(sub, Origin::Api).await?;
        crate::cluster::sync::changed(self).await;
        Ok(h)
    }

    fn api_owned(&self, name: &str) -> Result<Arc<SubscriptionHandle>, ManageError> {
        let h = self
            .subscription(name)
            .ok_or_else(|| ManageError::NotFound(name.to_owned()))?;
        if h.origin == Origin::Config {
            return Err(ManageError::ReadOnly(name.to_owned()));
        }
        Ok(h)
    }

    /// Replaces an API-created subscription's config; its cursor and delivery state carry over.
    pub async fn update_subscription(
        &self,
        name: &str,
        mut sub: SubscriptionConfig,
    ) -> Result<Arc<SubscriptionHandle>, ManageError> {
        let _one_at_a_time = self.manage.lock().await;
        sub.name = name.to_owned();
        if sub.tenant.is_none()
            && let Some((tenant, _)) = name.split_once(':')
        {
            sub.tenant = Some(tenant.to_owned()); // a tenant's API subscription stays its tenant's
        }
        if let Some(broken) = self.broken_api(name)? {
            // Fixing a subscription that could not start: keep the secrets of its record if it has any.
            self.check(&sub)?;
            sub.sink.keep_secret_of_record(broken.record.as_ref());
            self.persist_update(&sub).await?;
            let h = self.launch(sub, Origin::Api).await?;
            crate::cluster::sync::changed(self).await;
            return Ok(h);
        }
        let old = self.api_owned(name)?;
        self.check(&sub)?;
        if sub.tenant != old.config.tenant {
            self.check_tenant(&sub).await?;
        }
        sub.sink.keep_secrets_of(&old.config.sink);
        self.persist_update(&sub).await?;
        old.stop().await;
        let h = self.launch_with(sub, Origin::Api, old.status.clone()).await?;
        crate::cluster::sync::changed(self).await;
        Ok(h)
    }

    /// A subscription that could not start, if it is one created through the API.
    fn broken_api(&self, name: &str) -> Result<Option<BrokenSubscription>, ManageError> {
        match self.broken_subscription(name) {
            Some(b) if b.origin == Origin::Config => Err(ManageError::ReadOnly(name.to_owned())),
            other => Ok(other),
        }
    }

    /// Stops and removes an API-created subscription. Its delivery history stays in the store.
    pub async fn delete_subscription(&self, name: &str) -> Result<(), ManageError> {
        let _one_at_a_time = self.manage.lock().await;
        if self.broken_api(name)?.is_some() {
            self.persist_delete(name).await?;
            self.broken.write().expect("broken lock").remove(name);
            crate::cluster::sync::changed(self).await;
            return Ok(());
        }
        let old = self.api_owned(name)?;
        self.persist_delete(name).await?;
        old.stop().await;
        self.subscriptions.write().expect("subscriptions lock").remove(name);
        crate::cluster::sync::changed(self).await;
        Ok(())
    }

    /// Gives an API-created webhook subscription a new secret; the old one keeps signing for `overlap`.
    pub async fn rotate_secret(&self, name: &str, overlap: Duration) -> Result<(String, Timestamp), ManageError> {
        let _one_at_a_time = self.manage.lock().await;
        let old = self.api_owned(name)?;
        let mut sub = old.config.clone();
        let now = Timestamp::now();
        let expires_at = now.plus(overlap);
        let secret = sub
            .sink
            .rotate_secret(now, expires_at)
            .ok_or_else(|| ManageError::NoSecret(sub.sink.type_name()))?;
        self.persist_update(&sub).await?;
        old.stop().await;
        self.launch_with(sub, Origin::Api, old.status.clone()).await?;
        crate::cluster::sync::changed(self).await;
        Ok((secret, expires_at))
    }

    /// Delivers a synthetic `tributary.test` event through the subscription's sink, now, outside the log.
    pub async fn send_test_event(&self, name: &str) -> Result<AttemptReport, ManageError> {
        let h = self
            .subscription(name)
            .ok_or_else(|| ManageError::NotFound(name.to_owned()))?;
        let now = Timestamp::now();
        let data = serde_json::json!({"message": "a test event from tributary", "subscription": name});
        let id = EventId::of_json_event(
            "tributary.test",
            None,
            &serde_json::json!({"at": now.to_rfc3339(), "data": data}),
        );
        let event = StoredEvent {
            seq: 0,
            source: "tributary".into(),
            ingested_at: now,
            event: NewEvent {
                id,
                kind: "tributary.test".into(),
                key: None,
                occurred_at: Some(now),
                position: None,
                payload: Vec::new(),
                data,
                tenant: h.config.tenant.clone(),
                retracts: None,
            },
        };
        let delivery = Delivery {
            subscription: Arc::from(name),
            message_id: format!("msg_test_{}", &id.to_hex()[..24]),
            event: Arc::new(event),
            attempt: 1,
        };
        Ok(h.sink.deliver(&delivery).await)
    }

    /// Queues these events for (re-)delivery to one subscription, now. Dead letters among them are removed.
    pub async fn requeue(&self, name: &str, seqs: Vec<Seq>) -> Result<usize, ManageError> {
        let h = self
            .subscription(name)
            .ok_or_else(|| ManageError::NotFound(name.to_owned()))?;
        let n = seqs.len();
        for chunk in seqs.chunks(10_000) {
            h.send(Control::Requeue(chunk.to_vec())).await?;
        }
        Ok(n)
    }
}
