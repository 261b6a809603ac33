//! Importing a gossip file (gossip_store, GSP, compact or hex) into a `lightning` source: the one
//! implementation behind `tributary import` on a stopped node's store and `POST /v1/lightning/import` on
//! a running node.
//!
//! A reader thread reads the input in 4 MiB chunks with the format's [`Reader`] and runs the [`Pipeline`]
//! (decode, verify and build events on all cores) on batches of about 1,000 messages; the async side
//! appends each batch atomically while the next one is verified (a bounded channel of 4 batches between
//! them: backpressure). Updates still waiting for their channel at the end become `unknown_channel`
//! problems. The input is any [`Read`]: a file, or a request body ([`ChannelReader`]).

use crate::lightning::events::{KIND_PROBLEM_CHANNEL, KIND_PROBLEM_NODE, Origin, reason_code};
use crate::lightning::formats::FormatError;
use crate::lightning::pipeline::Output;
use crate::lightning::{Format, Network, Pipeline, Reader, detect_format};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;
use tributary_core::store::AppendItem;
use tributary_core::{Log, Reject, Timestamp};
use utoipa::ToSchema;

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The `lightning` source the events belong to.
    pub source: String,
    /// The format, or `None` to detect it from the first bytes.
    pub format: Option<Format>,
    /// Check signatures and chain (turn off for trusted input only).
    pub verify: bool,
    /// The chain.
    pub network: Network,
    /// The observer recorded, or the source name.
    pub collector: Option<String>,
    /// At most this many updates wait for their announcement.
    pub max_waiting: usize,
    /// Keep the updates waiting for their announcement in the store while the import runs (an import on
    /// a stopped node's store). An import into a running node keeps them in memory only, so that it
    /// never touches the waiting queue of the running source; an interrupted import is simply run again
    /// (what it stored is then a duplicate).
    pub keep_waiting: bool,
}

/// What an import did.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, ToSchema)]
pub struct ImportSummary {
    /// The format read.
    pub format: String,
    /// Messages read from the input.
    pub messages: u64,
    /// New gossip events stored.
    pub accepted: u64,
    /// Gossip events known already (an observation was added).
    pub duplicates: u64,
    /// Rejected messages and records, by reason code (each kept as a reject and, when the bytes are a
    /// message, an `ln.problem.*` event).
    pub rejected: BTreeMap<String, u64>,
    /// Core Lightning records that are not events.
    pub skipped: u64,
    /// Updates that waited for their announcement and then verified.
    pub released_after_announcement: u64,
    /// Deleted gossip_store records stepped over.
    pub deleted_records: u64,
    /// Seconds taken.
    pub seconds: f64,
    /// Messages per second.
    pub messages_per_sec: f64,
}

