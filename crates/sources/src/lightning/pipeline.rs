//! The ingest pipeline shared by `tributary import`, the `gossip_store` follower and the ZeroMQ collectors:
//! raw messages in, [`AppendBatch`]es out.
//!
//! One call to [`Pipeline::process`] decodes a batch on all cores, verifies it on all cores
//! ([`Verifier::verify_batch`]), turns what passed into events and what failed into problems
//! ([`events`](super::events)), and builds the events on all cores. CPU-heavy: async callers run it in
//! `spawn_blocking`.
//!
//! Channel updates whose announcement is not known yet wait in a bounded in-memory queue
//! ([`Pipeline::new`]'s `capacity`, 100,000 by default); when the announcement arrives (in any later batch,
//! from any input of the source), they are verified and emitted under the observer that saw them. When
//! the queue is full the oldest waiting update is dropped as an `unknown_channel` problem, and
//! [`Pipeline::flush_waiting`] does the same for every waiting update (end of an import). Every change of
//! the queue is in the [`Output`] (`waiting_put`, `waiting_remove`) and is written to the store's meta
//! entries in the same atomic write as the batch's checkpoint, so the queue survives any stop, a SIGKILL
//! included; a source puts it back at start ([`Pipeline::restore_waiting`]). The verifier's known channels survive
//! restarts: [`Pipeline::restore`] loads them from the meta entries the node's graph keeper keeps
//! ([`known`](super::known)) and reads only the log after them.

use super::events::{self, KIND_CHANNEL_ANNOUNCEMENT, Origin, Problem};
use super::gossip::{Gossip, ShortChannelId};
use super::verify::{ChannelKeys, Network, Verifier, VerifyError, par_map};
use super::{decode, gossip_id, known};
use bitcoin::secp256k1::PublicKey;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use tributary_core::store::{AppendBatch, Checkpoint};
use tributary_core::{EventId, Log, NewEvent, Reject, StoreError, Timestamp};

/// The announcement just before in a stream (a 4101 belongs to it): its id and channel.
type Announced = Option<(EventId, ShortChannelId)>;

/// Default bound of the queue of updates waiting for their announcement.
pub const DEFAULT_WAITING: usize = 100_000;
/// Upper bound of the queue of updates waiting for their announcement.
pub const MAX_WAITING: usize = 1_000_000;

/// A waiting update as it is kept across a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingRecord {
    /// The type-prefixed `channel_update`, hex.
    pub raw_hex: String,
    /// Where it was read.
    pub position: String,
    /// The input's timestamp.
    pub timestamp: Option<u32>,
    /// Who saw it.
    pub observer: String,
    /// When (Unix microseconds).
    pub seen_at: i64,
}

/// Counters of everything a pipeline processed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Messages given to [`Pipeline::process`].
    pub messages: u64,
    /// Gossip events produced (new or not: the store tells).
    pub events: u64,
    /// Core Lightning records that are not events (4102–4105, 4107, a 4101 without its announcement).
    pub skipped: u64,
    /// Updates that waited for their announcement and were then verified.
    pub released: u64,
    /// Updates waiting now.
    pub waiting: u64,
    /// Problems, by reason code.
    pub problems: BTreeMap<String, u64>,
}

/// Events of one observer.
#[derive(Debug, Default)]
pub struct Group {
    /// Who saw them.
    pub observer: String,
    /// When.
    pub seen_at: Timestamp,
    /// Gossip and problem events, in input order.
    pub events: Vec<NewEvent>,
}

/// What one call produced: the caller's own group first, then updates released for other observers.
#[derive(Debug, Default)]
pub struct Output {
    /// Groups of events by observer; the first is the caller's.
    pub groups: Vec<Group>,
    /// Rejects (problems) to keep with the source.
    pub rejects: Vec<Reject>,
    /// Updates that started waiting, by serial: kept in the store with the batch.
    pub waiting_put: Vec<(u64, WaitingRecord)>,
    /// Serials of kept updates that stopped waiting (released, or dropped as problems).
    pub waiting_remove: Vec<u64>,
}

