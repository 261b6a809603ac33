//! Latency: ingest-to-delivery at a steady 1,000 events/s, next to the plain loopback round trip.

use super::Scale;
use super::child::{ChildNode, KEY};
use super::load::{client, event, pct_ms};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tributary_core::Timestamp;
use tributary_sinks::webhook::receiver::{Receiver, Reply};

/// Latency figures, milliseconds.
#[derive(Debug, Serialize)]
pub struct LatencyFigure {
    /// Events sent (one per request, one per millisecond).
    pub events: usize,
    /// Median ingest-to-delivery: from sending the POST to the webhook arriving.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Reference: median plain POST round trip to the same receiver.
    pub plain_p50_ms: f64,
    /// Reference: 99th percentile.
    pub plain_p99_ms: f64,
}

/// Runs the steady-rate scenario.
pub async fn run(scale: &Scale) -> anyhow::Result<LatencyFigure> {
    let receiver = Receiver::start(None, false).await?;
    let arrivals: Arc<Mutex<HashMap<String, Timestamp>>> = Arc::default();
    let a = arrivals.clone();
    receiver.respond_with(move |r| {
        a.lock().expect("arrivals").entry(r.event_id.clone()).or_insert(r.at);
        Reply::ok()
    });
    let node = ChildNode::start(&format!(
        "[[sources]]\nname = \"bench\"\ntype = \"http\"\n\n[[subscriptions]]\nname = \"bench\"\n[subscriptions.sink]\ntype = \"webhook\"\nurl = \"{}\"\nallow_private_networks = true\n",
        receiver.url()
    ))?;
    let url = format!("{}/v1/sources/bench/events", node.url);
    let shared = client();
    let sent = paced(scale.latency_for, |n| {
        let (client, url) = (shared.clone(), url.clone());
        async move {
            let at = Timestamp::now();
            let resp = client.post(&url).bearer_auth(KEY).json(&event(n)).send().await.ok()?;
            let body: serde_json::Value = resp.json().await.ok()?;
            Some((body["ids"][0].as_str()?.to_owned(), at))
        }
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().expect("arrivals").len() < sent.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let arrivals = arrivals.lock().expect("arrivals").clone();
    let mut lat: Vec<u64> = sent
        .iter()
        .filter_map(|(id, at)| arrivals.get(id).map(|got| got.micros_since(*at)))
        .collect();
    lat.sort_unstable();
    drop(node);
    // Reference: the same pace of plain POSTs to the receiver, round trip measured by the client.
    let hook = receiver.url();
    let plain = paced(scale.latency_for, |n| {
        let (client, hook) = (shared.clone(), hook.clone());
        async move {
            let at = Timestamp::now();
            client.post(&hook).json(&event(n)).send().await.ok()?;
            Some((String::new(), Timestamp(Timestamp::now().0 - at.0)))
        }
    })
    .await;
    let mut rt: Vec<u64> = plain.iter().map(|(_, d)| d.0 as u64).collect();
    rt.sort_unstable();
    let fig = LatencyFigure {
        events: lat.len(),
        p50_ms: pct_ms(&lat, 0.5),
        p99_ms: pct_ms(&lat, 0.99),
        plain_p50_ms: pct_ms(&rt, 0.5),
        plain_p99_ms: pct_ms(&rt, 0.99),
    };
    eprintln!(
        "latency at 1,000 events/s: p50 {:.2} ms, p99 {:.2} ms (plain round trip p50 {:.2}, p99 {:.2})",
        fig.p50_ms, fig.p99_ms, fig.plain_p50_ms, fig.plain_p99_ms
    );
    Ok(fig)
}

/// Starts one request per millisecond for `dur`, each on its own task; collects their results.
async fn paced<F, Fut>(dur: Duration, mut make: F) -> Vec<(String, Timestamp)>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Option<(String, Timestamp)>> + Send + 'static,
{
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut n = 0;
    let pb = super::load::progress(dur.as_millis() as u64, "steady 1,000 events/s");
    while started.elapsed() < dur {
        tick.tick().await;
        tasks.push(tokio::spawn(make(n)));
        n += 1;
        pb.set_position(started.elapsed().as_millis() as u64);
    }
    pb.finish_and_clear();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(Some(r)) = t.await {
            out.push(r);
        }
    }
    out
}
