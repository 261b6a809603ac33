//! `tributary events send`: post one event (from flags or a JSON object) or an NDJSON file to an `http`
//! source, and show the 202 answer's accepted and duplicates.
//!
//! A file goes in batches (at most [`BATCH_EVENTS`] events or [`BATCH_BYTES`] bytes per request) with a
//! progress bar on stderr; each batch is stored atomically before the node answers, so after a failure
//! the batches already answered are stored and sending the file again only adds duplicates. A batch the
//! node refuses for being busy (429) is sent again after the `Retry-After` delay.

use super::table::{count, text};
use super::{Client, ClientError, print_json, seg};
use crate::refuse;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

/// Most events per request.
pub const BATCH_EVENTS: usize = 500;
/// Most bytes of event JSON per request.
pub const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// How often a batch is sent again while the node answers 429 `ingest_busy`.
const BUSY_RETRIES: u32 = 10;

/// What to send, and where.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The `http` source that receives the events.
    #[arg(long, short)]
    pub source: String,
    /// One event as a JSON object (`{"kind": "orders.created", "key": "o-1", "data": {...}}`).
    #[arg(conflicts_with_all = ["kind", "file"])]
    pub event: Option<String>,
    /// The event's kind (`orders.created`), with --data and optionally --event-key, --occurred-at, --id.
    #[arg(long, conflicts_with = "file")]
    pub kind: Option<String>,
    /// The event's data, as JSON (default `{}`).
    #[arg(long, requires = "kind")]
    pub data: Option<String>,
    /// The event's key (orders events of one key with `ordering = "per_key"`).
    #[arg(long, requires = "kind")]
    pub event_key: Option<String>,
    /// When the event happened (RFC 3339).
    #[arg(long, requires = "kind")]
    pub occurred_at: Option<String>,
    /// The event's own id (64 hex characters); default: a hash of kind, key and data.
    #[arg(long, requires = "kind")]
    pub id: Option<String>,
    /// A newline-delimited JSON file, one event per line (`-`: standard input); empty lines are skipped.
    #[arg(long, short)]
    pub file: Option<PathBuf>,
}

/// Runs `events send`.
pub async fn run(c: &Client, a: Args) -> anyhow::Result<()> {
    let path = format!("/v1/sources/{}/events", seg(&a.source));
    if let Some(file) = &a.file {
        return send_file(c, &path, file).await;
    }
    let event = one_event(&a)?;
    let v = post(c, &path, &event).await?;
    if c.json {
        print_json(&v);
    } else {
        println!(
            "accepted {}, duplicates {}: {}",
            text(&v["accepted"]),
            text(&v["duplicates"]),
            text(&v["ids"][0])
        );
    }
    Ok(())
}

/// The event from the JSON argument or the flags.
fn one_event(a: &Args) -> anyhow::Result<Value> {
    if let Some(given) = &a.event {
        let v: Value = serde_json::from_str(given)
            .map_err(|e| ClientError::new("invalid_argument", format!("EVENT: expected a JSON object ({e})")))?;
        if !v.is_object() {
            refuse!("EVENT: expected a JSON object such as '{{\"kind\": \"orders.created\", \"data\": {{}}}}'");
        }
        return Ok(v);
    }
    let Some(kind) = &a.kind else {
        refuse!("give the event: --kind KIND [--data JSON] [--event-key KEY], a JSON object, or --file FILE.ndjson");
    };
    let data: Value = match &a.data {
        Some(d) => serde_json::from_str(d)
            .map_err(|e| ClientError::new("invalid_argument", format!("--data: expected JSON ({e})")))?,
        None => json!({}),
    };
    let mut v = json!({"kind": kind, "data": data});
    for (field, given) in [("key", &a.event_key), ("occurred_at", &a.occurred_at), ("id", &a.id)] {
        if let Some(g) = given {
            v[field] = g.clone().into();
        }
    }
    Ok(v)
}