/// The prefix of a source's kept waiting updates in the store's meta entries.
pub fn waiting_prefix(source: &str) -> String {
    format!("lightning/{source}/waiting/")
}

/// The meta key of the kept waiting update `serial` (fixed-width hex: key order is arrival order).
pub fn waiting_key(source: &str, serial: u64) -> String {
    format!("{}{serial:016x}", waiting_prefix(source))
}

impl Output {
    fn group(&mut self, observer: &str, seen_at: Timestamp) -> &mut Group {
        let i = match self.groups.iter().position(|g| g.observer == observer) {
            Some(i) => i,
            None => {
                self.groups.push(Group {
                    observer: observer.to_owned(),
                    seen_at,
                    events: Vec::new(),
                });
                self.groups.len() - 1
            }
        };
        &mut self.groups[i]
    }

    /// The atomic writes, one per observer. The last carries the rejects, the checkpoint and the
    /// changes to the kept waiting updates, so the position moves only once everything before it is
    /// written: a crash in between re-reads the input, and the events already written are duplicates.
    pub fn into_batches(self, source: &str, checkpoint: Option<Checkpoint>) -> Vec<AppendBatch> {
        let mut meta: Vec<(String, Option<String>)> = Vec::new();
        for (serial, record) in &self.waiting_put {
            let text = serde_json::to_string(record).expect("a waiting record serializes");
            meta.push((waiting_key(source, *serial), Some(text)));
        }
        meta.extend(self.waiting_remove.iter().map(|s| (waiting_key(source, *s), None)));
        let mut batches: Vec<AppendBatch> = self
            .groups
            .into_iter()
            .map(|g| AppendBatch {
                source: source.to_owned(),
                observer: g.observer,
                seen_at: g.seen_at,
                events: g.events,
                ..AppendBatch::default()
            })
            .collect();
        if batches.is_empty() && (checkpoint.is_some() || !self.rejects.is_empty() || !meta.is_empty()) {
            batches.push(AppendBatch {
                source: source.to_owned(),
                observer: source.to_owned(),
                seen_at: Timestamp::now(),
                ..AppendBatch::default()
            });
        }
        if let Some(last) = batches.last_mut() {
            last.rejects = self.rejects;
            last.checkpoint = checkpoint;
            last.meta = meta;
        }
        batches
    }
}

struct Waiting {
    serial: u64,
    update: Gossip,
    origin: Origin,
    observer: String,
    seen_at: Timestamp,
}

impl Waiting {
    /// The form kept in the store.
    fn record(&self) -> Option<WaitingRecord> {
        Some(WaitingRecord {
            raw_hex: super::wire::to_hex(self.update.raw()?),
            position: self.origin.position.clone(),
            timestamp: self.origin.timestamp,
            observer: self.observer.clone(),
            seen_at: self.seen_at.0,
        })
    }
}

/// Updates waiting for their channel's announcement, oldest dropped first.
struct WaitingQueue {
    capacity: usize,
    next: u64,
    order: VecDeque<(u64, ShortChannelId)>,
    by_scid: HashMap<ShortChannelId, Vec<Waiting>>,
    len: usize,
}

impl WaitingQueue {
    /// Queues `w` under a new serial (returned) and drops the oldest beyond the capacity.
    fn push(&mut self, scid: ShortChannelId, mut w: Waiting) -> (u64, Vec<Waiting>) {
        w.serial = self.next;
        let serial = w.serial;
        (serial, self.push_kept(scid, w))
    }

