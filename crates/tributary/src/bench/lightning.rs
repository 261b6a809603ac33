//! Lightning: `tributary import` messages/s on a `gossip_store` of ≥1,000,000 messages (full run), without
//! and with signature verification, each on a fresh embedded store, next to two references measured on
//! the same file in the same run: (a) merely reading it (records, CRCs) and hashing every message's
//! `gossip_id`, and (b) what `Verifier::verify_batch` verifies per second on all cores, without storage.
//!
//! The file: real signatures, distinct messages. Re-signing real messages is impossible (their keys are
//! not ours), and repeating them would make every copy a duplicate, so the file is generated once with
//! the library's secp256k1 ([`generate`]: 1 announcement and 99 updates per channel, every message
//! signed by a test key) and cached in the temporary directory (`tributary-bench-lightning-N.gossip_store`,
//! deterministic, reused by later runs). Mostly updates: one signature per message, like live gossip.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tributary_sources::lightning::formats::{Format, crc32c, read_all};
use tributary_sources::lightning::import::{ImportOptions, import};
use tributary_sources::lightning::{Network, Verifier, decode, generate, gossip_id};

/// The figures.
#[derive(Debug, Serialize)]
pub struct LightningFigure {
    /// Messages in the file.
    pub messages: u64,
    /// Import with `--no-verify`, messages/s.
    pub import_no_verify_per_sec: f64,
    /// Import verifying every signature, messages/s.
    pub import_verify_per_sec: f64,
    /// Reference (a): read the file and hash every message's id, messages/s.
    pub read_hash_per_sec: f64,
    /// Reference (b): `Verifier::verify_batch` on all cores, no storage, messages/s.
    pub verify_only_per_sec: f64,
}

const UPDATES_PER_CHANNEL: u32 = 99;

/// The cached file of `n` messages (generated on first use).
fn gossip_file(n: usize) -> anyhow::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("tributary-bench-lightning-{n}.gossip_store"));
    if path.exists() {
        return Ok(path);
    }
    let channels = n.div_ceil(UPDATES_PER_CHANNEL as usize + 1) as u32;
    let started = Instant::now();
    eprintln!(
        "lightning: generating {n} signed messages into {} (once)",
        path.display()
    );
    let tmp = path.with_extension("tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    f.write_all(&[0x0c])?;
    let chunk = 1000;
    for first in (0..channels).step_by(chunk) {
        let count = (channels - first).min(chunk as u32);
        for m in generate::channels(first, count, UPDATES_PER_CHANNEL) {
            let ts = 1_600_000_000u32;
            f.write_all(&0u16.to_be_bytes())?;
            f.write_all(&(m.len() as u16).to_be_bytes())?;
            f.write_all(&crc32c(ts, &m).to_be_bytes())?;
            f.write_all(&ts.to_be_bytes())?;
            f.write_all(&m)?;
        }
    }
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    eprintln!("lightning: generated in {:.1} s", started.elapsed().as_secs_f64());
    Ok(path)
}

/// Reference (a): read and hash, messages/s; and the message count.
fn read_and_hash(path: &Path) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let data = std::fs::read(path)?;
    let (records, errors, _) = read_all(&data, Format::GossipStore);
    anyhow::ensure!(
        errors.is_empty(),
        "the bench file does not read cleanly: {:?}",
        errors.first()
    );
    let mut x = 0u8;
    for r in &records {
        x ^= gossip_id(&r.msg).map_or(0, |id| id.0[0]);
    }
    std::hint::black_box(x);
    let n = records.len() as u64;
    Ok((n, n as f64 / started.elapsed().as_secs_f64()))
}

/// Reference (b): verification only, timed around `verify_batch` (decoding is not counted).
fn verify_only(path: &Path) -> anyhow::Result<f64> {
    let data = std::fs::read(path)?;
    let (records, _, _) = read_all(&data, Format::GossipStore);
    let mut v = Verifier::new(Network::Mainnet);
    let (mut spent, mut n, mut failed) = (std::time::Duration::ZERO, 0u64, 0u64);
    for chunk in records.chunks(1000) {
        let batch: Vec<_> = chunk.iter().filter_map(|r| decode(&r.msg).ok()).collect();
        let started = Instant::now();
        let results = v.verify_batch(&batch);
        spent += started.elapsed();
        n += batch.len() as u64;
        failed += results.iter().filter(|r| r.is_err()).count() as u64;
    }
    anyhow::ensure!(failed == 0, "{failed} generated messages failed verification");
    Ok(n as f64 / spent.as_secs_f64())
}

async fn import_rate(path: &Path, verify: bool) -> anyhow::Result<(f64, u64)> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn tributary_core::Store> = Arc::new(tributary_store::FjallStore::open(&dir.path().join("data"))?);
    let options = ImportOptions {
        source: "bench".into(),
        format: Some(Format::GossipStore),
        verify,
        network: Network::Mainnet,
        collector: None,
        max_waiting: 100_000,
        keep_waiting: true,
    };
    let summary = import(store, std::fs::File::open(path)?, options, |_, _| {}).await?;
    anyhow::ensure!(
        summary.rejected.is_empty(),
        "the bench file had rejects: {:?}",
        summary.rejected
    );
    Ok((summary.messages_per_sec, summary.accepted))
}

/// Runs the scenario on a file of `n` messages.
pub async fn run(n: usize) -> anyhow::Result<LightningFigure> {
    let path = tokio::task::spawn_blocking(move || gossip_file(n)).await??;
    let p = path.clone();
    let (messages, read_hash_per_sec) = tokio::task::spawn_blocking(move || read_and_hash(&p)).await??;
    let p = path.clone();
    let verify_only_per_sec = tokio::task::spawn_blocking(move || verify_only(&p)).await??;
    let (import_no_verify_per_sec, accepted) = import_rate(&path, false).await?;
    anyhow::ensure!(accepted == messages, "{accepted} of {messages} stored");
    let (import_verify_per_sec, _) = import_rate(&path, true).await?;
    let fig = LightningFigure {
        messages,
        import_no_verify_per_sec,
        import_verify_per_sec,
        read_hash_per_sec,
        verify_only_per_sec,
    };
    eprintln!(
        "lightning {messages} messages: import {:.0}/s without verification, {:.0}/s verified; read+hash {:.0}/s, verify only {:.0}/s",
        fig.import_no_verify_per_sec, fig.import_verify_per_sec, fig.read_hash_per_sec, fig.verify_only_per_sec
    );
    Ok(fig)
}
