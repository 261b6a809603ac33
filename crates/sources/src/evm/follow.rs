//! Following the chain through one provider: deep blocks by `eth_getLogs` ranges, the reorganisation
//! window block by block with parent-hash checks, walk-backs and retractions.

use super::abi::Decoder;
use super::checkpoint::{Entry, State};
use super::config::{EvmSourceConfig, FromBlock};
use super::event::{KIND, log_event, log_id, retraction};
use super::rpc::{Rpc, RpcError};
use super::shared::Shared;
use super::wire::{self, Header, Log};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tributary_core::store::{AppendBatch, Checkpoint};
use tributary_core::{NewEvent, Reject, SourceError, Timestamp};

/// Blocks of the window read per round (one batch of headers, one batch of `eth_getLogs`).
const WINDOW_BATCH: u64 = 32;
/// Events per append in range mode (split at block boundaries).
const APPEND_EVENTS: usize = 5000;
/// Successes at one range before it doubles again.
const GROW_AFTER: u32 = 4;
/// How much of a bad log a reject keeps.
const EXCERPT: usize = 1024;

/// What a step failed with.
#[derive(Debug)]
enum StepError {
    /// The provider failed or answered badly: retried after a backoff.
    Rpc(RpcError),
    /// The answers did not fit together (a reorganisation while reading): retried at once.
    Inconsistent(String),
    /// The provider serves another chain, or something else no retry fixes.
    Fatal(String),
    /// The store refused a write.
    Store(tributary_core::StoreError),
}

impl From<RpcError> for StepError {
    fn from(e: RpcError) -> Self {
        Self::Rpc(e)
    }
}

impl From<tributary_core::StoreError> for StepError {
    fn from(e: tributary_core::StoreError) -> Self {
        Self::Store(e)
    }
}

/// What a step did.
enum Progress {
    /// Moved on (or changed the range): step again.
    Moved,
    /// Caught up with the head: wait for the next one.
    CaughtUp,
}

/// One provider's follower.
pub struct Follower {
    source: String,
    cfg: Arc<EvmSourceConfig>,
    rpc: Rpc,
    decoder: Arc<Decoder>,
    store: Arc<dyn tributary_core::Log>,
    shutdown: CancellationToken,
    shared: Arc<Shared>,
    state: State,
    /// Whether `state` was read from (or written to) the store; when not, `from_block` decides.
    started: bool,
    range: u64,
    successes: u32,
    chain_checked: bool,
    last_reject: Option<String>,
    /// The provider's head at the last step.
    head: Option<u64>,
    /// Failed steps in a row, and in all.
    failures: u32,
    errors: u64,
    last_error: Option<(String, Timestamp)>,
}

impl Follower {
    /// A follower of `rpc`, resuming from the stored checkpoint of its partition if any.
    pub async fn new(shared: Arc<Shared>, rpc: Rpc) -> Result<Self, SourceError> {
        let (source, cfg, decoder) = (shared.source.clone(), shared.cfg.clone(), shared.decoder.clone());
        let (store, shutdown) = (shared.store.clone(), shared.shutdown.clone());
        let stored = store
            .checkpoints(&source)
            .await
            .map_err(|error| SourceError::Store {
                source_name: source.clone(),
                error,
            })?
            .into_iter()
            .find(|c| c.partition == rpc.shown());
        let (state, started) = match stored {
            Some(c) => (
                State::parse(&c.position).map_err(|e| SourceError::Io {
                    source_name: source.clone(),
                    message: format!(
                        "the checkpoint of provider {} is unreadable ({e}): {:?}; remove the source's data or fix it",
                        rpc.shown(),
                        c.position
                    ),
                })?,
                true,
            ),
            None => (State::default(), false),
        };
        Ok(Self {
            range: cfg.max_block_range,
            source,
            cfg,
            rpc,
            decoder,
            store,
            shutdown,
            shared,
            state,
            started,
            successes: 0,
            chain_checked: false,
            last_reject: None,
            head: None,
            failures: 0,
            errors: 0,
            last_error: None,
        })
    }

