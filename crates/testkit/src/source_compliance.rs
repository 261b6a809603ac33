//! The source compliance kit (ADR 0006): the same checks for every source type, on the real binary and
//! the source's real peer (a file, a PostgreSQL, an EVM node, a Core Lightning `gossip_store`). A
//! source's integration test calls [`check_source`] with a source named `compliance` over an input of its
//! own, empty at start, and a way to make new events at that input.
//!
//! Checked, in order:
//! 1. every standard series of the source is on `/metrics` at 0 before the first event, and the source
//!    is listed by `GET /v1/sources/compliance` with its type;
//! 2. new input becomes events, each stored once, and the counters move (`status.stored` in the view and
//!    `tributary_source_events_stored_total` on `/metrics`);
//! 3. nothing is lost or stored twice across a SIGKILL right after new input: after the restart the log
//!    holds each event exactly once (the source resumed from its checkpoint);
//! 4. SIGTERM with input still arriving ends the node within `shutdown_grace_ms` (plus start-up slack),
//!    and the next start reads on to the same total, again without doubles.

use crate::compliance::metrics;
use crate::{TestNode, wait_until};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);
/// The grace period of every test node ([`TestNode::start`]).
const GRACE_MS: u64 = 5000;

/// A source type under test.
pub struct SourceCase {
    /// The source type as written in config (`file`).
    pub type_name: &'static str,
    /// The `[[sources]]` keys after `name = "compliance"` (TOML lines, `type` included), over an input
    /// that is empty at start.
    pub source: String,
    /// Events one call of the feeder makes (every call makes this many new, distinct events).
    pub per_feed: usize,
}

/// Runs every check against `case`; `feed(node_url, round)` makes `case.per_feed` new events at the
/// source's input (round 0, 1, 2, ...: each call different from the others; `node_url` is where the node
/// listens, for a push source).
pub async fn check_source<F, Fut>(bin: &str, case: &SourceCase, mut feed: F)
where
    F: FnMut(String, usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let config = format!("[[sources]]\nname = \"compliance\"\n{}\n", case.source);
    let mut node = TestNode::start(bin, &config);
    let what = case.type_name;
    let n = case.per_feed;

    // 1. The series are there from the start, and the source is listed.
    let text = metrics(&node).await;
    for series in [
        "tributary_source_events_received_total{source=\"compliance\"} 0",
        "tributary_source_events_stored_total{source=\"compliance\"} 0",
        "tributary_source_events_dropped_total{source=\"compliance\",reason=\"duplicate\"} 0",
        "tributary_source_events_dropped_total{source=\"compliance\",reason=\"invalid\"} 0",
        "tributary_source_errors_total{source=\"compliance\",stage=\"store\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == series),
            "{what}: {series} missing from /metrics at start:\n{text}"
        );
    }
    let (st, view) = node.get("/v1/sources/compliance").await;
    assert_eq!(st, 200, "{what}: {view}");
    assert_eq!(view["type"], what, "{what}: {view}");

    // 2. Input becomes events, and the counters move.
    feed(node.url.clone(), 0).await;
    let counts = wait_for(&node, n, what).await;
    assert_once(&counts, n, what, "after the first input");
    let stored = format!("tributary_source_events_stored_total{{source=\"compliance\"}} {n}");
    assert!(
        wait_until(T, || async { metrics(&node).await.lines().any(|l| l == stored) }).await,
        "{what}: {stored} not on /metrics:\n{}",
        metrics(&node).await
    );
    let (_, view) = node.get("/v1/sources/compliance").await;
    assert_eq!(view["status"]["stored"].as_u64(), Some(n as u64), "{what}: {view}");

    // 3. SIGKILL right after new input: after the restart, each event exactly once.
    feed(node.url.clone(), 1).await;
    node.kill();
    node.spawn();
    let counts = wait_for(&node, 2 * n, what).await;
    assert_once(&counts, 2 * n, what, "after a SIGKILL and a restart");

    // 4. SIGTERM with input arriving: within the grace period, and the next start reads on.
    feed(node.url.clone(), 2).await;
    let started = Instant::now();
    let code = node.terminate();
    let took = started.elapsed();
    assert_eq!(code, Some(0), "{what}: SIGTERM exit code");
    assert!(
        took < Duration::from_millis(GRACE_MS) + Duration::from_secs(5),
        "{what}: the node took {took:?} to stop with shutdown_grace_ms = {GRACE_MS}"
    );
    node.spawn();
    let counts = wait_for(&node, 3 * n, what).await;
    assert_once(&counts, 3 * n, what, "after a SIGTERM and a restart");
    let (st, health) = node.get("/health").await;
    assert_eq!(st, 200, "{what}: {health}");
    assert_eq!(node.terminate(), Some(0), "{what}: final SIGTERM");
}

/// Waits until the log holds at least `want` events of the source (and a moment more, so that doubles
/// would show); answers how often each id is stored.
async fn wait_for(node: &TestNode, want: usize, what: &str) -> BTreeMap<String, usize> {
    let reached = wait_until(T, || async { events(node).await.values().sum::<usize>() >= want }).await;
    let counts = events(node).await;
    assert!(
        reached,
        "{what}: {} of {want} events stored within {T:?}",
        counts.values().sum::<usize>()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    events(node).await
}

fn assert_once(counts: &BTreeMap<String, usize>, want: usize, what: &str, when: &str) {
    let twice: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "{what}: events stored more than once {when}: {twice:?}"
    );
    assert_eq!(counts.len(), want, "{what}: distinct events {when}");
}

/// Every event of the source in the log, by id, with how often each id is stored.
async fn events(node: &TestNode) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut after = 0u64;
    loop {
        let (st, page) = node
            .get(&format!("/v1/events?source=compliance&limit=1000&after={after}"))
            .await;
        assert_eq!(st, 200, "{page}");
        let list = page["events"].as_array().cloned().unwrap_or_default();
        for e in &list {
            *counts
                .entry(e["id"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
            after = after.max(e["seq"].as_u64().unwrap_or(after));
        }
        if list.len() < 1000 {
            return counts;
        }
    }
}