    /// Queues `w` under its own serial (a kept one, at start).
    fn push_kept(&mut self, scid: ShortChannelId, w: Waiting) -> Vec<Waiting> {
        self.next = self.next.max(w.serial + 1);
        self.order.push_back((w.serial, scid));
        self.by_scid.entry(scid).or_default().push(w);
        self.len += 1;
        let mut dropped = Vec::new();
        while self.len > self.capacity {
            let Some((serial, scid)) = self.order.pop_front() else {
                break;
            };
            if let Some(v) = self.by_scid.get_mut(&scid)
                && let Some(i) = v.iter().position(|w| w.serial == serial)
            {
                dropped.push(v.remove(i));
                self.len -= 1;
                if v.is_empty() {
                    self.by_scid.remove(&scid);
                }
            }
        }
        if self.order.len() > 2 * self.capacity + 1024 {
            let by = &self.by_scid;
            self.order
                .retain(|(s, scid)| by.get(scid).is_some_and(|v| v.iter().any(|w| w.serial == *s)));
        }
        dropped
    }

    fn take(&mut self, scid: ShortChannelId) -> Vec<Waiting> {
        let v = self.by_scid.remove(&scid).unwrap_or_default();
        self.len -= v.len();
        v
    }

    fn drain(&mut self) -> Vec<Waiting> {
        self.order.clear();
        self.len = 0;
        let mut all: Vec<Waiting> = self.by_scid.drain().flat_map(|(_, v)| v).collect();
        all.sort_by_key(|w| w.serial);
        all
    }
}

/// Decoding, verification and event building for one source.
pub struct Pipeline {
    verifier: Verifier,
    verify: bool,
    waiting: WaitingQueue,
    announced: Announced,
    /// What was processed so far.
    pub stats: Stats,
}

impl Pipeline {
    /// A pipeline for `network`; `verify = false` skips signature and chain checks (trusted input only);
    /// at most `capacity` updates wait for their announcement.
    pub fn new(network: Network, verify: bool, capacity: usize) -> Self {
        Self {
            verifier: Verifier::new(network),
            verify,
            waiting: WaitingQueue {
                capacity: capacity.max(1),
                next: 0,
                order: VecDeque::new(),
                by_scid: HashMap::new(),
                len: 0,
            },
            announced: None,
            stats: Stats::default(),
        }
    }

    /// The verifier (its known channels).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Makes the channels of every stored `ln.channel_announcement` of this network known again, so that
    /// their updates verify after a restart (announcements were verified when stored, unless imported
    /// with `--no-verify`): from the [`known`](super::known) chunks, then the log after them; the whole
    /// log when there are none or they cannot be read. Returns how many channels are known.
    pub async fn restore(&mut self, store: &dyn Log) -> Result<usize, StoreError> {
        let network = self.verifier.network();
        let mut from = 1;
        if let Some(progress) = store.get_meta(known::KNOWN_CHANNELS_KEY).await? {
            match known::parse_progress(&progress) {
                Some((seq, chunks)) => match self.load_known(store, chunks).await? {
                    Ok(()) => from = seq + 1,
                    Err(reason) => {
                        tracing::warn!(%reason, "the known channels kept in the store cannot be read; reading the whole log instead");
                        self.verifier = Verifier::new(network);
                    }
                },
                None => {
                    tracing::warn!(value = %progress, "the known-channels entry cannot be read; reading the whole log instead")
                }
            }
        }
        loop {
            let page = store.read_from(from, 4096).await?;
            let Some(last) = page.last() else { break };
            from = last.seq + 1;
            for e in page.iter().filter(|e| e.event.kind == KIND_CHANNEL_ANNOUNCEMENT) {
                if let Ok(Gossip::ChannelAnnouncement(m)) = decode(&e.event.payload)
                    && m.chain_hash == network.chain_hash()
                    && let (Ok(node_1), Ok(node_2)) =
                        (PublicKey::from_slice(&m.node_id_1), PublicKey::from_slice(&m.node_id_2))
                {
                    self.verifier.add_channel(ChannelKeys {
                        short_channel_id: m.short_channel_id,
                        node_1,
                        node_2,
                    });
                }
            }
        }
        Ok(self.verifier.channel_count())
    }

