//! Cluster: one, two and three nodes on one PostgreSQL schema (the machine's server, `TRIBUTARY_PG_URL`),
//! all on this machine's cores. For each: durable ingest events/s with the requests spread over the
//! nodes, then deliveries/s of three subscriptions draining that log (the leases spread them over the
//! nodes). Next to them, in the same run: PostgreSQL's own COPY of the same rows into a table of the same
//! shape (the ceiling of one shared log), and the embedded store on the same workload.

use super::child::{ChildNode, KEY};
use super::load::{bodies, client, post_all, progress};
use anyhow::Context;
use bytes::Bytes;
use futures_util::SinkExt;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tributary_sinks::webhook::receiver::Receiver;

/// One configuration's figures.
#[derive(Debug, Serialize)]
pub struct ClusterRun {
    /// `embedded` or `postgres`.
    pub store: String,
    /// Nodes sharing the store.
    pub nodes: usize,
    /// Durable events/s, requests spread over the nodes.
    pub ingest_per_sec: f64,
    /// Deliveries/s of the three subscriptions together.
    pub deliveries_per_sec: f64,
    /// How many nodes delivered (held a subscription's lease) once the leases had spread.
    pub delivering_nodes: usize,
}

/// The cluster figures.
#[derive(Debug, Serialize)]
pub struct ClusterFigure {
    /// Events ingested per run (10% of the requests' events are duplicates).
    pub events: usize,
    /// Each run.
    pub runs: Vec<ClusterRun>,
    /// Reference: rows/s of one `COPY … FROM STDIN` of the same rows into a table shaped like `events`.
    pub copy_rows_per_sec: f64,
    /// The server's version.
    pub server_version: String,
}

const SUBSCRIPTIONS: usize = 3;
const CONCURRENCY: usize = 16;
const BATCH: usize = 100;

