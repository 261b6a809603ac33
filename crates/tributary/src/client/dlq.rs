//! `tributary dlq stats | list | replay | purge`: deliveries that failed for good.
//!
//! Without `--subscription`, `list`, `replay` and `purge` go over every visible subscription that has dead
//! letters, one request each, with a progress bar when there is more than one.

use super::table::{Table, cell, count, text, time};
use super::{Client, opt_time, print_json, seg};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

/// Which dead letters to replay or purge.
#[derive(clap::Args, Debug)]
pub struct Action {
    /// Only this subscription. Default: every visible subscription.
    #[arg(long, short)]
    pub subscription: Option<String>,
    /// Only the dead letter of this event (sequence number; needs --subscription).
    #[arg(long, requires = "subscription")]
    pub seq: Option<u64>,
    /// Dead at or after: a duration ago (`24h`) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Dead before: a duration ago (`1h`) or an RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many per subscription.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Count what would be done, do nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Dead-letter commands.
#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Dead letters per subscription: how many, oldest, newest.
    Stats,
    /// Dead letters with their last status and error.
    List {
        /// Only this subscription. Default: every visible subscription.
        #[arg(long, short)]
        subscription: Option<String>,
        /// Dead at or after: a duration ago (`24h`) or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Dead before: a duration ago (`1h`) or an RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// After this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many per subscription (1–10,000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Show long errors in full instead of clipping them to the table.
        #[arg(long)]
        wide: bool,
    },
    /// Deliver dead letters again, each with a fresh set of retries.
    Replay(Action),
    /// Delete dead letters for good.
    Purge {
        #[command(flatten)]
        action: Action,
        /// Confirm the deletion (not needed with --dry-run).
        #[arg(long)]
        yes: bool,
    },
}

/// Runs a dead-letter command.
pub async fn run(c: &Client, cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Stats => {
            let v = c.get("/v1/dead-letters/stats", &[]).await?;
            if c.json {
                print_json(&v);
                return Ok(());
            }
            let mut t = Table::new(&["SUBSCRIPTION", "DEAD LETTERS", "OLDEST", "NEWEST"]);
            for s in v["subscriptions"].as_array().into_iter().flatten() {
                t.row(vec![
                    text(&s["subscription"]),
                    text(&s["count"]),
                    time(&s["oldest"]),
                    time(&s["newest"]),
                ]);
            }
            t.print_or("no subscriptions visible to this key");
            Ok(())
        }
        Cmd::List {
            subscription,
            since,
            until,
            after,
            limit,
            wide,
        } => {
            let q = [
                ("after", Some(after.to_string())),
                ("limit", Some(limit.to_string())),
                ("since", opt_time("--since", &since)?),
                ("until", opt_time("--until", &until)?),
            ];
            let mut all = Vec::new();
            let mut more = Vec::new();
            for name in targets(c, subscription).await? {
                let path = format!("/v1/subscriptions/{}/dead-letters", seg(&name));
                let dead = c.get(&path, &q).await?["dead_letters"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                if let Some(last) = dead.last().filter(|_| dead.len() >= limit.clamp(1, 10_000)) {
                    more.push(format!("--subscription {name} --after {}", text(&last["seq"])));
                }
                for mut d in dead {
                    d["subscription"] = name.clone().into();
                    all.push(d);
                }
            }
            for m in more {
                eprintln!("more: {m}");
            }
            if c.json {
                print_json(&json!({ "dead_letters": all }));
                return Ok(());
            }
            let mut t = Table::new(&["SUBSCRIPTION", "SEQ", "EVENT", "ATTEMPTS", "STATUS", "DEAD AT", "ERROR"]);
            let mut clipped = false;
            for d in &all {
                t.row(vec![
                    text(&d["subscription"]),
                    text(&d["seq"]),
                    text(&d["event_id"]),
                    text(&d["attempts"]),
                    text(&d["last_status"]),
                    time(&d["dead_at"]),
                    cell(&text(&d["error"]), wide, &mut clipped),
                ]);
            }
            t.print_or("no dead letters");
            if clipped {
                eprintln!("long errors clipped: --wide shows them in full");
            }
            Ok(())
        }
        Cmd::Replay(action) => act(c, "replay", &action).await,
        Cmd::Purge { action, yes } => {
            if !yes && !action.dry_run {
                crate::refuse!("purge deletes dead letters for good: add --yes to confirm, or --dry-run to count them");
            }
            act(c, "purge", &action).await
        }
    }
}

/// The named subscription, or every visible one that has dead letters.
async fn targets(c: &Client, subscription: Option<String>) -> anyhow::Result<Vec<String>> {
    if let Some(name) = subscription {
        return Ok(vec![name]);
    }
    let stats = c.get("/v1/dead-letters/stats", &[]).await?;
    Ok(stats["subscriptions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["count"].as_u64().unwrap_or(0) > 0)
        .filter_map(|s| s["subscription"].as_str().map(str::to_owned))
        .collect())
}

/// Replays or purges (`what`) the dead letters `a` selects, subscription by subscription.
async fn act(c: &Client, what: &str, a: &Action) -> anyhow::Result<()> {
    let body = json!({
        "seq": a.seq,
        "since": opt_time("--since", &a.since)?,
        "until": opt_time("--until", &a.until)?,
        "limit": a.limit,
        "dry_run": a.dry_run,
    });
    let names = targets(c, a.subscription.clone()).await?;
    let bar = if names.len() > 1 && !c.json {
        let bar = ProgressBar::new(names.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} subscriptions")
                .expect("template")
                .progress_chars("=> "),
        );
        bar.set_message(what.to_owned());
        bar
    } else {
        ProgressBar::hidden()
    };
    let (mut results, mut matched, mut affected) = (Vec::new(), 0, 0);
    for name in &names {
        let path = format!("/v1/subscriptions/{}/dead-letters/{what}", seg(name));
        let r = c
            .post(&path, Some(&body))
            .await
            .with_context(|| format!("{what} {name:?} ({affected} dead letters done in earlier subscriptions)"))?;
        matched += r["matched"].as_u64().unwrap_or(0);
        affected += r["affected"].as_u64().unwrap_or(0);
        results.push(json!({"subscription": name, "matched": r["matched"], "affected": r["affected"]}));
        bar.inc(1);
    }
    bar.finish_and_clear();
    if c.json {
        print_json(&json!({
            "subscriptions": results, "matched": matched, "affected": affected, "dry_run": a.dry_run,
        }));
        return Ok(());
    }
    let done = if what == "replay" { "replayed" } else { "purged" };
    let column = done.to_uppercase();
    let mut t = Table::new(&["SUBSCRIPTION", "MATCHED", &column]);
    for r in &results {
        t.row(vec![
            text(&r["subscription"]),
            text(&r["matched"]),
            text(&r["affected"]),
        ]);
    }
    if results.len() > 1 {
        print!("{}", t.render());
    }
    let n = names.len();
    let subs = if n == 1 { "subscription" } else { "subscriptions" };
    if a.dry_run {
        let matched = count(matched, "dead letter");
        println!("dry run: {matched} would be {done} ({n} {subs})");
    } else {
        let matching = if matched == 1 {
            "matching dead letter"
        } else {
            "matching dead letters"
        };
        println!("{done} {affected} of {matched} {matching} ({n} {subs})");
    }
    Ok(())
}
