//! The running `nostr` source: the relays to archive (configured, from the seed file, resumed from their
//! checkpoints, discovered), each archived by its own task within the connection budget.

use super::archive::{RelayArchive, Shared};
use super::checkpoint::{Position, filter_key};
use super::conn::Dial;
use super::socks::ProxyAddr;
use super::{NostrSourceConfig, RelayUrl};
use async_trait::async_trait;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::mpsc;
use tributary_core::{Source, SourceContext, SourceError};

/// The largest seed file read.
const MAX_SEED_BYTES: u64 = 16 << 20;
/// The most relay URLs remembered (connected or not) per source.
const MAX_KNOWN: usize = 100_000;

/// A running `nostr` source.
pub struct NostrSource {
    config: Arc<NostrSourceConfig>,
}

impl NostrSource {
    /// A source from its (validated) config.
    pub fn new(config: NostrSourceConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }
}

/// The lines of a seed file that are relay URLs, in order, and the others counted by reason.
pub fn read_seed(text: &str, allow_private: bool) -> (Vec<RelayUrl>, BTreeMap<&'static str, u64>) {
    let mut urls = Vec::new();
    let mut invalid = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match RelayUrl::parse(line, allow_private) {
            Ok(u) => urls.push(u),
            Err(e) => *invalid.entry(e.reason()).or_default() += 1,
        }
    }
    (urls, invalid)
}

/// Which relays run, and the ones met beyond the budget or out of reach.
struct Relays {
    shared: Arc<Shared>,
    positions: BTreeMap<String, Position>,
    known: BTreeSet<RelayUrl>,
    tasks: tokio::task::JoinSet<Result<(), SourceError>>,
    max: usize,
    running: usize,
    over_budget: u64,
    need_proxy: u64,
    discovered: u64,
}

impl Relays {
    fn offer(&mut self, url: RelayUrl, discovered: bool) {
        if self.known.len() >= MAX_KNOWN || !self.known.insert(url.clone()) {
            return;
        }
        self.discovered += u64::from(discovered);
        if !self.shared.dial.reaches(&url) {
            self.need_proxy += 1;
        } else if self.running >= self.max {
            self.over_budget += 1;
        } else {
            self.running += 1;
            let position = self.positions.remove(url.as_str()).unwrap_or_default();
            self.tasks
                .spawn(RelayArchive::new(self.shared.clone(), url, position).run());
        }
    }

    fn report(&self) {
        self.shared.report.detail(
            "relays",
            json!({
                "connected": self.running,
                "known": self.known.len(),
                "over_budget": self.over_budget,
                "need_proxy": self.need_proxy,
                "discovered": self.discovered,
            }),
        );
    }
}

#[async_trait]
impl Source for NostrSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), SourceError> {
        let cfg = &self.config;
        let io = |message: String| SourceError::Io {
            source_name: cx.name.clone(),
            message,
        };
        let store_err = |error| SourceError::Store {
            source_name: cx.name.clone(),
            error,
        };
        let proxy = cfg.proxy.as_deref().map(ProxyAddr::parse).transpose().map_err(io)?;
        let mut positions = BTreeMap::new();
        let mut archived = Vec::new();
        for c in cx.store.checkpoints(&cx.name).await.map_err(store_err)? {
            archived.push(c.partition.clone());
            match Position::parse(&c.position) {
                Ok(p) => {
                    positions.insert(c.partition, p);
                }
                Err(e) => {
                    tracing::warn!(relay = %c.partition, error = %e, "a stored nostr cursor cannot be read; that relay is walked from the start");
                    cx.report.problem(
                        &c.partition,
                        Some(format!(
                            "its stored cursor cannot be read ({e}); walking it from the start"
                        )),
                    );
                }
            }
        }
        if cfg.monitor.is_some() {
            tracing::warn!(source = %cx.name, "[sources.monitor] is accepted but the NIP-11 and NIP-66 checks are not built yet: the relays are archived, not checked");
            cx.report.detail(
                "monitor",
                json!({"state": "not built yet: the relays are archived, not checked (docs/sources/nostr.md)"}),
            );
        }
        let mut candidates = cfg.relay_urls();
        if let Some(path) = &cfg.seed_file {
            let text = read_bounded(path).map_err(io)?;
            let (urls, invalid) = read_seed(&text, cfg.allow_private_networks);
            cx.report.detail(
                "seed_file",
                json!({"path": path, "relays": urls.len(), "invalid": invalid}),
            );
            candidates.extend(urls);
        }
        // Relays archived before (discovered ones among them) resume from their cursors (from the start
        // when a cursor cannot be read).
        candidates.extend((archived.iter()).filter_map(|p| RelayUrl::parse(p, cfg.allow_private_networks).ok()));
        let (tx, mut rx) = mpsc::channel::<Vec<String>>(64);
        let shared = Arc::new(Shared {
            source: cx.name.clone(),
            filters: cfg.filters.iter().map(|f| (filter_key(f), f.clone())).collect(),
            req_limit: cfg.req_limit,
            timeout: cfg.request_timeout(),
            max_event_bytes: cfg.max_event_bytes,
            dial: Dial {
                proxy,
                allow_private: cfg.allow_private_networks,
                timeout: cfg.request_timeout(),
                max_message_bytes: 2 * cfg.max_event_bytes + 65_536,
            },
            store: cx.store.clone(),
            shutdown: cx.shutdown.clone(),
            report: cx.report.clone(),
            discovered: cfg.discover.then_some(tx),
        });
        let mut relays = Relays {
            shared,
            positions,
            known: BTreeSet::new(),
            tasks: tokio::task::JoinSet::new(),
            max: cfg.max_relays,
            running: 0,
            over_budget: 0,
            need_proxy: 0,
            discovered: 0,
        };
        for url in candidates {
            relays.offer(url, false);
        }
        relays.report();
        loop {
            tokio::select! {
                _ = cx.shutdown.cancelled() => break,
                Some(urls) = rx.recv() => {
                    for u in urls {
                        if let Ok(url) = RelayUrl::parse(&u, cfg.allow_private_networks) {
                            relays.offer(url, true);
                        }
                    }
                    relays.report();
                }
                Some(done) = relays.tasks.join_next() => {
                    relays.running -= 1;
                    match done {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            relays.tasks.abort_all();
                            return Err(e);
                        }
                        Err(join) if join.is_panic() => {
                            relays.tasks.abort_all();
                            return Err(io(format!("a relay's archive panicked: {join}")));
                        }
                        Err(_) => {}
                    }
                }
            }
        }
        while let Some(done) = relays.tasks.join_next().await {
            if let Ok(Err(e)) = done {
                return Err(e);
            }
        }
        Ok(())
    }
}

fn read_bounded(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("seed_file {}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_SEED_BYTES).read_to_string(&mut text).map_err(|e| {
        format!(
            "seed_file {}: {e} (expected UTF-8 text, one relay URL a line)",
            path.display()
        )
    })?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_file_of_bigbrotr_reads_with_counts() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/nostr/seed_relays.txt");
        let (urls, invalid) = read_seed(&std::fs::read_to_string(path).unwrap(), false);
        let distinct: BTreeSet<&RelayUrl> = urls.iter().collect();
        assert_eq!(distinct.len(), 7472);
        assert_eq!(invalid.get("private"), Some(&1389));
    }
}