fn pg_url() -> String {
    std::env::var("TRIBUTARY_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

async fn connect() -> anyhow::Result<tokio_postgres::Client> {
    let url = pg_url();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .with_context(|| {
            format!(
                "cluster bench: cannot reach PostgreSQL at {url}; start it (./scripts/peers.sh) or set TRIBUTARY_PG_URL"
            )
        })?;
    tokio::spawn(conn);
    Ok(client)
}

/// Runs the scenario with `events` events per run.
pub async fn run(events: usize) -> anyhow::Result<ClusterFigure> {
    let admin = connect().await?;
    let server_version: String = admin.query_one("SHOW server_version", &[]).await?.get(0);
    let mut runs = vec![one_run(None, 1, events).await?];
    for nodes in 1..=3 {
        let schema = format!("bench_cluster_{}_{nodes}", std::process::id());
        let result = one_run(Some(&schema), nodes, events).await;
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await?;
        runs.push(result?);
    }
    let copy_rows_per_sec = copy_reference(&admin, events).await?;
    eprintln!("cluster: COPY of the same rows {copy_rows_per_sec:.0} rows/s");
    Ok(ClusterFigure {
        events,
        runs,
        copy_rows_per_sec,
        server_version,
    })
}

/// `[node]` lines of a node on `schema` (None: the embedded store).
fn node_lines(schema: Option<&str>, i: usize) -> String {
    match schema {
        None => String::new(),
        Some(schema) => format!(
            "node_id = \"bench-{i}\"\nstore = {{ type = \"postgres\", url = {:?}, schema = {schema:?}, lease_ms = 2000 }}\n",
            pg_url()
        ),
    }
}

async fn one_run(schema: Option<&str>, nodes: usize, events: usize) -> anyhow::Result<ClusterRun> {
    let store = if schema.is_some() { "postgres" } else { "embedded" };
    let source = "[[sources]]\nname = \"bench\"\ntype = \"http\"\n";
    // 1. Ingest, spread over the nodes.
    let started: Vec<ChildNode> = (0..nodes)
        .map(|i| ChildNode::start_in_with_node(tempfile::tempdir()?, &node_lines(schema, i), source))
        .collect::<anyhow::Result<_>>()?;
    let all = bodies(BATCH, events);
    let requests = all.len() as u64;
    let per_node: Vec<Arc<Vec<Bytes>>> = (0..nodes)
        .map(|n| Arc::new(all.iter().skip(n).step_by(nodes).cloned().collect()))
        .collect();
    let pb = progress(requests, &format!("{store} x{nodes}: ingest"));
    let t0 = Instant::now();
    let posts = started.iter().zip(&per_node).map(|(node, bodies)| {
        let url = format!("{}/v1/sources/bench/events", node.url);
        let (bodies, pb) = (bodies.clone(), pb.clone());
        async move { post_all(&url, bodies, CONCURRENCY / nodes, &pb, true).await }
    });
    for result in futures_util::future::join_all(posts).await {
        result?;
    }
    let ingest = t0.elapsed();
    pb.finish_and_clear();
    let dirs: Vec<tempfile::TempDir> = started.into_iter().map(|n| n.stop()).collect::<anyhow::Result<_>>()?;
    // 2. Deliveries: the nodes again, with three subscriptions draining the log.
    let receiver = Receiver::start(None, false).await?;
    let mut body = source.to_owned();
    for s in 0..SUBSCRIPTIONS {
        body.push_str(&format!(
            "\n[[subscriptions]]\nname = \"bench-{s}\"\nmax_in_flight = 64\n[subscriptions.sink]\ntype = \"webhook\"\nurl = \"{}\"\nsecret = \"{}\"\nallow_private_networks = true\n",
            receiver.url(),
            tributary_sinks::generate_secret()
        ));
    }
    let distinct = events - events / 10;
    let expected = (distinct * SUBSCRIPTIONS) as u64;
    let pb = progress(expected, &format!("{store} x{nodes}: deliver"));
    // Timed from the first delivery to the last, watched from before the nodes start (the first node
    // delivers while the others start).
    let receiver = Arc::new(receiver);
    let watch = {
        let (receiver, pb) = (receiver.clone(), pb.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let mut first = None;
            loop {
                let total = receiver.total();
                if first.is_none() && total > 0 {
                    first = Some(Instant::now());
                }
                pb.set_position(total);
                if total >= expected {
                    return Ok(first.unwrap_or(started).elapsed());
                }
                if started.elapsed() > Duration::from_secs(900) {
                    anyhow::bail!("cluster bench: {total} of {expected} delivered after 15 minutes");
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let mut again = Vec::new();
    for (i, dir) in dirs.into_iter().enumerate() {
        again.push(ChildNode::start_in_with_node(dir, &node_lines(schema, i), &body)?);
    }
    let mut delivering = 1;
    while !watch.is_finished() {
        if schema.is_some() && nodes > 1 {
            delivering = delivering.max(holders(&again[0].url).await.unwrap_or(1));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deliver = watch.await??;
    pb.finish_and_clear();
    drop(again);
    let run = ClusterRun {
        store: store.into(),
        nodes,
        ingest_per_sec: events as f64 / ingest.as_secs_f64(),
        deliveries_per_sec: expected as f64 / deliver.as_secs_f64(),
        delivering_nodes: delivering,
    };
    eprintln!(
        "cluster: {store} x{nodes}: ingest {:.0} events/s, {:.0} deliveries/s ({} delivering)",
        run.ingest_per_sec, run.deliveries_per_sec, run.delivering_nodes
    );
    Ok(run)
}

/// How many nodes hold a subscription's lease now.
async fn holders(url: &str) -> anyhow::Result<usize> {
    let view: serde_json::Value = client()
        .get(format!("{url}/v1/cluster"))
        .bearer_auth(KEY)
        .send()
        .await?
        .json()
        .await?;
    let holders: std::collections::HashSet<&str> = (view["leases"].as_array().into_iter().flatten())
        .filter(|l| l["expired"] == false && l["name"].as_str().is_some_and(|n| n.starts_with("subscription:")))
        .filter_map(|l| l["holder"].as_str())
        .collect();
    Ok(holders.len())
}

/// Rows/s of one COPY of `events` rows shaped like the store's `events` table (seq, scoped id, source,
/// time, the event's JSON, an empty payload), into a scratch table dropped afterwards.
async fn copy_reference(admin: &tokio_postgres::Client, events: usize) -> anyhow::Result<f64> {
    let table = format!("bench_copy_{}", std::process::id());
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (seq bigint PRIMARY KEY, scoped_id bytea NOT NULL UNIQUE, source text COLLATE \"C\" NOT NULL, ingested_at bigint NOT NULL, event json NOT NULL, payload bytea NOT NULL)"
        ))
        .await?;
    let mut rows = Vec::with_capacity(events * 300);
    for n in 0..events {
        let event = super::load::event(n).to_string();
        let id = tributary_core::EventId::sha256(event.as_bytes()).to_hex();
        rows.extend_from_slice(
            format!(
                "{}\t\\\\x{id}\tbench\t{}\t{event}\t\\\\x\n",
                n + 1,
                1_764_000_000_000_000i64 + n as i64
            )
            .as_bytes(),
        );
    }
    let t0 = Instant::now();
    let sink = admin
        .copy_in(&format!(
            "COPY {table} (seq, scoped_id, source, ingested_at, event, payload) FROM STDIN"
        ))
        .await?;
    futures_util::pin_mut!(sink);
    for chunk in rows.chunks(1 << 20) {
        sink.send(Bytes::copy_from_slice(chunk)).await?;
    }
    let copied = sink.finish().await?;
    let took = t0.elapsed();
    admin.batch_execute(&format!("DROP TABLE {table}")).await?;
    anyhow::ensure!(copied as usize == events, "COPY stored {copied} of {events} rows");
    Ok(events as f64 / took.as_secs_f64())
}