impl ImportSummary {
    /// The human-readable summary of importing `input` (a path, or a description of the input).
    pub fn text(&self, input: &str) -> String {
        let mut s = format!(
            "imported {input} ({}): {} messages in {:.2} s ({:.0} msg/s)\n  accepted    {:>9}\n  duplicates  {:>9}\n",
            self.format, self.messages, self.seconds, self.messages_per_sec, self.accepted, self.duplicates
        );
        let total: u64 = self.rejected.values().sum();
        s.push_str(&format!("  rejected    {total:>9}\n"));
        for (reason, n) in &self.rejected {
            s.push_str(&format!("    {reason:<20} {n:>7}\n"));
        }
        if self.skipped > 0 {
            s.push_str(&format!(
                "  skipped     {:>9}  (Core Lightning records that are not events)\n",
                self.skipped
            ));
        }
        if self.released_after_announcement > 0 {
            s.push_str(&format!(
                "  verified after their announcement arrived: {}\n",
                self.released_after_announcement
            ));
        }
        s
    }
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The first bytes match no known format.
    #[error("cannot tell the format of the input; pass the format (gossip_store, gsp, compact or hex)")]
    UnknownFormat,
    /// Reading the input failed.
    #[error("cannot read the input: {0}")]
    Read(#[from] std::io::Error),
    /// The store refused a write.
    #[error(transparent)]
    Store(#[from] tributary_core::StoreError),
    /// The reader thread stopped unexpectedly.
    #[error("the import's reader stopped: {0}")]
    Reader(String),
}

/// A batch handed from the reader thread to the appender.
struct Chunk {
    out: Output,
    messages: u64,
    bytes: u64,
}

fn read_error(e: FormatError, at: u64) -> Reject {
    Reject {
        position: format!("offset {at}"),
        reason: format!("malformed: {e}"),
        excerpt: String::new(),
        at: Timestamp::now(),
    }
}

/// Reads up to `buf.len()` bytes, fewer only at the end of the input.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads, verifies and sends batches; returns the pipeline (with its final counters) and the number of
/// deleted records stepped over.
fn read_and_verify(
    mut input: impl Read,
    format: Format,
    mut pipeline: Pipeline,
    observer: &str,
    keep_waiting: bool,
    tx: tokio::sync::mpsc::Sender<Chunk>,
) -> Result<(Pipeline, u64), ImportError> {
    const BATCH: usize = 1000;
    const READ: usize = 4 << 20;
    let mut reader = Reader::new(format);
    let (mut buf, mut base, mut eof) = (Vec::<u8>::new(), 0u64, false);
    let send = |mut out: Output, messages: u64, bytes: u64| {
        if !keep_waiting {
            out.waiting_put.clear();
            out.waiting_remove.clear();
        }
        tx.blocking_send(Chunk { out, messages, bytes })
            .map_err(|_| ImportError::Reader("the store writer stopped".into()))
    };
    loop {
        let (mut items, mut rejects) = (Vec::with_capacity(BATCH), Vec::new());
        let start = reader.offset();
        let mut need_more = false;
        while items.len() < BATCH {
            let at = (reader.offset() - base) as usize;
            if at > buf.len() {
                // An oversized record was stepped over by its length: continue after it in the input.
                need_more = true;
                break;
            }
            match reader.next(&buf[at..], eof) {
                Ok(Some(rec)) if rec.is_store_ended() => {}
                Ok(Some(rec)) => {
                    let origin = Origin {
                        position: rec.position(),
                        timestamp: rec.timestamp,
                    };
                    items.push((rec.msg.into_owned(), origin));
                }
                Ok(None) => {
                    need_more = true;
                    break;
                }
                Err(e) => {
                    let fatal = e.is_fatal();
                    rejects.push(read_error(e, reader.offset()));
                    if fatal {
                        eof = true;
                        need_more = true;
                        break;
                    }
                }
            }
        }
        let n = items.len() as u64;
        if n > 0 || !rejects.is_empty() {
            let mut out = pipeline.process(items, observer, Timestamp::now());
            out.rejects.extend(rejects);
            send(out, n, reader.offset() - start)?;
        }
        if !need_more {
            continue;
        }
        if eof {
            break;
        }
        // Compact only before reading more: draining after every batch would move the whole buffer.
        let consumed = (reader.offset() - base) as usize;
        if consumed > buf.len() {
            // Step over the rest of the skipped record by reading past it (the input may not seek).
            let skip = (consumed - buf.len()) as u64;
            buf.clear();
            let skipped = std::io::copy(&mut input.by_ref().take(skip), &mut std::io::sink())?;
            if skipped < skip {
                // The skipped record claimed more than the input holds: nothing follows it.
                break;
            }
        } else {
            buf.drain(..consumed);
        }
        base = reader.offset();
        let old = buf.len();
        buf.resize(old + READ, 0);
        let got = read_full(&mut input, &mut buf[old..])?;
        buf.truncate(old + got);
        eof = got < READ;
    }
    let flushed = pipeline.flush_waiting();
    if !flushed.rejects.is_empty() {
        send(flushed, 0, 0)?;
    }
    Ok((pipeline, reader.stats.deleted))
}

/// Detects the format from the first bytes of `input`, or takes `format`; returns the format and the
/// input with those bytes put back in front.
pub fn detect(mut input: impl Read, format: Option<Format>) -> Result<(Format, impl Read), ImportError> {
    let mut head = vec![0u8; 256];
    let n = read_full(&mut input, &mut head)?;
    head.truncate(n);
    let format = match format {
        Some(f) => f,
        None => detect_format(&head).ok_or(ImportError::UnknownFormat)?,
    };
    Ok((format, std::io::Cursor::new(head).chain(input)))
}

/// Imports `input` into `store`. `progress` is called after each stored batch with the bytes and the
/// messages it covered.
pub async fn import(
    store: Arc<dyn Log>,
    input: impl Read + Send + 'static,
    opts: ImportOptions,
    mut progress: impl FnMut(u64, &ImportSummary),
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let (format, input) = tokio::task::spawn_blocking(move || {
        detect(input, opts.format).map(|(f, i)| (f, Box::new(i) as Box<dyn Read + Send>))
    })
    .await
    .map_err(|e| ImportError::Reader(e.to_string()))??;
    let mut pipeline = Pipeline::new(opts.network, opts.verify, opts.max_waiting);
    pipeline.restore(store.as_ref()).await?;
    let observer = opts.collector.clone().unwrap_or_else(|| opts.source.clone());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    let keep_waiting = opts.keep_waiting;
    let reader =
        tokio::task::spawn_blocking(move || read_and_verify(input, format, pipeline, &observer, keep_waiting, tx));
    let mut summary = ImportSummary {
        format: format.to_string(),
        ..ImportSummary::default()
    };
    while let Some(chunk) = rx.recv().await {
        summary.messages += chunk.messages;
        for r in &chunk.out.rejects {
            *summary.rejected.entry(reason_code(&r.reason).to_owned()).or_default() += 1;
        }
        for batch in chunk.out.into_batches(&opts.source, None) {
            let problems: Vec<bool> = (batch.events.iter())
                .map(|e| e.kind == KIND_PROBLEM_NODE || e.kind == KIND_PROBLEM_CHANNEL)
                .collect();
            let outcome = store.append(batch).await?;
            for (item, problem) in outcome.items.iter().zip(problems) {
                match (problem, item) {
                    (true, _) => {}
                    (false, AppendItem::Accepted(_)) => summary.accepted += 1,
                    (false, AppendItem::Duplicate(_)) => summary.duplicates += 1,
                }
            }
        }
        summary.seconds = started.elapsed().as_secs_f64();
        progress(chunk.bytes, &summary);
    }
    let (pipeline, deleted) = reader.await.map_err(|e| ImportError::Reader(e.to_string()))??;
    summary.skipped = pipeline.stats.skipped;
    summary.released_after_announcement = pipeline.stats.released;
    summary.deleted_records = deleted;
    summary.seconds = started.elapsed().as_secs_f64();
    summary.messages_per_sec = summary.messages as f64 / summary.seconds.max(1e-9);
    Ok(summary)
}

/// A blocking [`Read`] over chunks sent from async code (a request body read frame by frame): the
/// import's reader thread reads what the request handler forwards, with backpressure from the bounded
/// channel. An `Err` chunk ends the input with that error.
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl ChannelReader {
    /// A reader and the sender that feeds it (`capacity` chunks in flight).
    pub fn new(capacity: usize) -> (tokio::sync::mpsc::Sender<std::io::Result<bytes::Bytes>>, Self) {
        let (tx, rx) = tokio::sync::mpsc::channel(capacity);
        (
            tx,
            Self {
                rx,
                current: bytes::Bytes::new(),
            },
        )
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_store::MemoryStore;

    fn sample() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/lightning/cln_gossip_store_sample.hex"
        );
        std::fs::read(path).unwrap()
    }

    fn options() -> ImportOptions {
        ImportOptions {
            source: "ln".into(),
            format: None,
            verify: true,
            network: Network::Mainnet,
            collector: None,
            max_waiting: 1000,
            keep_waiting: false,
        }
    }

    /// What a body sent in small pieces through a [`ChannelReader`] imports is what the whole file
    /// imports: the same counts and the same events in the same order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_in_pieces_imports_like_the_whole_file() {
        let bytes = sample();
        let whole: Arc<dyn Log> = Arc::new(MemoryStore::new());
        let a = import(whole.clone(), std::io::Cursor::new(bytes.clone()), options(), |_, _| {})
            .await
            .unwrap();
        let pieces: Arc<dyn Log> = Arc::new(MemoryStore::new());
        let (tx, reader) = ChannelReader::new(2);
        let feed = tokio::spawn(async move {
            for piece in bytes.chunks(7) {
                tx.send(Ok(bytes::Bytes::copy_from_slice(piece))).await.unwrap();
            }
        });
        let mut progressed = 0;
        let b = import(pieces.clone(), reader, options(), |n, _| progressed += n)
            .await
            .unwrap();
        feed.await.unwrap();
        assert_eq!((a.format.as_str(), a.messages, a.accepted), ("hex", 139, 138));
        assert_eq!(a.rejected.get("unknown_channel"), Some(&1));
        assert_eq!(
            (b.format, b.messages, b.accepted, b.duplicates, b.rejected),
            (a.format, a.messages, a.accepted, a.duplicates, a.rejected)
        );
        assert!(progressed > 0);
        let (x, y) = (
            whole.read_from(1, 1000).await.unwrap(),
            pieces.read_from(1, 1000).await.unwrap(),
        );
        let ids = |v: &[tributary_core::StoredEvent]| {
            v.iter().map(|e| (e.event.id, e.event.kind.clone())).collect::<Vec<_>>()
        };
        assert_eq!(ids(&x), ids(&y));
        // Nothing kept for the running source's waiting queue.
        assert!(pieces.meta_prefix("lightning/ln/waiting/").await.unwrap().is_empty());
    }

    /// A body that breaks off ends the import with the reader's error, after what came before was
    /// stored; bytes that are no format are refused before anything is stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_broken_body_and_an_unknown_format_are_errors() {
        let store: Arc<dyn Log> = Arc::new(MemoryStore::new());
        let (tx, reader) = ChannelReader::new(2);
        tokio::spawn(async move {
            let bytes = sample();
            tx.send(Ok(bytes::Bytes::copy_from_slice(&bytes[..bytes.len() / 2])))
                .await
                .unwrap();
            tx.send(Err(std::io::Error::other("the request body broke off")))
                .await
                .unwrap();
        });
        let e = import(store.clone(), reader, options(), |_, _| {}).await.unwrap_err();
        assert!(e.to_string().contains("broke off"), "{e}");
        let junk = std::io::Cursor::new(vec![0xffu8; 64]);
        let e = import(store.clone(), junk, options(), |_, _| {}).await.unwrap_err();
        assert!(matches!(e, ImportError::UnknownFormat), "{e}");
    }
}
