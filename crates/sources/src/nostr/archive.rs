//! Archiving one relay: a connection, a probe of how the relay reads `since` and `until`, a live
//! subscription (`since` = a minute before the session's start, so nothing published while the history
//! is walked is missed, nor an event that reaches the relay a little late), then per filter the walk
//! over the history up to that `since`, in `created_at` windows from the relay's cursor ([`super::window`]), then live events until the
//! connection ends. Each connection starts by learning how the relay reads `since` and `until`
//! ([`super::bounds`]). Every window's events are committed with the cursor it completes, in one append, so a
//! restart asks again only from the first window not completed.
//!
//! A relay cannot stall the others or grow memory: it has its own task, its messages are capped in size
//! and queued a few at a time ([`super::conn`]), an answer's events are flushed every [`FLUSH_BYTES`],
//! every wait has a timeout, and rejects are stored up to [`REJECTS_PER_SESSION`] per connection (then
//! only counted). A session that fails is retried with a backoff (1 s doubling to 5 min), its reason
//! shown as the relay's problem in `/health`.

use super::bounds::{self, Bounds};
use super::checkpoint::{Cursor, Position};
use super::conn::{Connection, Incoming};
use super::message::RelayMessage;
use super::verify::{self, Verdict};
use super::{NostrFilter, RelayUrl, Walk, window::Answer};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tributary_core::store::{AppendBatch, Checkpoint};
use tributary_core::{NewEvent, Reject, SourceError, StoreError, Timestamp};

/// Pending raw events are verified and appended past this many bytes, even inside an answer.
pub const FLUSH_BYTES: usize = 4 << 20;
/// Live events are appended after this long, or after [`LIVE_BATCH`] of them.
const LIVE_FLUSH: Duration = Duration::from_millis(200);
const LIVE_BATCH: usize = 500;
/// While live, the cursors move to `now - LIVE_GRACE` (events reach relays a little late) every
/// [`LIVE_CHECKPOINT`].
const LIVE_GRACE: u64 = 60;
const LIVE_CHECKPOINT: Duration = Duration::from_secs(30);
/// Rejects stored per connection; later ones are counted only.
pub const REJECTS_PER_SESSION: usize = 1000;
/// A walk forgets the ids it has met past this many (it then asks some windows once more).
const SEEN_CAP: usize = 200_000;
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What every relay of a source shares.
pub struct Shared {
    /// The source's name.
    pub source: String,
    /// The filters with their position keys.
    pub filters: Vec<(String, NostrFilter)>,
    /// Events per window.
    pub req_limit: u64,
    /// The per-message wait.
    pub timeout: Duration,
    /// The largest event.
    pub max_event_bytes: usize,
    /// How to connect.
    pub dial: super::conn::Dial,
    /// The log.
    pub store: Arc<dyn tributary_core::Log>,
    /// Stop.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// Problems and details by relay.
    pub report: tributary_core::SourceReport,
    /// Where relay URLs met in archived events go (discovery), if on.
    pub discovered: Option<tokio::sync::mpsc::Sender<Vec<String>>>,
}

/// Why a session ended.
enum Failure {
    /// The relay: reported, retried.
    Relay(String),
    /// The store: stops the source.
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Counters shown in `/v1/sources` under the relay.
#[derive(Default)]
struct Stats {
    events: u64,
    duplicates: u64,
    rejected: BTreeMap<&'static str, u64>,
    unasked: u64,
    notices: u64,
    last_notice: Option<String>,
    windows: u64,
    saturated: Vec<u64>,
}

/// What a window's answer brought.
struct WindowAnswer {
    /// The `created_at` of every event matching the window.
    created: Vec<u64>,
    /// How many were new to the walk.
    new: usize,
    /// The highest (created_at, id) met.
    newest: Option<(u64, [u8; 32])>,
    /// The events of the last part of the answer, not stored yet.
    last: Vec<super::NostrEvent>,
}

/// Archives one relay.
pub struct RelayArchive {
    shared: Arc<Shared>,
    url: RelayUrl,
    position: Position,
    stats: Stats,
}

/// One connection's state.
struct Session {
    conn: Connection,
    /// Live events not yet appended, and when the first of them came.
    live: Vec<String>,
    first_live: Option<Instant>,
    live_bytes: usize,
    live_since: u64,
    /// Rejects to store with the next append.
    rejects: Vec<Reject>,
    rejects_left: usize,
    next_sub: u64,
    /// How the relay reads `since` and `until`.
    bounds: Bounds,
}

fn now_secs() -> u64 {
    Timestamp::now().unix_secs().max(0) as u64
}

impl RelayArchive {
    /// The archive of `url` from its stored position.
    pub fn new(shared: Arc<Shared>, url: RelayUrl, position: Position) -> Self {
        Self {
            shared,
            url,
            position,
            stats: Stats::default(),
        }
    }

