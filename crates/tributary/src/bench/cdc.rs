//! CDC: the `postgres` source on a private PostgreSQL started by the bench (`PgServer`: initdb in a
//! temporary directory, `wal_level = logical`, a free loopback port; the machine's own server is never
//! touched). Three runs on the same server, each on its own replication slot of one publication of the
//! outbox table `event_outbox`:
//!
//! - throughput: rows/s capturing a backlog of outbox rows written in transactions of 1,000 rows before
//!   the node starts, timed from starting the node to every row stored, next to `pg_recvlogical` with
//!   `pgoutput` reading the same changes from its own slot into a file until the backlog's end LSN;
//! - latency: commit-to-delivered p50/p99 at a steady 5,000 rows/s (50 rows per transaction every 10 ms)
//!   into a `postgres` sink on the same server, from the row's commit time (the event's `occurred_at`)
//!   to `clock_timestamp()` of the sink's insert (a defaulted column of the inbox table), both by the
//!   server's clock; next to the plain round trip of a one-row INSERT + COMMIT at the same pace;
//! - memory: peak RSS of the node while it captures one transaction of many rows, next to its idle RSS.

use super::Scale;
use super::child::{ChildNode, KEY};
use super::load::{client, pct_ms, progress};
use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tributary_testkit::PgServer;

const INSTALL: &str = "install PostgreSQL: apt-get install postgresql (or set TRIBUTARY_PG_BIN to its bin directory)";
/// The publication of `event_outbox` every run reads.
const PUBLICATION: &str = "tributary_bench";
/// The source's name in every node.
const SOURCE: &str = "cdc";
/// Rows per transaction of the backlog.
const BACKLOG_TX_ROWS: usize = 1_000;
/// Latency run: rows per transaction, one transaction every [`TICK`] (5,000 rows/s).
const LATENCY_TX_ROWS: usize = 50;
const TICK: Duration = Duration::from_millis(10);
/// The slowest a run may be before the bench gives up.
const GIVE_UP: Duration = Duration::from_secs(1800);

const CREATE_OUTBOX: &str =
    "CREATE TABLE event_outbox (seq bigserial PRIMARY KEY, idempotency_key text NOT NULL UNIQUE,
    kind text NOT NULL, user_id text, tenant_id text, payload jsonb NOT NULL)";

/// Outbox rows `$1..=$2` (int8), keys prefixed by `{prefix}`: about 100 bytes of JSON payload each.
fn insert_rows(prefix: &str) -> String {
    format!(
        "INSERT INTO event_outbox (idempotency_key, kind, user_id, tenant_id, payload) \
         SELECT '{prefix}-' || g, 'bench.event', 'user-' || (g % 100), 'acme', \
         jsonb_build_object('n', g, 'payload', 'the quick brown fox jumps over the lazy dog 0123456789') \
         FROM generate_series($1::int8, $2::int8) g"
    )
}

/// The CDC figures.
#[derive(Debug, Serialize)]
pub struct CdcFigure {
    /// `SHOW server_version` of the private server.
    pub server_version: String,
    /// Outbox rows in the backlog.
    pub backlog_rows: usize,
    /// Transactions holding them.
    pub backlog_transactions: usize,
    /// Rows/s stored by the `postgres` source from the backlog (durable, checkpointed), timed from starting
    /// the node.
    pub capture_per_sec: f64,
    /// Rows/s of `pg_recvlogical --plugin pgoutput` reading the same changes into a file, timed from its
    /// start to its exit at the backlog's end LSN.
    pub pg_recvlogical_per_sec: f64,
    /// Bytes `pg_recvlogical` wrote.
    pub pg_recvlogical_bytes: u64,
    /// The latency run, unless skipped.
    pub latency: Option<CdcLatency>,
    /// Why the latency run was skipped.
    pub latency_skipped: Option<String>,
    /// Rows of the one big transaction.
    pub big_tx_rows: usize,
    /// Seconds from its `COMMIT` being sent to its last row stored.
    pub big_tx_seconds: f64,
    /// Peak RSS (`VmHWM`) of the node capturing it, MB.
    pub peak_rss_mb: f64,
    /// Reference: RSS of the same node idle just before, MB.
    pub idle_rss_mb: f64,
}

/// Commit-to-delivered latency into a `postgres` sink, milliseconds.
#[derive(Debug, Serialize)]
pub struct CdcLatency {
    /// Rows written (and delivered).
    pub rows: usize,
    /// Rows/s actually written (target 5,000).
    pub rows_per_sec: f64,
    /// Median: the row's commit time (`occurred_at`) to the sink's insert (`clock_timestamp()`).
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Reference: median round trip of a one-row INSERT + COMMIT to the same server.
    pub plain_p50_ms: f64,
    /// Reference: 99th percentile.
    pub plain_p99_ms: f64,
}

