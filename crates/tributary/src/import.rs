//! `tributary import`: a gossip file into the node's store, through the `lightning` source's pipeline.
//!
//! A reader thread reads the file in 4 MiB chunks with the format's [`Reader`], and runs the
//! [`Pipeline`] (decode, verify and build events on all cores) on batches of ~1,000 messages; the async
//! side appends each batch atomically while the next one is verified (a bounded channel of 4 batches
//! between them: backpressure). The store is opened directly, so the node must not be running: its
//! lock says so. Updates still waiting for their channel at the end become `unknown_channel` problems.

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tributary_core::store::AppendItem;
use tributary_core::{Reject, Store, Timestamp};
use tributary_engine::Config;
use tributary_sources::SourceConfig;
use tributary_sources::lightning::events::{KIND_PROBLEM_CHANNEL, KIND_PROBLEM_NODE, Origin, reason_code};
use tributary_sources::lightning::pipeline::Output;
use tributary_sources::lightning::{Format, Network, Pipeline, Reader, detect_format};

/// What to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The `lightning` source the events belong to.
    pub source: String,
    /// The gossip file.
    pub input: PathBuf,
    /// The format, or detected.
    pub format: Option<Format>,
    /// Skip signature and chain checks (trusted input only).
    pub verify: bool,
    /// The chain, or the source's.
    pub network: Network,
    /// The observer recorded, or the source name.
    pub collector: Option<String>,
    /// At most this many updates wait for their announcement.
    pub max_waiting: usize,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What an import did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportSummary {
    /// The format read.
    pub format: String,
    /// Messages read from the file.
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

/// Resolves the source and the options from the config and the command line.
pub fn lightning_source<'a>(
    config: &'a Config,
    name: &str,
) -> anyhow::Result<&'a tributary_sources::lightning::LightningSourceConfig> {
    match config.sources.iter().find(|s| s.name() == name) {
        Some(SourceConfig::Lightning(c)) => Ok(c),
        Some(other) => bail!(
            "source {name:?} is of type {:?}; tributary import needs a source of type \"lightning\"",
            other.type_name()
        ),
        None => bail!("no source named {name:?} in the config; add [[sources]] name = {name:?} type = \"lightning\""),
    }
}

/// Opens the config's store for an import, explaining a lock held by a running node.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if config.node.store == tributary_engine::config::StoreKind::Memory {
        bail!("[node] store = \"memory\": an import would be lost; use the embedded store");
    }
    let c = config.clone();
    let opened = tokio::task::spawn_blocking(move || tributary_engine::node::open_store(&c)).await?;
    opened.map_err(|e| {
        let locked = matches!(&e, tributary_core::StoreError::Backend { source, .. }
            if matches!(source.downcast_ref::<tributary_store::OpenError>(), Some(tributary_store::OpenError::Locked { .. })));
        if locked {
            anyhow::anyhow!(
                "{e}\n  a running node holds the store: stop it (Ctrl-C or SIGTERM) and run `tributary import` again, then start the node; or let the running node collect the gossip itself (`gossip_store` or `collectors` on the source, docs/sources/lightning.md)"
            )
        } else {
            anyhow::Error::from(e)
        }
    })
}

/// A batch handed from the reader thread to the appender.
struct Chunk {
    out: Output,
    messages: u64,
    bytes: u64,
}

fn read_errors(e: tributary_sources::lightning::formats::FormatError, at: u64) -> Reject {
    Reject {
        position: format!("offset {at}"),
        reason: format!("malformed: {e}"),
        excerpt: String::new(),
        at: Timestamp::now(),
    }
}

