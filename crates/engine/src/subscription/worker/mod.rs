//! The delivery loop of one subscription.
//!
//! The worker reads the log from its durable cursor, matches each event against the filter and hands
//! matching ones to the sink, at most `max_in_flight` at a time. Invariant: every event with
//! `seq <= cursor` is delivered, dead-lettered, filtered out, or recorded as *pending* in the store — and
//! the cursor is committed in the same atomic write as the pending entries that let it pass an event.
//!
//! - A retriable failure becomes a pending entry due after the schedule's next delay (or `Retry-After`).
//! - Exhausted retries and permanent failures become dead letters. `410 Gone` pauses the subscription and
//!   keeps the event pending.
//! - With `ordering = per_key`, an event waits while an earlier event of its key is in flight or pending;
//!   waiting behind a pending retry, it is parked as a pending entry itself, so a failing event holds back
//!   only its own key and the cursor keeps moving.
//! - A crash loses nothing: work not yet committed is re-read from the cursor and re-delivered with the
//!   same `webhook-id` (at-least-once).

mod outcome;

use super::config::{Ordering, Start, SubscriptionConfig};
use super::policy::{CircuitBreaker, RateLimit, RetryPolicy};
use super::status::SubscriptionStatus;
use futures_util::FutureExt;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tributary_core::store::{DeliveryUpdate, Pending};
use tributary_core::{AttemptReport, Delivery, EventId, Filter, Seq, Sink, Store, StoreError, StoredEvent, Timestamp};

/// Operator commands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    /// Stop starting deliveries.
    Pause,
    /// Start again; pending deliveries become due now.
    Resume,
    /// Deliver these events again, now (replay, dead-letter replay). Their dead letters are removed.
    Requeue(Vec<Seq>),
    /// Delete these dead letters without delivering them.
    Purge(Vec<Seq>),
}

/// The stable idempotency id of (subscription, event): `msg_` + 32 hex characters of
/// sha256(subscription ‖ 0x00 ‖ event id). The same on every attempt and across restarts.
pub fn message_id(subscription: &str, id: &EventId) -> String {
    let mut h = Sha256::new();
    h.update(subscription.as_bytes());
    h.update([0]);
    h.update(id.0);
    format!("msg_{}", &hex::encode(h.finalize())[..32])
}

struct Done {
    seq: Seq,
    /// The attempt within the current round of retries (1 = first).
    attempt: u32,
    /// Attempts recorded in earlier rounds.
    prior: u32,
    event: Arc<StoredEvent>,
    from_pending: bool,
    started: Timestamp,
    report: AttemptReport,
}

/// One subscription's delivery loop.
pub struct Worker {
    name: Arc<str>,
    config: SubscriptionConfig,
    filter: Filter,
    sink: Arc<dyn Sink>,
    store: Arc<dyn Store>,
    status: Arc<SubscriptionStatus>,
    retry: RetryPolicy,
    breaker: CircuitBreaker,
    rate: Option<RateLimit>,
    per_key: bool,
    paused: bool,

    /// Next sequence number to read from the log.
    read_pos: Seq,
    /// Events read ahead of processing.
    buffer: VecDeque<Arc<StoredEvent>>,
    /// Matching events read from the log and not yet finished or handed to `pending`.
    window: BTreeSet<Seq>,
    /// Window events ready to start.
    ready: VecDeque<Arc<StoredEvent>>,
    /// per_key: window events waiting behind an in-flight event of their key.
    key_queue: HashMap<String, VecDeque<Arc<StoredEvent>>>,
    /// per_key: keys with an event ready or in flight.
    busy_keys: HashSet<String>,
    /// Durable pending entries.
    pending: BTreeMap<Seq, Pending>,
    /// per_key: pending seqs by key.
    pending_by_key: HashMap<String, BTreeSet<Seq>>,
    /// Eligible pending entries by due time.
    due: BTreeSet<(i64, Seq)>,
    /// Pending entries with an attempt in flight.
    pending_in_flight: HashSet<Seq>,
    in_flight: JoinSet<Done>,
    /// Node-wide bound on deliveries in flight (`[limits] max_deliveries_in_flight`): an attempt holds a
    /// permit while the sink works on it.
    node_permits: Arc<Semaphore>,
    /// Sequence numbers in the dead-letter store (so the count stays exact across replays and purges).
    dead: BTreeSet<Seq>,
    /// Requeued events that had been delivered before: delivering one again is an attempt, not another
    /// delivered event (`events_delivered`). In memory: after a restart such a replay counts once more.
    redelivery: HashSet<Seq>,
    /// When the last "deliveries failing" warning was logged, and the failed attempts since (rate limit).
    failing: outcome::FailingLog,