/// The server's bin directory as `PgServer` finds it (`TRIBUTARY_PG_BIN`, else the newest
/// /usr/lib/postgresql/<v>/bin), checked here so that a missing install is an error, not a panic.
fn pg_bin() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("TRIBUTARY_PG_BIN") {
        Some(p) => PathBuf::from(p),
        None => {
            let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
                .with_context(|| format!("no /usr/lib/postgresql: {INSTALL}"))?
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            versions.sort_unstable();
            let v = versions
                .last()
                .with_context(|| format!("no server under /usr/lib/postgresql: {INSTALL}"))?;
            PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"))
        }
    };
    for program in ["initdb", "pg_ctl", "postgres"] {
        if !dir.join(program).exists() {
            bail!("{} not found: {INSTALL}", dir.join(program).display());
        }
    }
    Ok(dir)
}

/// `pg_recvlogical` next to the server binaries, else on PATH.
fn pg_recvlogical(bin: &Path) -> anyhow::Result<PathBuf> {
    let next_to = bin.join("pg_recvlogical");
    if next_to.exists() {
        return Ok(next_to);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("pg_recvlogical"))
        .find(|p| p.exists())
        .with_context(|| format!("pg_recvlogical not found in {} nor on PATH: {INSTALL}", bin.display()))
}

/// Starts the private server (initdb, pg_ctl start) off the async threads.
async fn start_server() -> anyhow::Result<PgServer> {
    pg_bin()?;
    tokio::task::spawn_blocking(PgServer::start).await.map_err(|e| {
        let why = match e.try_into_panic() {
            Ok(p) => (p.downcast_ref::<String>().cloned())
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown".into()),
            Err(e) => e.to_string(),
        };
        anyhow::anyhow!("cannot start a private PostgreSQL: {why}")
    })
}

async fn connect(pg: &PgServer) -> anyhow::Result<tokio_postgres::Client> {
    let url = pg.url("postgres");
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot connect to the private PostgreSQL at {url}\n{}", pg.log()))?;
    tokio::spawn(connection);
    Ok(client)
}

/// A `postgres` source named [`SOURCE`] on `slot` with the outbox columns, then `extra`.
fn source_toml(pg: &PgServer, slot: &str, extra: &str) -> String {
    format!(
        "[[sources]]\nname = \"{SOURCE}\"\ntype = \"postgres\"\ntenants = [\"*\"]\nurl = {:?}\nslot = \"{slot}\"\n\
         publication = \"{PUBLICATION}\"\n\n[sources.outbox]\ntable = \"public.event_outbox\"\nid = \"idempotency_key\"\n\
         kind = \"kind\"\nkey = \"user_id\"\npayload = \"payload\"\ntenant = \"tenant_id\"\n\n{extra}",
        pg.url("postgres")
    )
}

/// Events the node's source stored since it started.
async fn stored(http: &reqwest::Client, node: &ChildNode) -> anyhow::Result<u64> {
    let v: Value = (http.get(format!("{}/v1/sources/{SOURCE}", node.url)))
        .bearer_auth(KEY)
        .send()
        .await?
        .json()
        .await?;
    Ok(v["status"]["stored"].as_u64().unwrap_or(0))
}

