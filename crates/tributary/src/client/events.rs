//! `tributary events list | get | tail`: read the durable log, one event, or follow new events live
//! (`events send` is in [`super::send`]).
//!
//! `tail` polls `GET /v1/events?after=` with the previous answer's `next_after`: that cursor covers every
//! log entry the node looked at, so the tail never skips or repeats an event while new ones arrive.

use super::table::{Table, clip, print_fields, text, time};
use super::{Client, opt_time, print_json, seg};
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

/// Which events (shared by `list` and `tail`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Filter {
    /// Kind pattern (`orders.*`, `ln.channel_update`).
    #[arg(long)]
    pub kind: Option<String>,
    /// Source name.
    #[arg(long)]
    pub source: Option<String>,
    /// Event key (`--key` is the API key).
    #[arg(long)]
    pub event_key: Option<String>,
    /// Ingested at or after: a duration ago (`24h`) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Ingested before: a duration ago (`1h`) or an RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
}

impl Filter {
    fn query(&self, after: u64, limit: usize) -> anyhow::Result<Vec<(&'static str, Option<String>)>> {
        Ok(vec![
            ("after", Some(after.to_string())),
            ("limit", Some(limit.to_string())),
            ("kind", self.kind.clone()),
            ("source", self.source.clone()),
            ("key", self.event_key.clone()),
            ("since", opt_time("--since", &self.since)?),
            ("until", opt_time("--until", &self.until)?),
        ])
    }
}

/// Event commands.
#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Events in sequence order, filtered; prints the `--after` to continue when the page is full.
    List {
        #[command(flatten)]
        filter: Filter,
        /// Start after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many events (1–1000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One event by id, with its data and who observed it.
    Get {
        /// The event id (64 hex characters).
        id: String,
    },
    /// Follow new events live, one line each (`--json`: one JSON object per line), until Ctrl-C.
    Tail {
        #[command(flatten)]
        filter: Filter,
        /// Start after this sequence number (`--after 0`: the whole log). Default: only new events.
        #[arg(long)]
        after: Option<u64>,
        /// How often to ask for new events when there were none.
        #[arg(long, default_value = "500ms")]
        interval: String,
    },
    /// Send one event, or an NDJSON file with a progress bar, to an `http` source; prints how many were
    /// accepted and how many were duplicates.
    Send(super::send::Args),
}

/// Runs an event command.
pub async fn run(c: &Client, cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::List { filter, after, limit } => {
            let page = c.get("/v1/events", &filter.query(after, limit)?).await?;
            if c.json {
                print_json(&page);
                return Ok(());
            }
            let events = page["events"].as_array().map(Vec::as_slice).unwrap_or_default();
            let mut t = Table::new(&["SEQ", "INGESTED", "SOURCE", "KIND", "KEY", "ID"]);
            for e in events {
                t.row(vec![
                    text(&e["seq"]),
                    time(&e["ingested_at"]),
                    text(&e["source"]),
                    text(&e["kind"]),
                    clip(&text(&e["key"]), 40),
                    text(&e["id"]),
                ]);
            }
            t.print_or("no events");
            if events.len() >= limit.clamp(1, 1000) {
                eprintln!("more: --after {}", text(&page["next_after"]));
            }
        }
        Cmd::Get { id } => {
            let e = c.get(&format!("/v1/events/{}", seg(&id)), &[]).await?;
            if c.json {
                print_json(&e);
            } else {
                show(&e);
            }
        }
        Cmd::Tail {
            filter,
            after,
            interval,
        } => {
            let interval = super::duration_arg("--interval", &interval)?;
            tokio::select! {
                r = tail(c, &filter, after, interval) => r?,
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Cmd::Send(args) => super::send::run(c, args).await?,
    }
    Ok(())
}

fn show(e: &Value) {
    let payload = e["payload"].as_str().map_or(0, |p| p.len() / 2);
    let mut fields = vec![
        ("id", text(&e["id"])),
        ("seq", text(&e["seq"])),
        ("kind", text(&e["kind"])),
        ("source", text(&e["source"])),
        ("key", text(&e["key"])),
        ("ingested at", text(&e["ingested_at"])),
        ("occurred at", text(&e["occurred_at"])),
        ("position", text(&e["position"])),
    ];
    for (name, field) in [("tenant", "tenant"), ("retracts", "retracts")] {
        if !e[field].is_null() {
            fields.push((name, text(&e[field])));
        }
    }
    if payload > 0 {
        fields.push(("payload", format!("{payload} bytes")));
    }
    print_fields(&fields);
    println!(
        "data:\n{}",
        serde_json::to_string_pretty(&e["data"]).unwrap_or_default()
    );
    let mut t = Table::new(&["OBSERVER", "FIRST SEEN", "LAST SEEN", "COUNT"]);
    for o in e["observations"].as_array().into_iter().flatten() {
        t.row(vec![
            text(&o["observer"]),
            time(&o["first_seen"]),
            time(&o["last_seen"]),
            text(&o["count"]),
        ]);
    }
    println!();
    t.print_or("no observations");
}

/// A key no event has: listing with it scans the log without returning anything.
const PROBE_KEY: &str = "\u{1}tributary-cli-end-of-log-probe";

/// The last sequence number of the log: pages through it with a filter that matches nothing.
async fn end_of_log(c: &Client) -> anyhow::Result<u64> {
    let mut after = 0;
    loop {
        let q = [
            ("after", Some(after.to_string())),
            ("limit", Some("1".to_owned())),
            ("key", Some(PROBE_KEY.to_owned())),
        ];
        let next = c.get("/v1/events", &q).await?["next_after"].as_u64().unwrap_or(after);
        if next <= after {
            return Ok(after);
        }
        after = next;
    }
}

/// One line for an event: seq, time, source, kind, key, id, data.
fn line(e: &Value) -> String {
    let data = serde_json::to_string(&e["data"]).unwrap_or_default();
    format!(
        "{} {} {} {} {} {} {}",
        text(&e["seq"]),
        time(&e["ingested_at"]),
        text(&e["source"]),
        text(&e["kind"]),
        text(&e["key"]),
        text(&e["id"]),
        clip(&data, 200)
    )
}

async fn tail(c: &Client, filter: &Filter, after: Option<u64>, interval: Duration) -> anyhow::Result<()> {
    let mut after = match after {
        Some(a) => a,
        None => end_of_log(c).await?,
    };
    loop {
        let page = c.get("/v1/events", &filter.query(after, 1000)?).await?;
        let mut out = std::io::stdout().lock();
        for e in page["events"].as_array().into_iter().flatten() {
            let text = if c.json {
                serde_json::to_string(e).unwrap_or_default()
            } else {
                line(e)
            };
            if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
                return Ok(()); // the reader went away (`| head`)
            }
        }
        drop(out);
        let next = page["next_after"].as_u64().unwrap_or(after);
        if next <= after {
            tokio::time::sleep(interval).await;
        }
        after = after.max(next);
    }
}