    /// The cursor of the last delivery update handed to the store.
    submitted_cursor: Seq,
    /// The delivery update being written, if one is: one at a time, in order, while deliveries go on.
    committing: Option<tokio::task::JoinHandle<Result<Seq, StoreError>>>,
    /// Cancelled when the worker stops: a delivery commit retried while the store fails gives up then.
    stop: CancellationToken,
    /// When the worker last warned that the store fails (once per 30 s while it does).
    store_warned: Option<Instant>,
    update: DeliveryUpdate,
    pending_changes: BTreeMap<Seq, Option<Pending>>,
    /// Under a lease (several nodes on one store): what every delivery update carries.
    fence: Option<tributary_core::cluster::Fence>,
    /// Under a lease: the node's own stop, and how long deliveries in flight may finish when the
    /// lease is lost rather than the
    /// node stopping.
    lease: Option<(CancellationToken, Duration)>,
}

const WINDOW_MIN: usize = 1024;
const READ_BATCH: usize = 512;

impl Worker {
    /// Loads the subscription's durable state and prepares the loop. `filter` is the compiled
    /// `config.filter` (the caller refuses a subscription whose filter does not compile: fail closed).
    /// `fence`: the lease every delivery update is written under (several nodes on one store).
    pub async fn new(
        config: SubscriptionConfig,
        filter: Filter,
        sink: Arc<dyn Sink>,
        store: Arc<dyn Store>,
        status: Arc<SubscriptionStatus>,
        node_permits: Arc<Semaphore>,
        fence: Option<tributary_core::cluster::Fence>,
    ) -> Result<Self, StoreError> {
        let mut state = store.subscription_state(&config.name).await?;
        let is_new = state.cursor == 0
            && state.pending.is_empty()
            && store.get_meta(&started_key(&config.name)).await?.is_none();
        if is_new {
            if config.start == Start::End {
                state.cursor = store.last_seq();
                store
                    .commit_delivery(
                        &config.name,
                        DeliveryUpdate {
                            cursor: Some(state.cursor),
                            fence: fence.clone(),
                            ..Default::default()
                        },
                    )
                    .await?;
            }
            store
                .put_meta(&started_key(&config.name), &Timestamp::now().to_rfc3339())
                .await?;
        }
        let now = Instant::now();
        let mut w = Self {
            name: Arc::from(config.name.as_str()),
            filter,
            sink,
            store,
            status,
            retry: RetryPolicy::new(&config.retry),
            breaker: CircuitBreaker::new(config.circuit_breaker.clone()),
            rate: config.rate_limit.map(|r| RateLimit::new(r, now)),
            per_key: config.ordering == Ordering::PerKey,
            paused: state.paused,
            read_pos: state.cursor + 1,
            buffer: VecDeque::new(),
            window: BTreeSet::new(),
            ready: VecDeque::new(),
            key_queue: HashMap::new(),
            busy_keys: HashSet::new(),
            pending: BTreeMap::new(),
            pending_by_key: HashMap::new(),
            due: BTreeSet::new(),
            pending_in_flight: HashSet::new(),
            in_flight: JoinSet::new(),
            node_permits,
            dead: BTreeSet::new(),
            redelivery: HashSet::new(),
            failing: outcome::FailingLog::default(),
            submitted_cursor: state.cursor,
            committing: None,
            stop: CancellationToken::new(),
            store_warned: None,
            update: DeliveryUpdate::default(),
            pending_changes: BTreeMap::new(),
            fence,
            lease: None,
            config,
        };
        for p in state.pending {
            w.pending_insert(p);
        }
        let mut from = 0;
        loop {
            let page = w.store.dead_letters(&w.name, from, 10_000).await?;
            let Some(last) = page.last().map(|d| d.seq) else { break };
            w.dead.extend(page.iter().map(|d| d.seq));
            from = last + 1;
        }
        w.status.dead_letters.store(w.dead.len() as u64, Relaxed);
        w.status.in_flight.store(0, Relaxed); // counters carry over an update; in-flight ones do not
        w.status.cursor.store(w.submitted_cursor, Relaxed);
        w.refresh_status();
        Ok(w)
    }