/// Polls until the source stored `n` events; the time it took from `since`.
async fn wait_stored(node: &ChildNode, n: usize, what: &str, since: Instant) -> anyhow::Result<Duration> {
    let http = client();
    let pb = progress(n as u64, what);
    loop {
        let got = stored(&http, node).await?;
        pb.set_position(got);
        if got >= n as u64 {
            break;
        }
        if since.elapsed() > GIVE_UP {
            bail!("{what}: the postgres source stored {got} of {n} rows in 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pb.finish_and_clear();
    Ok(since.elapsed())
}

/// Waits (at most 60 s) until a node streams from `slot`.
async fn wait_slot_active(db: &tokio_postgres::Client, slot: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let active = db
            .query_opt(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1 AND active",
                &[&slot],
            )
            .await?
            .is_some();
        if active {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the postgres source did not start streaming from slot {slot} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn drop_slot(db: &tokio_postgres::Client, slot: &str) {
    // The node was just killed: its walsender may hold the slot a moment longer.
    for _ in 0..50 {
        let sql =
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active";
        if db.execute(sql, &[&slot]).await.is_ok_and(|n| n > 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the three parts on one private server.
pub async fn run(scale: &Scale) -> anyhow::Result<CdcFigure> {
    let bin = pg_bin()?;
    let recvlogical = pg_recvlogical(&bin)?;
    let pg = start_server().await?;
    let db = connect(&pg).await?;
    let server_version: String = db.query_one("SHOW server_version", &[]).await?.get(0);
    db.batch_execute(&format!(
        "{CREATE_OUTBOX}; CREATE PUBLICATION {PUBLICATION} FOR TABLE event_outbox;"
    ))
    .await
    .context("creating the outbox table and its publication")?;

    // Throughput: both slots exist before the backlog is written, so both hold all of it.
    let (ours, theirs) = ("bench_tributary", "bench_recvlogical");
    for slot in [ours, theirs] {
        db.execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", &[&slot])
            .await
            .with_context(|| format!("creating replication slot {slot}"))?;
    }
    let rows = scale.cdc_backlog_rows;
    let insert = db.prepare(&insert_rows("t")).await?;
    let pb = progress(rows as u64, "postgres: writing the backlog");
    let mut transactions = 0;
    let mut from = 1;
    while from <= rows {
        let to = (from + BACKLOG_TX_ROWS - 1).min(rows);
        db.execute(&insert, &[&(from as i64), &(to as i64)]).await?;
        transactions += 1;
        pb.set_position(to as u64);
        from = to + 1;
    }
    pb.finish_and_clear();
    let end: String = db.query_one("SELECT pg_current_wal_lsn()::text", &[]).await?.get(0);

    // The reference: pg_recvlogical from its slot until the backlog's end.
    let out_dir = tempfile::tempdir()?;
    let out_file = out_dir.path().join("recvlogical.out");
    let port = pg.port.to_string();
    let publication = format!("publication_names={PUBLICATION}");
    eprintln!("cdc: pg_recvlogical reading {rows} rows up to {end}");
    let started = Instant::now();
    let reading = tokio::process::Command::new(&recvlogical)
        .args([
            "--start",
            "-S",
            theirs,
            "-d",
            "postgres",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-w",
        ])
        .args(["--plugin", "pgoutput", "-o", "proto_version=1", "-o", &publication])
        .arg("-f")
        .arg(&out_file)
        .args(["--endpos", &end, "--no-loop"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(GIVE_UP, reading)
        .await
        .map_err(|_| anyhow::anyhow!("pg_recvlogical did not reach {end} in 30 minutes"))?
        .with_context(|| format!("cannot run {}", recvlogical.display()))?;
    let plain_secs = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "pg_recvlogical failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let recv_bytes = std::fs::metadata(&out_file).map(|m| m.len()).unwrap_or(0);
    if recv_bytes == 0 {
        bail!("pg_recvlogical exited at {end} without writing anything");
    }
    drop(out_dir);

    // The source, from starting the node until every row is stored.
    let started = Instant::now();
    let node = ChildNode::start(&source_toml(&pg, ours, ""))?;
    let source_secs = wait_stored(&node, rows, "postgres source: backlog", started)
        .await?
        .as_secs_f64();
    drop(node);
    drop_slot(&db, ours).await;
    drop_slot(&db, theirs).await;
    eprintln!(
        "cdc backlog: {:.0} rows/s captured (pg_recvlogical {:.0} rows/s)",
        rows as f64 / source_secs,
        rows as f64 / plain_secs
    );

    #[cfg(feature = "postgres")]
    let (latency, latency_skipped) = (Some(latency(&pg, &db, scale.cdc_latency_for).await?), None);
    #[cfg(not(feature = "postgres"))]
    let (latency, latency_skipped) = (
        None,
        Some("this binary was built without the postgres sink (feature `postgres`)".to_owned()),
    );

    let (big_rows, big_secs, peak, idle) = big_transaction(&pg, &db, scale.cdc_big_tx_rows).await?;
    let mb = |b: u64| b as f64 / 1_048_576.0;
    let fig = CdcFigure {
        server_version,
        backlog_rows: rows,
        backlog_transactions: transactions,
        capture_per_sec: rows as f64 / source_secs,
        pg_recvlogical_per_sec: rows as f64 / plain_secs,
        pg_recvlogical_bytes: recv_bytes,
        latency,
        latency_skipped,
        big_tx_rows: big_rows,
        big_tx_seconds: big_secs,
        peak_rss_mb: mb(peak),
        idle_rss_mb: mb(idle),
    };
    eprintln!(
        "cdc big transaction: {} rows stored in {:.1} s, peak RSS {:.1} MB (idle {:.1} MB)",
        fig.big_tx_rows, fig.big_tx_seconds, fig.peak_rss_mb, fig.idle_rss_mb
    );
    drop(db);
    drop(pg);
    Ok(fig)
}

/// A node with the source on a fresh slot and a `postgres` sink into `cdc_inbox` on the same server; rows
/// written at 5,000 rows/s for `dur`; each row's latency from its commit to the sink's insert.
#[cfg(feature = "postgres")]
async fn latency(pg: &PgServer, db: &tokio_postgres::Client, dur: Duration) -> anyhow::Result<CdcLatency> {
    const SLOT: &str = "bench_latency";
    // The sink's layout (docs/sinks/postgres.md) plus a defaulted column of our own: when the sink
    // inserted the row, by the server's clock (the same clock as the commit time).
    db.batch_execute(
        "CREATE TABLE cdc_inbox (id text PRIMARY KEY, seq bigint NOT NULL, kind text NOT NULL, source text NOT NULL,
            key text, occurred_at timestamptz, ingested_at timestamptz NOT NULL, data jsonb NOT NULL,
            payload bytea NOT NULL, retracts text, delivered_at timestamptz NOT NULL DEFAULT clock_timestamp());
         CREATE TABLE plain_round_trip (n bigint NOT NULL);",
    )
    .await
    .context("creating the sink's inbox table")?;
    let sink = format!(
        "[[subscriptions]]\nname = \"inbox\"\n[subscriptions.sink]\ntype = \"postgres\"\nurl = {:?}\ntable = \"public.cdc_inbox\"\n",
        pg.url("postgres")
    );
    let node = ChildNode::start(&source_toml(pg, SLOT, &sink))?;
    wait_slot_active(db, SLOT).await?;
    let insert = db.prepare(&insert_rows("l")).await?;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let pb = progress(dur.as_secs(), "cdc: steady 5,000 rows/s");
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < dur {
        tick.tick().await;
        let from = sent + 1;
        db.execute(&insert, &[&(from as i64), &((sent + LATENCY_TX_ROWS) as i64)])
            .await?;
        sent += LATENCY_TX_ROWS;
        pb.set_position(started.elapsed().as_secs());
    }
    let write_secs = started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut delivered = 0;
    while delivered < sent as i64 && Instant::now() < deadline {
        delivered = db.query_one("SELECT count(*) FROM cdc_inbox", &[]).await?.get(0);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rows = db
        .query(
            "SELECT (extract(epoch FROM delivered_at - occurred_at) * 1000000)::int8 FROM cdc_inbox WHERE occurred_at IS NOT NULL",
            &[],
        )
        .await?;
    drop(node);
    drop_slot(db, SLOT).await;
    let mut lat: Vec<u64> = rows.iter().map(|r| r.get::<_, i64>(0).max(0) as u64).collect();
    if lat.len() < sent {
        bail!("{} of {sent} rows reached the postgres sink within 60 s", lat.len());
    }
    lat.sort_unstable();

    // Reference: a one-row INSERT + COMMIT per tick on the same server, round trip by the client.
    let plain = db.prepare("INSERT INTO plain_round_trip (n) VALUES ($1)").await?;
    let mut tick = tokio::time::interval(TICK);
    let mut rt = Vec::new();
    let started = Instant::now();
    while started.elapsed() < dur {
        tick.tick().await;
        let at = Instant::now();
        db.execute(&plain, &[&(rt.len() as i64)]).await?;
        rt.push(at.elapsed().as_micros() as u64);
    }
    rt.sort_unstable();
    let fig = CdcLatency {
        rows: lat.len(),
        rows_per_sec: sent as f64 / write_secs,
        p50_ms: pct_ms(&lat, 0.5),
        p99_ms: pct_ms(&lat, 0.99),
        plain_p50_ms: pct_ms(&rt, 0.5),
        plain_p99_ms: pct_ms(&rt, 0.99),
    };
    eprintln!(
        "cdc latency at {:.0} rows/s: commit-to-delivered p50 {:.2} ms, p99 {:.2} ms (plain INSERT + COMMIT p50 {:.2}, p99 {:.2})",
        fig.rows_per_sec, fig.p50_ms, fig.p99_ms, fig.plain_p50_ms, fig.plain_p99_ms
    );
    Ok(fig)
}

/// One transaction of `n` rows with a node capturing: (rows, seconds, peak RSS, idle RSS).
async fn big_transaction(
    pg: &PgServer,
    db: &tokio_postgres::Client,
    n: usize,
) -> anyhow::Result<(usize, f64, u64, u64)> {
    const SLOT: &str = "bench_big";
    let node = ChildNode::start(&source_toml(pg, SLOT, ""))?;
    wait_slot_active(db, SLOT).await?;
    tokio::time::sleep(Duration::from_millis(300)).await; // let the node settle before the idle reading
    let (idle, _) = node.rss();
    eprintln!("cdc: one transaction of {n} rows");
    let started = Instant::now();
    db.execute(insert_rows("b").as_str(), &[&1i64, &(n as i64)])
        .await
        .context("writing the big transaction")?;
    let secs = wait_stored(&node, n, "postgres source: one transaction", started)
        .await?
        .as_secs_f64();
    let (_, peak) = node.rss();
    drop(node);
    drop_slot(db, SLOT).await;
    Ok((n, secs, peak, idle))
}
