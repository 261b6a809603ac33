//! Request bodies and a concurrent HTTP load loop shared by the scenarios.

use super::child::KEY;
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One bench event (about 150 bytes of JSON).
pub fn event(n: usize) -> serde_json::Value {
    json!({"kind": "bench.event", "key": format!("k{}", n % 100), "data": {"n": n, "payload": "the quick brown fox jumps over the lazy dog 0123456789"}})
}

/// `total` events in request bodies of `batch`, where 10% of the events repeat earlier ones.
pub fn bodies(batch: usize, total: usize) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(total / batch + 1);
    let mut next = 0;
    let mut sent = 0;
    while sent < total {
        let items: Vec<serde_json::Value> = (0..batch)
            .map(|i| {
                let k = sent + i;
                if k % 10 == 9 && next > 0 {
                    event((k * 7919) % next) // a duplicate of an earlier event
                } else {
                    next += 1;
                    event(next - 1)
                }
            })
            .collect();
        sent += batch;
        let body = if batch == 1 {
            serde_json::to_vec(&items[0])
        } else {
            serde_json::to_vec(&items)
        };
        out.push(Bytes::from(body.expect("json")));
    }
    out
}

/// A progress bar on stderr for `len` units.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>28} [{bar:30}] {pos}/{len} {per_sec}")
            .expect("template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

/// A keep-alive client.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client")
}

/// POSTs every body to `url` from `concurrency` tasks; returns the elapsed time. Fails on any non-2xx.
pub async fn post_all(
    url: &str,
    bodies: Arc<Vec<Bytes>>,
    concurrency: usize,
    pb: &ProgressBar,
    auth: bool,
) -> anyhow::Result<Duration> {
    let client = client();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, bodies, next, url, pb) =
            (client.clone(), bodies.clone(), next.clone(), url.to_owned(), pb.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                let mut req = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone());
                if auth {
                    req = req.bearer_auth(KEY);
                }
                let resp = req.send().await?;
                if !resp.status().is_success() {
                    anyhow::bail!("{url} answered {}", resp.status());
                }
                resp.bytes().await?;
                pb.inc(1);
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed())
}

/// Percentile of sorted microseconds, in milliseconds.
pub fn pct_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}