    async fn load_known(&mut self, store: &dyn Log, chunks: u64) -> Result<Result<(), String>, StoreError> {
        let chain = self.verifier.network().chain_hash();
        let mut seen = 0u64;
        for (key, text) in store.meta_prefix(known::KNOWN_CHUNK_PREFIX).await? {
            let index = key[known::KNOWN_CHUNK_PREFIX.len()..].parse::<u64>().ok();
            if index.is_none_or(|n| n >= chunks) {
                continue;
            }
            let channels = match known::decode_chunk(&text) {
                Ok(c) => c,
                Err(e) => return Ok(Err(format!("{key}: {e}"))),
            };
            seen += 1;
            for c in channels.into_iter().filter(|c| c.chain_hash == chain) {
                if let (Ok(node_1), Ok(node_2)) = (
                    PublicKey::from_slice(&c.node_ids[0]),
                    PublicKey::from_slice(&c.node_ids[1]),
                ) {
                    self.verifier.add_channel(ChannelKeys {
                        short_channel_id: c.short_channel_id,
                        node_1,
                        node_2,
                    });
                }
            }
        }
        if seen != chunks {
            return Ok(Err(format!("{chunks} chunks expected, {seen} found")));
        }
        Ok(Ok(()))
    }

    fn record_problem(&mut self, out: &mut Output, p: Problem, observer: &str, seen_at: Timestamp) {
        *self
            .stats
            .problems
            .entry(events::reason_code(&p.reject.reason).to_owned())
            .or_default() += 1;
        out.rejects.push(p.reject);
        out.group(observer, seen_at).events.push(p.event);
    }

    /// Processes one batch of type-prefixed messages seen by `observer` at `seen_at`, in input order.
    pub fn process(&mut self, items: Vec<(Vec<u8>, Origin)>, observer: &str, seen_at: Timestamp) -> Output {
        let mut out = Output::default();
        out.group(observer, seen_at);
        self.stats.messages += items.len() as u64;
        let decoded = par_map(&items, |(m, _)| decode(m));
        let mut gossips = Vec::with_capacity(items.len());
        let mut slots: Vec<Result<usize, VerifyError>> = Vec::with_capacity(items.len());
        for d in decoded {
            slots.push(
                d.map(|g| {
                    gossips.push(g);
                    gossips.len() - 1
                })
                .map_err(VerifyError::from),
            );
        }
        let verdicts = if self.verify {
            self.verifier.verify_batch(&gossips)
        } else {
            vec![Ok(()); gossips.len()]
        };
        let mut verdicts: Vec<Option<Result<(), VerifyError>>> = verdicts.into_iter().map(Some).collect();
        let mut gossips: Vec<Option<Gossip>> = gossips.into_iter().map(Some).collect();
        // Sequential pass: problems, waiting updates, and each 4101's announcement.
        let mut to_build: Vec<(Gossip, usize, Announced)> = Vec::new();
        let mut new_channels = Vec::new();
        for (i, slot) in slots.into_iter().enumerate() {
            let (raw, origin) = &items[i];
            let gi = match slot {
                Ok(gi) => gi,
                Err(e) => {
                    let p = events::problem(raw, &e, origin, observer);
                    self.record_problem(&mut out, p, observer, seen_at);
                    continue;
                }
            };
            let g = gossips[gi].take().expect("each gossip is used once");
            match verdicts[gi].take().expect("one verdict per gossip") {
                Ok(()) => {}
                Err(VerifyError::UnknownChannel { short_channel_id }) => {
                    let w = Waiting {
                        serial: 0,
                        update: g,
                        origin: origin.clone(),
                        observer: observer.to_owned(),
                        seen_at,
                    };
                    let record = w.record();
                    let (serial, dropped) = self.waiting.push(short_channel_id, w);
                    out.waiting_put.extend(record.map(|r| (serial, r)));
                    for d in dropped {
                        self.drop_waiting(&mut out, d);
                    }
                    continue;
                }
                Err(e) => {
                    let p = events::problem(raw, &e, origin, observer);
                    self.record_problem(&mut out, p, observer, seen_at);
                    continue;
                }
            }
            let announced = self.announced.take();
            if let Gossip::ChannelAnnouncement(m) = &g {
                let id = gossip_id(raw).expect("a decoded message has a type");
                self.announced = Some((id, m.short_channel_id));
                new_channels.push(m.short_channel_id);
            }
            to_build.push((g, i, announced));
        }
        let built = par_map(&to_build, |(g, i, announced)| {
            events::gossip_event(g, &items[*i].0, &items[*i].1, *announced)
        });
        let group = out.group(observer, seen_at);
        for e in built {
            match e {
                Some(e) => group.events.push(e),
                None => self.stats.skipped += 1,
            }
        }
        self.stats.events += out.groups[0].events.len() as u64;
        if self.verify && self.waiting.len > 0 {
            for scid in new_channels {
                let released = self.waiting.take(scid);
                if !released.is_empty() {
                    self.release(&mut out, released);
                }
            }
        }
        self.stats.waiting = self.waiting.len as u64;
        out
    }