    /// Runs under a lease whose fence was given to [`Worker::new`]: when `shutdown` of [`Worker::run`]
    /// comes without `node_stop` (the lease was lost), deliveries in flight have `lost_grace` rather
    /// than the whole grace period.
    pub fn under_lease(mut self, node_stop: CancellationToken, lost_grace: Duration) -> Self {
        self.lease = Some((node_stop, lost_grace));
        self
    }

    /// Runs until `shutdown`, then lets in-flight deliveries finish within `grace` and commits.
    pub async fn run(
        mut self,
        shutdown: CancellationToken,
        grace: Duration,
        control: &mut mpsc::Receiver<Control>,
    ) -> Result<(), StoreError> {
        let mut seq_watch = self.store.watch_seq();
        self.stop = shutdown.clone();
        loop {
            let now = Instant::now();
            let mut wake: Option<Instant> = None;
            if !self.paused {
                wake = match self.launch(now).await {
                    Ok(wake) => wake,
                    // A store that fails for a while (its server is down): read again in a second.
                    Err(e) if e.is_transient(self.store.as_ref()) => {
                        if self
                            .store_warned
                            .is_none_or(|at| at.elapsed() > Duration::from_secs(30))
                        {
                            tracing::warn!(subscription = %self.name, error = %e, "cannot read the store; trying again every second");
                            self.store_warned = Some(now);
                        }
                        Some(now + Duration::from_secs(1))
                    }
                    Err(e) => return Err(e),
                };
            }
            self.start_commit();
            let sleep_until = wake.map(tokio::time::Instant::from_std);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    match done {
                        Ok(done) => self.finish(done),
                        // Panics are caught inside the task; this is a cancelled task (never expected here).
                        Err(e) => tracing::error!(subscription = %self.name, error = %e, "delivery task ended without a result; the event will be re-delivered after restart"),
                    }
                    while let Some(next) = self.in_flight.try_join_next() {
                        match next {
                            Ok(done) => self.finish(done),
                            Err(e) => tracing::error!(subscription = %self.name, error = %e, "delivery task ended without a result; the event will be re-delivered after restart"),
                        }
                    }
                }
                cmd = control.recv() => match cmd {
                    Some(Control::Pause) => self.set_paused(true),
                    Some(Control::Resume) => self.set_paused(false),
                    Some(Control::Requeue(seqs)) => self.requeue(seqs).await?,
                    Some(Control::Purge(seqs)) => {
                        for seq in seqs {
                            if self.dead.remove(&seq) {
                                self.update.dead_remove.push(seq);
                                self.status.dead_letters.fetch_sub(1, Relaxed);
                            }
                        }
                    }
                    None => {}
                },
                // Always armed: an append that lands between reading and waiting is not missed, because
                // `changed` reports every publication since the last one it returned.
                changed = seq_watch.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                done = async { self.committing.as_mut().expect("guarded").await }, if self.committing.is_some() => {
                    self.committing = None;
                    let cursor = done.map_err(|e| StoreError::Backend { op: "delivery commit task", source: Box::new(e) })??;
                    self.status.cursor.store(cursor, Relaxed);
                }
                _ = sleep_opt(sleep_until) => {}
            }
        }
        // Drain: no new attempts; wait for those in flight until the grace period ends.
        let grace = match &self.lease {
            Some((node_stop, lost_grace)) if !node_stop.is_cancelled() => grace.min(*lost_grace),
            _ => grace,
        };
        let deadline = tokio::time::Instant::now() + grace;
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, self.in_flight.join_next()).await {
                Ok(Some(Ok(done))) => self.finish(done),
                Ok(Some(Err(_))) => {}
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(subscription = %self.name, in_flight = self.in_flight.len(), "grace period over; aborting deliveries in flight (they will be re-delivered after restart)");
                    self.in_flight.abort_all();
                    break;
                }
            }
        }
        if let Some(task) = self.committing.take() {
            task.await.map_err(|e| StoreError::Backend {
                op: "delivery commit task",
                source: Box::new(e),
            })??;
        }
        self.start_commit();
        if let Some(task) = self.committing.take() {
            let cursor = task.await.map_err(|e| StoreError::Backend {
                op: "delivery commit task",
                source: Box::new(e),
            })??;
            self.status.cursor.store(cursor, Relaxed);
        }
        Ok(())
    }

    /// Starts what may start now; returns when to look again if something is waiting on time.
    async fn launch(&mut self, now: Instant) -> Result<Option<Instant>, StoreError> {
        let max = (self.config.max_in_flight).clamp(1, super::config::bounds::MAX_IN_FLIGHT);
        let window_cap = WINDOW_MIN.max(max.saturating_mul(4));
        let wall = Timestamp::now();
        loop {
            if self.in_flight.len() >= max {
                return Ok(None);
            }
            if let Some(until) = self.breaker.open_until()
                && until > now
            {
                return Ok(Some(until));
            }
            // 1. A due pending entry.
            let due = self.due.first().copied();
            let next_pending = match due {
                Some((at, seq)) if at <= wall.0 => Some(seq),
                _ => None,
            };
            // 2. A window event ready to go.
            if next_pending.is_none() && self.ready.is_empty() {
                if self.window.len() >= window_cap || !self.read_more().await? {
                    return Ok(due.map(|(at, _)| now + Duration::from_micros(at.saturating_sub(wall.0).max(0) as u64)));
                }
                continue;
            }
            if !self.breaker.try_acquire(now) {
                // A probe is in flight: its completion wakes the loop.
                return Ok(None);
            }
            if let Some(rate) = self.rate.as_mut()
                && let Err(at) = rate.try_acquire(now)
            {
                return Ok(Some(at));
            }
            match next_pending {
                Some(seq) => {
                    // Read before the entry leaves the schedule, so a failed read leaves it due.
                    let stored = self.store.get_seq(seq).await?;
                    self.due.remove(&due.expect("due entry exists"));
                    let p = self.pending.get(&seq).cloned().expect("due entries are pending");
                    match stored {
                        Some(event) => {
                            self.pending_in_flight.insert(seq);
                            if let Some(k) = &p.key {
                                self.busy_keys.insert(k.clone());
                            }
                            self.spawn(Arc::new(event), p.attempts + 1, p.prior_attempts, true);
                        }
                        None => {
                            tracing::error!(subscription = %self.name, seq, "pending delivery refers to a missing event; dropping it");
                            self.pending_remove(seq);
                        }
                    }
                }
                None => {
                    let event = self.ready.pop_front().expect("ready is not empty");
                    self.spawn(event, 1, 0, false);
                }
            }
        }
    }

    /// Reads and routes more events from the log. False when there is nothing new.
    async fn read_more(&mut self) -> Result<bool, StoreError> {
        if self.buffer.is_empty() {
            if self.read_pos > self.store.last_seq() {
                return Ok(false);
            }
            let events = self.store.read_from(self.read_pos, READ_BATCH).await?;
            if events.is_empty() {
                return Ok(false);
            }
            self.buffer.extend(events.into_iter().map(Arc::new));
        }
        // Route a slice of the buffer.
        for _ in 0..64 {
            let Some(event) = self.buffer.pop_front() else {
                break;
            };
            self.read_pos = event.seq + 1;
            if !self.filter.matches(&event) {
                continue;
            }
            let seq = event.seq;
            let key = event.event.key.clone().filter(|_| self.per_key);
            match key {
                Some(k) if self.pending_by_key.get(&k).is_some_and(|s| !s.is_empty()) => {
                    // Behind a pending retry of its key: park durably.
                    self.pending_insert(Pending {
                        seq,
                        key: Some(k),
                        attempts: 0,
                        due_at: Timestamp(0),
                        prior_attempts: 0,
                    });
                    self.record_pending(seq);
                }
                Some(k) if self.busy_keys.contains(&k) => {
                    self.window.insert(seq);
                    self.key_queue.entry(k).or_default().push_back(event);
                }
                key => {
                    // The key is claimed from now until this event is settled or pending.
                    if let Some(k) = key {
                        self.busy_keys.insert(k);
                    }
                    self.window.insert(seq);
                    self.ready.push_back(event);
                }
            }
        }
        Ok(true)
    }

    fn spawn(&mut self, event: Arc<StoredEvent>, attempt: u32, prior: u32, from_pending: bool) {
        let delivery = Delivery {
            subscription: self.name.clone(),
            message_id: message_id(&self.name, &event.event.id),
            event,
            attempt: prior + attempt,
        };
        let sink = self.sink.clone();
        let permits = self.node_permits.clone();
        self.status.in_flight.fetch_add(1, Relaxed);
        self.in_flight.spawn(async move {
            // The semaphore is never closed; without a permit (impossible) the attempt runs anyway.
            let _permit = permits.acquire_owned().await.ok();
            let started = Timestamp::now();
            // A sink that panics fails this attempt (retriable) instead of wedging the cursor.
            let report = match std::panic::AssertUnwindSafe(sink.deliver(&delivery)).catch_unwind().await {
                Ok(report) => report,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "no message".into());
                    tracing::error!(subscription = %delivery.subscription, seq = delivery.event.seq, panic = %what, "the sink panicked; the attempt counts as failed and will be retried");
                    AttemptReport::failed(
                        tributary_core::DeliveryStatus::Retriable,
                        None,
                        Duration::from_micros(Timestamp::now().micros_since(started)),
                        format!("the sink panicked ({what}); this is a bug in tributary, please report it"),
                    )
                }
            };
            Done {
                seq: delivery.event.seq,
                attempt,
                prior,
                event: delivery.event,
                from_pending,
                started,
                report,
            }
        });
    }

    /// The cursor: everything before the oldest unfinished window event (or everything read).
    fn cursor(&self) -> Seq {
        match self.window.first() {
            Some(first) => first - 1,
            None => self.read_pos - 1,
        }
    }

    /// Hands what changed to the store as one atomic delivery update, unless one is still being written
    /// (then it waits for the next round, accumulating).
    fn start_commit(&mut self) {
        if self.committing.is_some() {
            return;
        }
        let cursor = self.cursor();
        if cursor != self.submitted_cursor {
            self.update.cursor = Some(cursor);
        }
        for (seq, change) in std::mem::take(&mut self.pending_changes) {
            match change {
                Some(p) => self.update.pending_put.push(p),
                None => self.update.pending_remove.push(seq),
            }
        }
        if self.update.is_empty() {
            return;
        }
        let mut update = std::mem::take(&mut self.update);
        update.fence = self.fence.clone();
        self.submitted_cursor = cursor;
        let (store, name, stop) = (self.store.clone(), self.name.clone(), self.stop.clone());
        self.committing = Some(tokio::spawn(async move {
            // A store that fails for a while is retried until it answers, or until the worker stops
            // (then the deliveries since the last commit are made again after restart).
            let mut delay = Duration::from_millis(100);
            loop {
                match store.commit_delivery(&name, update.clone()).await {
                    Ok(()) => return Ok(cursor),
                    Err(e) if e.is_transient(store.as_ref()) && !stop.is_cancelled() => {
                        tracing::warn!(subscription = %name, error = %e, retry_in_ms = delay.as_millis() as u64, "cannot record delivery progress; retrying");
                        tokio::select! {
                            _ = stop.cancelled() => return Err(e),
                            _ = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                    Err(e) => return Err(e),
                }
            }
        }));
    }

    fn refresh_status(&self) {
        self.status.pending.store(self.pending.len() as u64, Relaxed);
        self.status.paused.store(self.paused, Relaxed);
        self.status.breaker_open.store(self.breaker.is_open(), Relaxed);
    }
}

fn started_key(name: &str) -> String {
    format!("subscription/{name}/started")
}

async fn sleep_opt(until: Option<tokio::time::Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
