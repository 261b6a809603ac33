//! Ingest throughput of the embedded store: `cargo bench -p tributary-store`.
//!
//! Appends batches of 1,000 new events (about 200 bytes of JSON each) from 1 and from 4 concurrent
//! producers, and prints events per second. A benchmark, not a test: it asserts nothing.

use std::sync::Arc;
use std::time::Instant;
use tributary_core::store::AppendBatch;
use tributary_core::{EventId, Log, NewEvent, Timestamp};
use tributary_store::FjallStore;

const BATCH: u64 = 1_000;
const BATCHES: u64 = 200;

fn batch(first: u64) -> AppendBatch {
    let events = (first..first + BATCH)
        .map(|n| NewEvent {
            id: EventId::sha256(&n.to_be_bytes()),
            kind: "bench.event".into(),
            key: Some(format!("key-{}", n % 64)),
            occurred_at: Some(Timestamp(n as i64)),
            position: Some(format!("line {n}")),
            payload: Vec::new(),
            data: serde_json::json!({
                "n": n,
                "channel": "0x8f2b1c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
                "amount_msat": n * 1_000,
                "tags": ["alpha", "beta", "gamma"],
                "note": "a short human readable note about this event",
            }),
            tenant: None,
            retracts: None,
        })
        .collect();
    AppendBatch {
        source: "bench".into(),
        observer: "bench".into(),
        seen_at: Timestamp::now(),
        events,
        ..AppendBatch::default()
    }
}

async fn run(producers: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(FjallStore::open(dir.path()).expect("open"));
    let per = BATCHES / producers;
    // Build the input first so only the store is timed.
    let inputs: Vec<Vec<AppendBatch>> = (0..producers)
        .map(|p| (0..per).map(|b| batch((p * per + b) * BATCH)).collect())
        .collect();
    let start = Instant::now();
    let tasks: Vec<_> = inputs
        .into_iter()
        .map(|batches| {
            let store = store.clone();
            tokio::spawn(async move {
                for b in batches {
                    store.append(b).await.expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("producer");
    }
    let secs = start.elapsed().as_secs_f64();
    let events = (per * producers * BATCH) as f64;
    println!(
        "{producers} producer(s): {events} events in {secs:.2}s = {:.0} events/s",
        events / secs
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        run(1).await;
        run(4).await;
    });
}