/// POSTs a body, sending it again while the node is busy (429 `ingest_busy`: nothing was stored).
async fn post(c: &Client, path: &str, body: &Value) -> anyhow::Result<Value> {
    let mut tries = 0;
    loop {
        match c.post(path, Some(body)).await {
            Err(e)
                if tries < BUSY_RETRIES && e.downcast_ref::<ClientError>().is_some_and(|c| c.code == "ingest_busy") =>
            {
                tries += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

/// One batch of lines: the events and the line number of each.
#[derive(Default)]
struct Batch {
    events: Vec<Value>,
    lines: Vec<usize>,
    bytes: usize,
}

async fn send_file(c: &Client, path: &str, file: &PathBuf) -> anyhow::Result<()> {
    let name = file.display().to_string();
    let (reader, size): (Box<dyn BufRead>, Option<u64>) = if name == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("cannot open {name}"))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(std::io::BufReader::new(f)), size)
    };
    let bar = match (c.json, size) {
        (false, Some(size)) => {
            let bar = ProgressBar::new(size);
            bar.set_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
                    .expect("template")
                    .progress_chars("=> "),
            );
            bar
        }
        _ => ProgressBar::hidden(),
    };
    let (mut accepted, mut duplicates, mut events, mut requests) = (0u64, 0u64, 0u64, 0u64);
    let mut batch = Batch::default();
    let mut lines = reader.lines();
    let mut number = 0;
    loop {
        let line = lines
            .next()
            .transpose()
            .with_context(|| format!("{name}:{}: cannot read", number + 1))?;
        let end = line.is_none();
        if let Some(line) = line {
            number += 1;
            bar.inc(line.len() as u64 + 1);
            if line.trim().is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&line).map_err(|e| {
                ClientError::new(
                    "invalid_argument",
                    format!("{name}:{number}: not a JSON event ({e}); nothing from this line on was sent"),
                )
            })?;
            batch.bytes += line.len();
            batch.events.push(v);
            batch.lines.push(number);
        }
        let full = batch.events.len() >= BATCH_EVENTS || batch.bytes >= BATCH_BYTES;
        if !batch.events.is_empty() && (full || end) {
            let sent = std::mem::take(&mut batch);
            let answer = post(c, path, &Value::Array(sent.events)).await.map_err(|e| {
                let at = failed_line(&e, &sent.lines);
                let code = e
                    .downcast_ref::<ClientError>()
                    .map_or("error".to_owned(), |c| c.code.clone());
                let lines = at.map_or_else(
                    || format!("lines {}-{}", sent.lines[0], sent.lines[sent.lines.len() - 1]),
                    |l| format!("line {l}"),
                );
                ClientError::new(
                    code,
                    format!("{name}: {lines}: {e:#}; the {events} events before were sent ({accepted} accepted, {duplicates} duplicates)"),
                )
            })?;
            requests += 1;
            events += sent.lines.len() as u64;
            accepted += answer["accepted"].as_u64().unwrap_or(0);
            duplicates += answer["duplicates"].as_u64().unwrap_or(0);
            bar.set_message(format!("accepted {accepted}, duplicates {duplicates}"));
        }
        if end {
            break;
        }
    }
    bar.finish_and_clear();
    if c.json {
        print_json(&json!({
            "file": name, "events": events, "requests": requests,
            "accepted": accepted, "duplicates": duplicates,
        }));
    } else {
        let (events, requests) = (count(events, "event"), count(requests, "request"));
        println!("sent {events} from {name} in {requests}: accepted {accepted}, duplicates {duplicates}");
    }
    Ok(())
}

/// The file line of the event a 400 `invalid_event` names (`"index": 3` in the API's error).
fn failed_line(e: &anyhow::Error, lines: &[usize]) -> Option<usize> {
    let c = e.downcast_ref::<ClientError>()?;
    let index = c.index?;
    lines.get(index).copied()
}