    /// Runs until shutdown; `Err` only for a store failure or a provider of another chain.
    pub async fn run(mut self) -> Result<(), SourceError> {
        tracing::info!(source = %self.source, provider = %self.rpc.shown(), next = self.state.next, resumed = self.started, "evm provider follower starting");
        let shutdown = self.shutdown.clone();
        loop {
            let step = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                s = self.step() => s,
            };
            let wait = match step {
                Ok(progress) => {
                    if self.failures > 0 {
                        tracing::info!(source = %self.source, provider = %self.rpc.shown(), "provider answers again");
                    }
                    self.failures = 0;
                    self.last_reject = None;
                    self.shared.report.problem(self.rpc.shown(), None);
                    self.publish("following");
                    match progress {
                        Progress::Moved => continue,
                        Progress::CaughtUp => self.cfg.poll_interval(),
                    }
                }
                Err(StepError::Inconsistent(why)) => {
                    tracing::debug!(source = %self.source, provider = %self.rpc.shown(), %why, "answers did not fit together; reading again");
                    self.failures += 1;
                    backoff(self.failures.min(3))
                }
                Err(StepError::Rpc(e)) => {
                    self.failures += 1;
                    self.errors += 1;
                    tracing::warn!(source = %self.source, provider = %self.rpc.shown(), attempt = self.failures, error = %e, "provider request failed; retrying");
                    self.last_error = Some((e.to_string(), Timestamp::now()));
                    // A provider failing three times in a row degrades the source in /health until
                    // it answers again.
                    if self.failures >= 3 {
                        let problem = format!("failing ({} attempts in a row): {e}", self.failures);
                        self.shared.report.problem(self.rpc.shown(), Some(problem));
                    }
                    self.publish("failing");
                    let reject = reject_of(format!("provider {}", self.rpc.shown()), e.to_string(), e.excerpt());
                    self.record_reject(reject).await.map_err(|e| self.store_err(e))?;
                    backoff(self.failures)
                }
                Err(StepError::Fatal(why)) => {
                    self.errors += 1;
                    self.last_error = Some((why.clone(), Timestamp::now()));
                    self.shared
                        .report
                        .problem(self.rpc.shown(), Some(format!("stopped: {why}")));
                    self.publish("stopped");
                    tracing::error!(source = %self.source, provider = %self.rpc.shown(), %why, "provider follower stopped; fix the config and restart tributary");
                    let reject = reject_of(format!("provider {}", self.rpc.shown()), why.clone(), String::new());
                    self.record_reject(reject).await.map_err(|e| self.store_err(e))?;
                    return Err(SourceError::Io {
                        source_name: self.source.clone(),
                        message: why,
                    });
                }
                Err(StepError::Store(e)) => return Err(self.store_err(e)),
            };
            // A WebSocket provider's new head ends the wait at once; polling is the fallback.
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
                _ = self.rpc.new_head(), if self.failures == 0 => {}
            }
        }
    }

    /// Shows this provider's status under the source in `/v1/sources`.
    fn publish(&self, state: &str) {
        let lag = self.head.map(|h| (h + 1).saturating_sub(self.state.next));
        self.shared.report.detail(
            self.rpc.shown(),
            json!({
                "state": state,
                "heads": self.rpc.heads(),
                "head": self.head,
                "next_block": self.state.next,
                "lag_blocks": lag,
                "block_range": self.range,
                "errors": self.errors,
                "last_error": self.last_error.as_ref().map(|(e, _)| e),
                "last_error_at": self.last_error.as_ref().map(|(_, at)| at.to_string()),
            }),
        );
    }

    fn store_err(&self, error: tributary_core::StoreError) -> SourceError {
        SourceError::Store {
            source_name: self.source.clone(),
            error,
        }
    }

    /// Records a provider problem once per streak (again only when the message changes).
    async fn record_reject(&mut self, reject: Reject) -> Result<(), tributary_core::StoreError> {
        if self.last_reject.as_deref() == Some(reject.reason.as_str()) {
            return Ok(());
        }
        self.last_reject = Some(reject.reason.clone());
        let batch = self.batch(Vec::new(), vec![reject], None);
        self.store.append(batch).await.map(|_| ())
    }

    fn batch(&self, events: Vec<NewEvent>, rejects: Vec<Reject>, state: Option<&State>) -> AppendBatch {
        AppendBatch {
            source: self.source.clone(),
            observer: self.rpc.shown().to_owned(),
            seen_at: Timestamp::now(),
            events,
            rejects,
            checkpoint: state.map(|s| Checkpoint {
                partition: self.rpc.shown().to_owned(),
                position: s.render(),
            }),
            meta: Vec::new(),
            fence: None,
        }
    }

    async fn step(&mut self) -> Result<Progress, StepError> {
        if !self.chain_checked {
            let id = wire::quantity(&self.rpc.call("eth_chainId", json!([])).await?, "eth_chainId")
                .map_err(|e| StepError::Rpc(self.rpc.invalid("eth_chainId", e, &Value::Null)))?;
            if id != self.cfg.chain_id {
                return Err(StepError::Fatal(format!(
                    "provider {} serves chain {id}, not chain_id = {}; remove it from rpc or fix chain_id",
                    self.rpc.shown(),
                    self.cfg.chain_id
                )));
            }
            self.chain_checked = true;
        }
        let head = self.head().await?;
        self.head = Some(head);
        if !self.started {
            self.state.next = match self.cfg.from_block {
                FromBlock::Number(n) => n,
                FromBlock::Latest => head,
                FromBlock::Finalized => self.header(json!("finalized")).await?.map(|h| h.number).unwrap_or(0),
            };
            self.started = true;
            tracing::info!(source = %self.source, provider = %self.rpc.shown(), from = self.state.next, "evm source starts with no checkpoint");
        }
        let Some(target) = head.checked_sub(self.cfg.confirmations) else {
            return Ok(Progress::CaughtUp);
        };
        let next = self.state.next;
        if next > target {
            // Caught up: is the last processed block still canonical?
            if let Some(tip) = self.state.tip_hash() {
                let now = self.header(quantity_param(next - 1)).await?;
                if now.map(|h| h.hash) != Some(tip) {
                    self.reorg().await?;
                    return Ok(Progress::Moved);
                }
            }
            return Ok(Progress::CaughtUp);
        }
        let safe = head.saturating_sub(self.cfg.reorg_depth);
        if next < safe {
            let end = next.saturating_add(self.range - 1).min(safe - 1).min(target);
            self.range_step(next, end).await
        } else {
            let end = next.saturating_add(WINDOW_BATCH - 1).min(target);
            self.window_step(next, end).await
        }
    }

    async fn head(&self) -> Result<u64, StepError> {
        let v = self.rpc.call("eth_blockNumber", json!([])).await?;
        wire::quantity(&v, "eth_blockNumber").map_err(|e| StepError::Rpc(self.rpc.invalid("eth_blockNumber", e, &v)))
    }

    async fn header(&self, which: Value) -> Result<Option<Header>, StepError> {
        let v = self.rpc.call("eth_getBlockByNumber", json!([which, false])).await?;
        wire::parse_header(&v).map_err(|e| StepError::Rpc(self.rpc.invalid("eth_getBlockByNumber", e, &v)))
    }

    /// Headers of `numbers`, in order (`None` for a block the provider does not have).
    async fn headers(&self, numbers: &[u64]) -> Result<Vec<Option<Header>>, StepError> {
        let mut out = Vec::with_capacity(numbers.len());
        for chunk in numbers.chunks(100) {
            let calls: Vec<(&str, Value)> = chunk
                .iter()
                .map(|n| ("eth_getBlockByNumber", json!([quantity_param(*n), false])))
                .collect();
            for (n, r) in chunk.iter().zip(self.rpc.batch(&calls).await?) {
                let v = r?;
                let h = wire::parse_header(&v)
                    .map_err(|e| StepError::Rpc(self.rpc.invalid("eth_getBlockByNumber", e, &v)))?;
                if let Some(h) = &h
                    && h.number != *n
                {
                    return Err(StepError::Rpc(self.rpc.invalid(
                        "eth_getBlockByNumber",
                        format!("asked for block {n}, got block {}", h.number),
                        &v,
                    )));
                }
                out.push(h);
            }
        }
        Ok(out)
    }

    fn filter(&self) -> serde_json::Map<String, Value> {
        let mut f = serde_json::Map::new();
        if !self.cfg.addresses.is_empty() {
            let lower: Vec<Value> = self
                .cfg
                .addresses
                .iter()
                .map(|a| Value::String(a.to_ascii_lowercase()))
                .collect();
            f.insert("address".into(), Value::Array(lower));
        }
        if !self.cfg.topics.is_empty() {
            let topics: Vec<Value> = self
                .cfg
                .topics
                .iter()
                .map(|p| {
                    if p.is_empty() {
                        Value::Null
                    } else {
                        Value::Array(p.iter().map(|t| Value::String(t.to_ascii_lowercase())).collect())
                    }
                })
                .collect();
            f.insert("topics".into(), Value::Array(topics));
        }
        f
    }

    /// Blocks `a..=b`, all deeper than the window: one `eth_getLogs` over the range.
    async fn range_step(&mut self, a: u64, b: u64) -> Result<Progress, StepError> {
        let mut filter = self.filter();
        filter.insert("fromBlock".into(), quantity_param(a));
        filter.insert("toBlock".into(), quantity_param(b));
        let answer = match self.rpc.call("eth_getLogs", json!([filter])).await {
            Ok(v) => v,
            Err(e) if e.is_range_limit() && b > a => {
                let span = b - a + 1;
                self.range = (span / 2).max(1);
                self.successes = 0;
                tracing::info!(source = %self.source, provider = %self.rpc.shown(), from = a, to = b, range = self.range, error = %e, "provider refused the block range; halving it");
                return Ok(Progress::Moved);
            }
            Err(e) => return Err(e.into()),
        };
        let mut logs =
            wire::parse_logs(&answer).map_err(|e| StepError::Rpc(self.rpc.invalid("eth_getLogs", e, &answer)))?;
        // `removed` logs in a range answer are of blocks this range does not keep.
        logs.retain(|l| !l.removed);
        let mut hashes: BTreeMap<u64, [u8; 32]> = BTreeMap::new();
        for l in &logs {
            if l.block_number < a || l.block_number > b {
                return Err(StepError::Rpc(self.rpc.invalid(
                    "eth_getLogs",
                    format!("asked for blocks {a} to {b}, got a log of block {}", l.block_number),
                    &answer,
                )));
            }
            if *hashes.entry(l.block_number).or_insert(l.block_hash) != l.block_hash {
                return Err(StepError::Inconsistent(format!(
                    "two hashes for block {}",
                    l.block_number
                )));
            }
        }
        logs.sort_by_key(|l| (l.block_number, l.log_index));
        logs.dedup_by_key(|l| (l.block_number, l.log_index));
        // The end of the range (its hash becomes the tip), the block before (continuity with the stored
        // tip), and the blocks whose logs lack `blockTimestamp`.
        let mut wanted: Vec<u64> = logs
            .iter()
            .filter(|l| l.block_timestamp.is_none())
            .map(|l| l.block_number)
            .collect();
        wanted.push(b);
        let tip = self.state.tip_hash();
        if tip.is_some() && a > 0 {
            wanted.push(a - 1);
        }
        wanted.sort_unstable();
        wanted.dedup();
        let headers: BTreeMap<u64, Header> = wanted
            .iter()
            .zip(self.headers(&wanted).await?)
            .filter_map(|(n, h)| h.map(|h| (*n, h)))
            .collect();
        if let Some(tip) = tip
            && a > 0
            && headers.get(&(a - 1)).map(|h| h.hash) != Some(tip)
        {
            self.reorg().await?;
            return Ok(Progress::Moved);
        }
        let end = *headers
            .get(&b)
            .ok_or_else(|| StepError::Inconsistent(format!("block {b} is gone")))?;
        for (n, h) in &hashes {
            if let Some(header) = headers.get(n)
                && header.hash != *h
            {
                return Err(StepError::Inconsistent(format!("block {n} changed while reading")));
            }
        }
        // Build and append, split at block boundaries.
        let mut events = Vec::new();
        let mut rejects = Vec::new();
        let mut i = 0;
        while i < logs.len() {
            let n = logs[i].block_number;
            let mut j = i;
            while j < logs.len() && logs[j].block_number == n {
                j += 1;
            }
            for l in &logs[i..j] {
                let ts = l
                    .block_timestamp
                    .or_else(|| headers.get(&n).map(|h| h.timestamp))
                    .unwrap_or(0);
                self.convert(l, ts, &mut events, &mut rejects);
            }
            let upper = logs[j - 1].log_index + 1;
            i = j;
            if events.len() >= APPEND_EVENTS && n < b {
                let mut state = self.state.clone();
                state.push(
                    Entry {
                        number: n,
                        hash: hashes[&n],
                        logs_upper: upper,
                    },
                    self.cfg.reorg_depth,
                );
                let batch = self.batch(std::mem::take(&mut events), std::mem::take(&mut rejects), Some(&state));
                self.store.append(batch).await?;
                self.state = state;
            }
        }
        let upper = logs
            .last()
            .filter(|l| l.block_number == b)
            .map_or(0, |l| l.log_index + 1);
        let mut state = self.state.clone();
        state.push(
            Entry {
                number: b,
                hash: end.hash,
                logs_upper: upper,
            },
            self.cfg.reorg_depth,
        );
        let batch = self.batch(events, rejects, Some(&state));
        self.store.append(batch).await?;
        self.state = state;
        self.successes += 1;
        if self.successes >= GROW_AFTER && self.range < self.cfg.max_block_range {
            self.range = (self.range * 2).min(self.cfg.max_block_range);
            self.successes = 0;
        }
        Ok(Progress::Moved)
    }

    /// Blocks `a..=c` of the window, one by one: headers (parent hashes checked), then their logs by hash.
    async fn window_step(&mut self, a: u64, c: u64) -> Result<Progress, StepError> {
        let numbers: Vec<u64> = (a..=c).collect();
        let mut headers = Vec::with_capacity(numbers.len());
        for h in self.headers(&numbers).await? {
            match h {
                Some(h) => headers.push(h),
                None => break,
            }
        }
        if headers.is_empty() {
            return Err(StepError::Inconsistent(format!("block {a} is not there yet")));
        }
        let mut parent = self.state.tip_hash();
        for h in &headers {
            if let Some(p) = parent
                && h.parent_hash != p
            {
                if h.number == a {
                    self.reorg().await?;
                    return Ok(Progress::Moved);
                }
                return Err(StepError::Inconsistent(format!(
                    "block {} changed while reading",
                    h.number
                )));
            }
            parent = Some(h.hash);
        }
        let filter = self.filter();
        let calls: Vec<(&str, Value)> = headers
            .iter()
            .map(|h| {
                let mut f = filter.clone();
                f.insert("blockHash".into(), Value::String(format!("0x{}", hex::encode(h.hash))));
                ("eth_getLogs", json!([f]))
            })
            .collect();
        let answers = self.rpc.batch(&calls).await?;
        let mut state = self.state.clone();
        let mut events = Vec::new();
        let mut rejects = Vec::new();
        for (h, answer) in headers.iter().zip(answers) {
            let answer = answer?;
            let mut logs =
                wire::parse_logs(&answer).map_err(|e| StepError::Rpc(self.rpc.invalid("eth_getLogs", e, &answer)))?;
            if logs.iter().any(|l| l.removed) {
                return Err(StepError::Inconsistent(format!(
                    "the provider reports logs of block {} removed",
                    h.number
                )));
            }
            if let Some(l) = logs
                .iter()
                .find(|l| l.block_hash != h.hash || l.block_number != h.number)
            {
                return Err(StepError::Rpc(self.rpc.invalid(
                    "eth_getLogs",
                    format!(
                        "asked for the logs of block {} (0x{}), got one of block {} (0x{})",
                        h.number,
                        hex::encode(h.hash),
                        l.block_number,
                        hex::encode(l.block_hash)
                    ),
                    &answer,
                )));
            }
            logs.sort_by_key(|l| l.log_index);
            logs.dedup_by_key(|l| l.log_index);
            for l in &logs {
                self.convert(l, h.timestamp, &mut events, &mut rejects);
            }
            state.push(
                Entry {
                    number: h.number,
                    hash: h.hash,
                    logs_upper: logs.last().map_or(0, |l| l.log_index + 1),
                },
                self.cfg.reorg_depth,
            );
        }
        let batch = self.batch(events, rejects, Some(&state));
        self.store.append(batch).await?;
        self.state = state;
        Ok(Progress::Moved)
    }

    /// A log as an event, or a reject when its ABI entry does not decode it.
    fn convert(&self, l: &Log, timestamp: u64, events: &mut Vec<NewEvent>, rejects: &mut Vec<Reject>) {
        match self.decoder.decode(&l.topics, &l.data) {
            Ok(decoded) => events.push(log_event(self.cfg.chain_id, l, timestamp, decoded)),
            Err(reason) => {
                let id = log_id(self.cfg.chain_id, &l.block_hash, l.log_index);
                if !self.shared.rejected.lock().expect("rejected lock").insert(id) {
                    return;
                }
                let shown = log_event(self.cfg.chain_id, l, timestamp, None);
                let text = shown.data.to_string();
                rejects.push(reject_of(
                    format!("{}:{}", l.block_number, l.log_index),
                    reason,
                    text[..text.len().min(EXCERPT)].to_owned(),
                ));
            }
        }
    }

    /// The stored tip is not canonical any more: walks back to the common ancestor, retracts the logs of
    /// the dropped blocks and moves the checkpoint to the ancestor, in one append.
    async fn reorg(&mut self) -> Result<(), StepError> {
        let numbers: Vec<u64> = self.state.recent.iter().map(|e| e.number).collect();
        let canonical = self.headers(&numbers).await?;
        let ancestor = self
            .state
            .recent
            .iter()
            .zip(&canonical)
            .rposition(|(e, h)| h.is_some_and(|h| h.hash == e.hash));
        let dropped: Vec<Entry> = match ancestor {
            Some(i) => self.state.recent.iter().skip(i + 1).copied().collect(),
            None => self.state.recent.iter().copied().collect(),
        };
        if dropped.is_empty() {
            // Every kept block is still canonical, yet a newer block's parent hash did not match: the
            // provider's chain does not link up (hardhat's `hardhat_mine` blocks have a zero parent
            // hash). Nothing to retract; retried after a backoff, reported as the provider's fault.
            let tip = self.state.recent.back().map_or(0, |e| e.number);
            return Err(StepError::Rpc(self.rpc.invalid(
                "eth_getBlockByNumber",
                format!(
                    "block {} does not link to block {tip}: its parentHash is not the hash of block {tip}, which is unchanged; the provider serves an inconsistent chain",
                    tip + 1
                ),
                &Value::Null,
            )));
        }
        let mut retractions = Vec::new();
        for e in dropped.iter().rev() {
            for idx in (0..e.logs_upper).rev() {
                let id = log_id(self.cfg.chain_id, &e.hash, idx);
                if let Some(stored) = self.store.get(&self.source, &id).await?
                    && stored.event.kind == KIND
                {
                    retractions.push(retraction(&stored.event));
                }
            }
        }
        let mut state = self.state.clone();
        let mut rejects = Vec::new();
        match ancestor {
            Some(i) => {
                state.recent.truncate(i + 1);
                state.next = state.recent[i].number + 1;
                tracing::warn!(source = %self.source, provider = %self.rpc.shown(), ancestor = state.next - 1, dropped = dropped.len(), retracted = retractions.len(), "chain reorganisation: dropped blocks' logs retracted");
            }
            None => {
                let from = dropped.first().map_or(self.state.next, |e| e.number);
                let reason = format!(
                    "chain reorganisation deeper than reorg_depth = {}: no block of {} to {} is still canonical; {} logs of those blocks were retracted, but logs of earlier replaced blocks may remain; following the new chain from block {from}. Raise reorg_depth, or replay the source from an earlier block",
                    self.cfg.reorg_depth,
                    dropped.first().map_or(0, |e| e.number),
                    dropped.last().map_or(0, |e| e.number),
                    retractions.len()
                );
                tracing::error!(source = %self.source, provider = %self.rpc.shown(), %reason, "deep reorganisation");
                // Until the node restarts: a gap the operator has to look at.
                self.shared
                    .report
                    .problem(&format!("{} (reorganisation)", self.rpc.shown()), Some(reason.clone()));
                rejects.push(reject_of(format!("block {from}"), reason, String::new()));
                state.recent.clear();
                state.next = from;
            }
        }
        let batch = self.batch(retractions, rejects, Some(&state));
        self.store.append(batch).await?;
        self.state = state;
        Ok(())
    }
}

fn quantity_param(n: u64) -> Value {
    Value::String(format!("0x{n:x}"))
}

fn reject_of(position: String, reason: String, excerpt: String) -> Reject {
    Reject {
        position,
        reason,
        excerpt,
        at: Timestamp::now(),
    }
}

/// Exponential backoff with jitter: 250 ms doubling to 30 s.
fn backoff(attempt: u32) -> Duration {
    let base = 250u64.saturating_mul(1 << attempt.min(7)).min(30_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    Duration::from_millis(base / 2 + nanos % (base / 2 + 1))
}