    fn release(&mut self, out: &mut Output, released: Vec<Waiting>) {
        out.waiting_remove.extend(released.iter().map(|w| w.serial));
        let updates: Vec<Gossip> = released.iter().map(|w| w.update.clone()).collect();
        let verdicts = self.verifier.verify_batch(&updates);
        for (w, v) in released.into_iter().zip(verdicts) {
            let raw = w.update.raw().expect("waiting updates are channel updates").to_vec();
            match v {
                Ok(()) => {
                    if let Some(e) = events::gossip_event(&w.update, &raw, &w.origin, None) {
                        self.stats.released += 1;
                        self.stats.events += 1;
                        out.group(&w.observer, w.seen_at).events.push(e);
                    }
                }
                Err(e) => {
                    let p = events::problem(&raw, &e, &w.origin, &w.observer);
                    self.record_problem(out, p, &w.observer, w.seen_at);
                }
            }
        }
    }

    fn drop_waiting(&mut self, out: &mut Output, w: Waiting) {
        out.waiting_remove.push(w.serial);
        let raw = w.update.raw().expect("waiting updates are channel updates").to_vec();
        let scid = w.update.short_channel_id().expect("a channel update has a channel");
        let e = VerifyError::UnknownChannel { short_channel_id: scid };
        let p = events::problem(&raw, &e, &w.origin, &w.observer);
        self.record_problem(out, p, &w.observer, w.seen_at);
    }

    /// Puts back the updates kept in the store (by serial, oldest first): those whose channel is known
    /// now are verified and emitted, the others wait again (the oldest become `unknown_channel` problems
    /// when the queue is full). A record that no longer decodes as a channel update is dropped with a
    /// warning. The output says which kept records to forget.
    pub fn restore_waiting(&mut self, records: Vec<(u64, WaitingRecord)>) -> Output {
        let mut out = Output::default();
        let mut ready = Vec::new();
        for (serial, r) in records {
            let update = match hex::decode(&r.raw_hex).ok().map(|raw| decode(&raw)) {
                Some(Ok(g @ Gossip::ChannelUpdate(_))) => g,
                _ => {
                    tracing::warn!(position = %r.position, "a kept waiting update does not decode as a channel_update; dropped");
                    out.waiting_remove.push(serial);
                    continue;
                }
            };
            let scid = update.short_channel_id().expect("a channel update has a channel");
            let w = Waiting {
                serial,
                update,
                origin: Origin {
                    position: r.position,
                    timestamp: r.timestamp,
                },
                observer: r.observer,
                seen_at: Timestamp(r.seen_at),
            };
            if self.verifier.channel(scid).is_some() {
                ready.push(w);
            } else {
                for d in self.waiting.push_kept(scid, w) {
                    self.drop_waiting(&mut out, d);
                }
            }
        }
        if !ready.is_empty() {
            self.release(&mut out, ready);
        }
        self.stats.waiting = self.waiting.len as u64;
        out
    }

    /// Turns every waiting update into an `unknown_channel` problem (end of an import).
    pub fn flush_waiting(&mut self) -> Output {
        let mut out = Output::default();
        for w in self.waiting.drain() {
            self.drop_waiting(&mut out, w);
        }
        self.stats.waiting = 0;
        out
    }
}