    /// Archives until shutdown, reconnecting after failures; only a store failure ends it early.
    pub async fn run(mut self) -> Result<(), SourceError> {
        let shutdown = self.shared.shutdown.clone();
        let mut backoff = Duration::from_secs(1);
        while !shutdown.is_cancelled() {
            let started = Instant::now();
            let ended = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                ended = self.session() => ended,
            };
            match ended {
                Err(Failure::Store(error)) => {
                    return Err(SourceError::Store {
                        source_name: self.shared.source.clone(),
                        error,
                    });
                }
                Err(Failure::Relay(why)) => {
                    tracing::info!(relay = %self.url, %why, "nostr relay session ended; retrying in {backoff:?}");
                    self.shared.report.problem(self.url.as_str(), Some(why));
                    self.detail(json!({"state": "retrying"}));
                }
                Ok(()) => {}
            }
            if started.elapsed() > Duration::from_secs(60) {
                backoff = Duration::from_secs(1);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        Ok(())
    }

    fn detail(&self, fields: Value) {
        let mut fields = fields;
        let s = &self.stats;
        let cursors: BTreeMap<&String, u64> = self.position.cursors.iter().map(|(k, c)| (k, c.through)).collect();
        let extra = json!({
            "network": self.url.network(),
            "events": s.events,
            "duplicates": s.duplicates,
            "rejected": s.rejected,
            "unasked": s.unasked,
            "notices": s.notices,
            "last_notice": s.last_notice,
            "windows": s.windows,
            "saturated_seconds": s.saturated,
            "cursors": cursors,
        });
        if let (Value::Object(f), Value::Object(e)) = (&mut fields, extra) {
            f.extend(e);
        }
        self.shared.report.merge_detail(self.url.as_str(), fields);
    }

    async fn session(&mut self) -> Result<(), Failure> {
        let conn = self.shared.dial.open(&self.url).await.map_err(Failure::Relay)?;
        let t0 = now_secs();
        let mut s = Session {
            conn,
            live: Vec::new(),
            first_live: None,
            live_bytes: 0,
            live_since: t0.saturating_sub(LIVE_GRACE),
            rejects: Vec::new(),
            rejects_left: REJECTS_PER_SESSION,
            next_sub: 0,
            bounds: Bounds::default(),
        };
        // The bounds first, before the live subscription can bring events: each filter over the whole
        // history until one finds an event (some relays answer an empty filter with nothing).
        let probes: Vec<Value> = (self.shared.filters.iter())
            .map(|(_, f)| {
                let mut f = f.clone();
                f.since = Some(f.since.unwrap_or(0));
                f.to_json()
            })
            .collect();
        let probed = bounds::probe(&mut s.conn, probes, self.shared.timeout)
            .await
            .map_err(Failure::Relay)?;
        s.bounds = probed.bounds;
        for m in probed.other {
            self.other(&mut s, m).await?;
        }
        // Live from a little before the walk's end: an event reaching the relay late, with a
        // `created_at` inside a window already asked, still comes.
        let live: Vec<Value> = (self.shared.filters.iter())
            .filter(|(_, f)| f.until.is_none_or(|u| u >= s.live_since))
            .map(|(_, f)| {
                let mut f = f.clone();
                f.since = Some(f.since.unwrap_or(0).max(s.live_since));
                f.to_json()
            })
            .collect();
        if !live.is_empty() {
            let mut req = vec![json!("REQ"), json!("live")];
            req.extend(live);
            s.conn.send(&Value::Array(req)).await.map_err(Failure::Relay)?;
        }
        self.detail(json!({"state": "walking", "bounds": {
            "since_exclusive": s.bounds.since_exclusive,
            "until_exclusive": s.bounds.until_exclusive,
        }}));
        let shared = self.shared.clone();
        let walk_to = s.live_since;
        for (key, filter) in &shared.filters {
            self.walk(&mut s, key, filter, walk_to).await?;
        }
        self.detail(json!({"state": "live"}));
        self.shared.report.problem(self.url.as_str(), None);
        self.live(&mut s).await
    }

    /// Walks one filter's history from its cursor to `t0` (where the live subscription starts).
    async fn walk(&mut self, s: &mut Session, key: &str, filter: &NostrFilter, t0: u64) -> Result<(), Failure> {
        let from = self
            .position
            .cursors
            .get(key)
            .map_or(0, |c| c.through.saturating_add(1));
        let start = filter.since.unwrap_or(0).max(from);
        let end = filter.until.unwrap_or(u64::MAX).min(t0);
        if start > end {
            return Ok(());
        }
        let limit = self.shared.req_limit as usize;
        let mut walk = Walk::new(start, end, limit, end - start + 1);
        let mut seen: HashSet<[u8; 32]> = HashSet::new();
        while let Some((since, until)) = walk.next() {
            let mut f = filter.clone();
            f.since = Some(since);
            f.until = Some(until);
            f.limit = Some(self.shared.req_limit);
            s.next_sub += 1;
            let sub = format!("w{}", s.next_sub);
            let mut asked = f.clone();
            let (ask_since, ask_until) = s.bounds.ask(since, until);
            asked.since = Some(ask_since);
            asked.until = Some(ask_until);
            s.conn
                .send(&json!(["REQ", sub, asked.to_json()]))
                .await
                .map_err(Failure::Relay)?;
            let answer = self.answer(s, &sub, &f, &mut seen).await;
            let _ = s.conn.send(&json!(["CLOSE", sub])).await;
            let WindowAnswer {
                created,
                new,
                newest,
                last,
            } = answer?;
            self.stats.windows += 1;
            let moved = match walk.answered(&created, new) {
                Some(Answer::Complete { through }) => Some(through),
                Some(Answer::Saturated { second, through }) => {
                    tracing::warn!(relay = %self.url, second, "a one-second window came back full: events of that second beyond the relay's cap may be missing");
                    if self.stats.saturated.len() < 100 {
                        self.stats.saturated.push(second);
                    }
                    Some(through)
                }
                Some(Answer::More) | None => None,
            };
            if let Some(through) = moved {
                let id = newest.filter(|(at, _)| *at == through).map(|(_, id)| id);
                self.position.cursors.insert(key.to_owned(), Cursor { through, id });
                seen.clear();
            }
            self.store_events(s, last, moved.is_some()).await?;
            if moved.is_some() {
                self.shared.report.problem(self.url.as_str(), None);
                self.detail(json!({"state": "walking"}));
            }
            if seen.len() > SEEN_CAP {
                seen.clear();
            }
        }
        Ok(())
    }

    /// Reads the answer to window `sub` until its EOSE, appending its events as they add up (the cursor
    /// moves only after, with the walk and the answer's last events).
    async fn answer(
        &mut self,
        s: &mut Session,
        sub: &str,
        window: &NostrFilter,
        seen: &mut HashSet<[u8; 32]>,
    ) -> Result<WindowAnswer, Failure> {
        let patience = (self.shared.timeout * 4).max(Duration::from_secs(60));
        let deadline = Instant::now() + patience;
        let mut raws: Vec<String> = Vec::new();
        let mut bytes = 0;
        let mut created = Vec::new();
        let mut new = 0;
        let mut newest: Option<(u64, [u8; 32])> = None;
        loop {
            let wait = self
                .shared
                .timeout
                .min(deadline.saturating_duration_since(Instant::now()));
            let done = match s.conn.recv(wait).await {
                None => {
                    return Err(Failure::Relay(format!(
                        "no answer to a REQ window within {} ms",
                        self.shared.timeout.as_millis()
                    )));
                }
                Some(Incoming::Message(RelayMessage::Event { sub: got, event })) if got == sub => {
                    bytes += event.len();
                    raws.push(event);
                    false
                }
                Some(Incoming::Message(RelayMessage::Eose { sub: got })) if got == sub => true,
                Some(Incoming::Message(RelayMessage::Closed { sub: got, message })) if got == sub => {
                    return Err(Failure::Relay(format!("the relay closed a REQ window: {message}")));
                }
                Some(other) => {
                    self.other(s, other).await?;
                    false
                }
            };
            if done || bytes >= FLUSH_BYTES || raws.len() >= 2 * self.shared.req_limit as usize {
                let events = self.verified(s, std::mem::take(&mut raws)).await?;
                bytes = 0;
                let mut kept = Vec::with_capacity(events.len());
                for e in events {
                    if !window.matches(&e) {
                        self.stats.unasked += 1;
                        continue;
                    }
                    created.push(e.created_at);
                    newest = newest.max(Some((e.created_at, e.id)));
                    // An event this walk has met already (a window asked again) is not stored again.
                    if seen.insert(e.id) {
                        new += 1;
                        kept.push(e);
                    }
                }
                if done || created.len() >= 2 * self.shared.req_limit as usize {
                    // The last events go with the cursor they complete, in one append.
                    return Ok(WindowAnswer {
                        created,
                        new,
                        newest,
                        last: kept,
                    });
                }
                self.store_events(s, kept, false).await?;
            }
            if Instant::now() >= deadline {
                return Err(Failure::Relay(format!(
                    "a REQ window did not end within {} s",
                    patience.as_secs()
                )));
            }
        }
    }

    /// Live events until the connection ends.
    async fn live(&mut self, s: &mut Session) -> Result<(), Failure> {
        let mut last_checkpoint = Instant::now();
        // A connection can die without a word (a NAT, a Tor circuit): every checkpoint sends a ping, and
        // the relay must have sent some frame within this long.
        let silence = 2 * LIVE_CHECKPOINT + self.shared.timeout;
        loop {
            let flush_at = s.first_live.map(|t| t + LIVE_FLUSH);
            let checkpoint_at = last_checkpoint + LIVE_CHECKPOINT;
            let wake = flush_at.map_or(checkpoint_at, |f| f.min(checkpoint_at));
            match s.conn.recv(wake.saturating_duration_since(Instant::now())).await {
                None => {}
                Some(Incoming::Ended(why)) => {
                    self.flush_live(s, false).await?;
                    return Err(Failure::Relay(why));
                }
                Some(m) => self.other(s, m).await?,
            }
            let due = last_checkpoint.elapsed() >= LIVE_CHECKPOINT;
            let flush = s.first_live.is_some_and(|t| t.elapsed() >= LIVE_FLUSH);
            if due || flush {
                if due {
                    let quiet = s.conn.silent_for();
                    if quiet > silence {
                        self.flush_live(s, false).await?;
                        return Err(Failure::Relay(format!(
                            "nothing from the relay for {} s, not even a pong",
                            quiet.as_secs()
                        )));
                    }
                    s.conn.ping().await.map_err(Failure::Relay)?;
                    // Only as far as the connection is known to have been alive.
                    let through = now_secs().saturating_sub(quiet.as_secs()).saturating_sub(LIVE_GRACE);
                    if through >= s.live_since {
                        for (key, _) in &self.shared.filters {
                            let c = self.position.cursors.entry(key.clone()).or_default();
                            if c.through < through {
                                *c = Cursor { through, id: None };
                            }
                        }
                    }
                    last_checkpoint = Instant::now();
                    self.detail(json!({"state": "live"}));
                }
                self.flush_live(s, due).await?;
            }
        }
    }

    /// A message that is not part of the window being read: live events, notices, garbage.
    async fn other(&mut self, s: &mut Session, m: Incoming) -> Result<(), Failure> {
        match m {
            Incoming::Ended(why) => return Err(Failure::Relay(why)),
            Incoming::Garbage { why, excerpt } => {
                self.count_reject("garbage");
                self.store_rejects(
                    s,
                    vec![Reject {
                        position: self.url.to_string(),
                        reason: format!("garbage: {why} (from {})", self.url),
                        excerpt,
                        at: Timestamp::now(),
                    }],
                )
                .await?;
            }
            Incoming::Message(RelayMessage::Event { sub, event }) => {
                if sub == "live" {
                    s.live_bytes += event.len();
                    s.live.push(event);
                    s.first_live.get_or_insert_with(Instant::now);
                    if s.live_bytes >= FLUSH_BYTES || s.live.len() >= LIVE_BATCH {
                        self.flush_live(s, false).await?;
                    }
                } else {
                    // An event for a window already closed: counted, not kept.
                    self.stats.unasked += 1;
                }
            }
            Incoming::Message(RelayMessage::Closed { sub, message }) if sub == "live" => {
                return Err(Failure::Relay(format!(
                    "the relay closed the live subscription: {message}"
                )));
            }
            Incoming::Message(RelayMessage::Notice { message }) => {
                tracing::debug!(relay = %self.url, %message, "NOTICE");
                self.stats.notices += 1;
                self.stats.last_notice = Some(message);
            }
            Incoming::Message(RelayMessage::Auth { .. }) => {
                self.stats.last_notice = Some("the relay asks for NIP-42 authentication".into());
            }
            Incoming::Message(_) => {}
        }
        Ok(())
    }

    /// Verifies and appends the live events held, moving the cursors with them when `checkpoint`.
    async fn flush_live(&mut self, s: &mut Session, checkpoint: bool) -> Result<(), Failure> {
        let raws = std::mem::take(&mut s.live);
        s.live_bytes = 0;
        s.first_live = None;
        let events = self.verified(s, raws).await?;
        let live_filters: Vec<&NostrFilter> = self.shared.filters.iter().map(|(_, f)| f).collect();
        let events: Vec<_> = (events.into_iter())
            .filter(|e| {
                let asked = live_filters.iter().any(|f| f.matches(e));
                if !asked {
                    self.stats.unasked += 1;
                }
                asked
            })
            .collect();
        self.store_events(s, events, checkpoint).await
    }

    /// Parses and verifies raw events off the async threads; failures are stored as rejects.
    async fn verified(&mut self, s: &mut Session, raws: Vec<String>) -> Result<Vec<super::NostrEvent>, Failure> {
        if raws.is_empty() {
            return Ok(Vec::new());
        }
        let max = self.shared.max_event_bytes;
        let verdicts: Vec<Verdict> = tokio::task::spawn_blocking(move || verify::check_all(&raws, max))
            .await
            .map_err(|e| Failure::Relay(format!("verifying an answer failed ({e}); asking again")))?;
        let mut events = Vec::with_capacity(verdicts.len());
        let mut rejects = Vec::new();
        for v in verdicts {
            match v {
                Ok(e) => events.push(e),
                Err((error, excerpt)) => {
                    self.count_reject(error.reason());
                    rejects.push(verify::reject(self.url.as_str(), &error, excerpt));
                }
            }
        }
        s.add_rejects(rejects);
        Ok(events)
    }

    fn count_reject(&mut self, reason: &'static str) {
        *self.stats.rejected.entry(reason).or_default() += 1;
    }

    async fn store_rejects(&mut self, s: &mut Session, rejects: Vec<Reject>) -> Result<(), Failure> {
        s.add_rejects(rejects);
        self.store_events(s, Vec::new(), false).await
    }

    /// Appends events (and the rejects waiting), with the position when `checkpoint`.
    async fn store_events(
        &mut self,
        s: &mut Session,
        events: Vec<super::NostrEvent>,
        checkpoint: bool,
    ) -> Result<(), Failure> {
        let rejects = s.take_rejects();
        if events.is_empty() && rejects.is_empty() && !checkpoint {
            return Ok(());
        }
        if let Some(tx) = &self.shared.discovered {
            let urls = super::discover::relay_urls(&events);
            if !urls.is_empty() {
                let _ = tx.try_send(urls);
            }
        }
        let events: Vec<NewEvent> = events.iter().map(verify::shape).collect();
        let n = events.len();
        let outcome = self.append(events, rejects, checkpoint).await?;
        self.stats.events += outcome.accepted() as u64;
        self.stats.duplicates += (n - outcome.accepted()) as u64;
        Ok(())
    }

    async fn append(
        &mut self,
        events: Vec<NewEvent>,
        rejects: Vec<Reject>,
        checkpoint: bool,
    ) -> Result<tributary_core::store::AppendOutcome, Failure> {
        let batch = AppendBatch {
            source: self.shared.source.clone(),
            observer: self.url.to_string(),
            seen_at: Timestamp::now(),
            events,
            rejects,
            checkpoint: checkpoint.then(|| Checkpoint {
                partition: self.url.to_string(),
                position: self.position.render(),
            }),
            meta: Vec::new(),
            fence: None,
        };
        Ok(self.shared.store.append(batch).await?)
    }
}

impl Session {
    /// Keeps rejects to store with the next append, while this session's allowance lasts.
    fn add_rejects(&mut self, rejects: Vec<Reject>) {
        let take = rejects.len().min(self.rejects_left);
        self.rejects_left -= take;
        self.rejects.extend(rejects.into_iter().take(take));
    }

    fn take_rejects(&mut self) -> Vec<Reject> {
        std::mem::take(&mut self.rejects)
    }
}
