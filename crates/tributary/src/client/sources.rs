//! `tributary sources status [NAME]` (or `sources list`): is each source connected, stalled, how fast, where is its checkpoint.

use super::table::{Table, clip, print_fields, text, time};
use super::{Client, print_json, seg};
use serde_json::Value;

/// Source commands.
#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Each source's state, events/s, counters, last event and checkpoint (one source in detail with NAME).
    #[command(visible_alias = "list")]
    Status {
        /// Only this source, in detail.
        name: Option<String>,
    },
}

/// Runs a source command.
pub async fn run(c: &Client, cmd: Cmd) -> anyhow::Result<()> {
    let Cmd::Status { name } = cmd;
    match name {
        Some(name) => {
            let v = c.get(&format!("/v1/sources/{}", seg(&name)), &[]).await?;
            if c.json {
                print_json(&v);
            } else {
                detail(&v);
            }
        }
        None => {
            let v = c.get("/v1/sources", &[]).await?;
            if c.json {
                print_json(&v);
            } else {
                list(&v);
            }
        }
    }
    Ok(())
}

/// `standby`, `failed`, `stalled`, `disconnected` or `connected`.
fn state(status: &Value) -> &'static str {
    if status["standby"].as_bool() == Some(true) {
        "standby"
    } else if !status["failure"].is_null() {
        "failed"
    } else if status["stalled"].as_bool() == Some(true) {
        "stalled"
    } else if status["connected"].as_bool() == Some(true) {
        "connected"
    } else {
        "disconnected"
    }
}

fn checkpoint(v: &Value) -> String {
    let points = v["checkpoints"].as_array().map(Vec::as_slice).unwrap_or_default();
    match points {
        [] => "-".into(),
        [one] if one["partition"].as_str().is_none_or(str::is_empty) => text(&one["position"]),
        [one] => format!("{}={}", text(&one["partition"]), text(&one["position"])),
        many => format!("{} partitions", many.len()),
    }
}

fn list(v: &Value) {
    let mut t = Table::new(&[
        "NAME",
        "TYPE",
        "STATE",
        "EVENTS/S",
        "STORED",
        "DUPLICATES",
        "REJECTED",
        "ERRORS",
        "LAST EVENT",
        "CHECKPOINT",
    ]);
    for s in v["sources"].as_array().into_iter().flatten() {
        let st = &s["status"];
        t.row(vec![
            text(&s["name"]),
            text(&s["type"]),
            state(st).into(),
            format!("{:.1}", st["events_per_sec"].as_f64().unwrap_or(0.0)),
            text(&st["stored"]),
            text(&st["duplicates"]),
            text(&st["rejected"]),
            text(&st["errors"]),
            time(&st["last_event_at"]),
            clip(&checkpoint(s), 40),
        ]);
    }
    t.print_or("no sources visible to this key");
}

fn detail(s: &Value) {
    let st = &s["status"];
    let mut fields = vec![
        ("name", text(&s["name"])),
        ("type", text(&s["type"])),
        ("state", state(st).into()),
        (
            "events/s",
            format!("{:.1}", st["events_per_sec"].as_f64().unwrap_or(0.0)),
        ),
        ("stored", text(&st["stored"])),
        ("duplicates", text(&st["duplicates"])),
        ("rejected", text(&st["rejected"])),
        ("errors", text(&st["errors"])),
        ("last event", time(&st["last_event_at"])),
    ];
    if !st["failure"].is_null() {
        fields.push(("failure", text(&st["failure"])));
    }
    print_fields(&fields);
    let mut t = Table::new(&["PARTITION", "POSITION"]);
    for p in s["checkpoints"].as_array().into_iter().flatten() {
        let partition = p["partition"].as_str().filter(|p| !p.is_empty()).unwrap_or("-");
        t.row(vec![partition.into(), text(&p["position"])]);
    }
    println!();
    t.print_or("no checkpoint yet");
}