/// Reads, verifies and sends batches; returns the pipeline's final counters and the reader's.
fn read_and_verify(
    path: &Path,
    format: Format,
    mut pipeline: Pipeline,
    observer: &str,
    tx: tokio::sync::mpsc::Sender<Chunk>,
) -> anyhow::Result<(Pipeline, u64)> {
    const BATCH: usize = 1000;
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = Reader::new(format);
    let (mut buf, mut base, mut eof) = (Vec::<u8>::new(), 0u64, false);
    let send = |out: Output, messages: u64, bytes: u64| {
        tx.blocking_send(Chunk { out, messages, bytes })
            .map_err(|_| anyhow::anyhow!("the store writer stopped"))
    };
    loop {
        let (mut items, mut rejects) = (Vec::with_capacity(BATCH), Vec::new());
        let start = reader.offset();
        let mut need_more = false;
        while items.len() < BATCH {
            let at = (reader.offset() - base) as usize;
            if at > buf.len() {
                // An oversized record was stepped over by its length: continue after it in the file.
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
                    rejects.push(read_errors(e, reader.offset()));
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
        if need_more {
            if eof {
                break;
            }
            // Compact only before reading more: draining after every batch would move the whole buffer.
            let consumed = (reader.offset() - base) as usize;
            if consumed > buf.len() {
                buf.clear();
                let len = file
                    .metadata()
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .len();
                if reader.offset() >= len {
                    // The skipped record claimed more than the file holds: nothing follows it.
                    break;
                }
                file.seek(std::io::SeekFrom::Start(reader.offset()))
                    .with_context(|| format!("cannot seek {}", path.display()))?;
            } else {
                buf.drain(..consumed);
            }
            base = reader.offset();
            let old = buf.len();
            buf.resize(old + (4 << 20), 0);
            let got = file
                .read(&mut buf[old..])
                .with_context(|| format!("cannot read {}", path.display()))?;
            buf.truncate(old + got);
            eof = got == 0;
        }
    }
    let flushed = pipeline.flush_waiting();
    if !flushed.rejects.is_empty() {
        send(flushed, 0, 0)?;
    }
    Ok((pipeline, reader.stats.deleted))
}

/// Imports one file into `store`.
pub async fn import(store: Arc<dyn Store>, opts: ImportOptions) -> anyhow::Result<ImportSummary> {
    let path = opts.input.clone();
    let size = std::fs::metadata(&path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    let format = match opts.format {
        Some(f) => f,
        None => {
            let mut head = vec![0u8; 256];
            let n = std::fs::File::open(&path)
                .and_then(|mut f| f.read(&mut head))
                .with_context(|| format!("cannot read {}", path.display()))?;
            detect_format(&head[..n]).with_context(|| {
                format!(
                    "cannot tell the format of {}; pass --format gossip_store, gsp, compact or hex",
                    path.display()
                )
            })?
        }
    };
    let mut pipeline = Pipeline::new(opts.network, opts.verify, opts.max_waiting);
    pipeline.restore(store.as_ref()).await?;
    let observer = opts.collector.clone().unwrap_or_else(|| opts.source.clone());
    let pb = if opts.progress {
        let pb = ProgressBar::new(size);
        pb.set_style(
            ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {msg} eta {eta}")
                .expect("template")
                .progress_chars("=> "),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(4);
    let started = Instant::now();
    let reader = {
        let (path, observer) = (path.clone(), observer.clone());
        tokio::task::spawn_blocking(move || read_and_verify(&path, format, pipeline, &observer, tx))
    };
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
            let problems: Vec<bool> = batch
                .events
                .iter()
                .map(|e| e.kind == KIND_PROBLEM_NODE || e.kind == KIND_PROBLEM_CHANNEL)
                .collect();
            let outcome = store.append(batch).await?;
            for (item, problem) in outcome.items.iter().zip(problems) {
                if !problem {
                    if matches!(item, AppendItem::Accepted(_)) {
                        summary.accepted += 1;
                    } else {
                        summary.duplicates += 1;
                    }
                }
            }
        }
        pb.inc(chunk.bytes);
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        pb.set_message(format!(
            "{} messages, {:.0} msg/s",
            summary.messages,
            summary.messages as f64 / secs
        ));
    }
    let (pipeline, deleted) = reader.await??;
    pb.finish_and_clear();
    summary.skipped = pipeline.stats.skipped;
    summary.released_after_announcement = pipeline.stats.released;
    summary.deleted_records = deleted;
    summary.seconds = started.elapsed().as_secs_f64();
    summary.messages_per_sec = summary.messages as f64 / summary.seconds.max(1e-9);
    Ok(summary)
}

impl ImportSummary {
    /// The human-readable summary.
    pub fn text(&self, input: &Path) -> String {
        let mut s = format!(
            "imported {} ({}): {} messages in {:.2} s ({:.0} msg/s)\n  accepted    {:>9}\n  duplicates  {:>9}\n",
            input.display(),
            self.format,
            self.messages,
            self.seconds,
            self.messages_per_sec,
            self.accepted,
            self.duplicates
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

/// `tributary import --config FILE --source NAME INPUT` (the global `--json` prints the summary as JSON).
#[derive(Clone, Debug, clap::Args)]
pub struct ImportArgs {
    /// The node's TOML config (its store is opened directly: stop the node first).
    #[arg(long, short, env = "TRIBUTARY_CONFIG")]
    pub config: PathBuf,
    /// A configured source of type "lightning".
    #[arg(long)]
    pub source: String,
    /// The gossip file.
    pub input: PathBuf,
    /// auto, gossip_store, gsp, compact or hex.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Store without checking signatures and chain (trusted input only).
    #[arg(long)]
    pub no_verify: bool,
    /// The chain (default: the source's `network`).
    #[arg(long)]
    pub network: Option<Network>,
    /// The observer recorded on every message (default: the source name).
    #[arg(long)]
    pub collector: Option<String>,
}

/// Runs `tributary import`.
pub async fn run(args: ImportArgs, json: bool) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let config = Config::load(&args.config)?;
    let source = lightning_source(&config, &args.source)?;
    let format = match args.format.as_str() {
        "auto" => None,
        f => Some(
            f.parse::<Format>()
                .map_err(|e| anyhow::anyhow!("--format: {e} (or auto)"))?,
        ),
    };
    let opts = ImportOptions {
        source: args.source.clone(),
        input: args.input.clone(),
        format,
        verify: !args.no_verify,
        network: args.network.unwrap_or(source.network),
        collector: args.collector.clone(),
        max_waiting: source.max_waiting_updates,
        progress: !json && std::io::stderr().is_terminal(),
    };
    // The file first: a typo must not create or lock a store.
    std::fs::metadata(&args.input).with_context(|| format!("cannot read {}", args.input.display()))?;
    let store = open_store(&config).await?;
    let summary = import(store, opts).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.text(&args.input));
    }
    Ok(())
}
