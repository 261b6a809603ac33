//! `tributary replay --subscription NAME --from X --to Y`: deliver a range of the log again to one
//! subscription (the events of the range that match its filter), or count them with `--dry-run`.

use super::table::text;
use super::{Client, opt_time, print_json, seg};
use serde_json::json;

/// What to replay, and to whom.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The subscription that receives the events again.
    #[arg(long, short)]
    pub subscription: String,
    /// First sequence number (inclusive).
    #[arg(long)]
    pub from: Option<u64>,
    /// Last sequence number (inclusive).
    #[arg(long)]
    pub to: Option<u64>,
    /// Ingested at or after: a duration ago (`24h`) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Ingested before: a duration ago (`1h`) or an RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    /// Count the matching events, queue nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `replay`.
pub async fn run(c: &Client, a: Args) -> anyhow::Result<()> {
    if a.from.is_none() && a.to.is_none() && a.since.is_none() && a.until.is_none() {
        crate::refuse!("give a range: --from SEQ --to SEQ and/or --since/--until");
    }
    if let (Some(from), Some(to)) = (a.from, a.to)
        && from > to
    {
        crate::refuse!("--from {from} is after --to {to}");
    }
    let body = json!({
        "from_seq": a.from,
        "to_seq": a.to,
        "since": opt_time("--since", &a.since)?,
        "until": opt_time("--until", &a.until)?,
        "dry_run": a.dry_run,
    });
    let path = format!("/v1/subscriptions/{}/replay", seg(&a.subscription));
    let v = c.post(&path, Some(&body)).await?;
    if c.json {
        print_json(&v);
    } else if a.dry_run {
        println!(
            "dry run: {} events would be delivered again to {}",
            text(&v["matched"]),
            a.subscription
        );
    } else {
        println!(
            "queued {} of {} matching events for delivery to {}",
            text(&v["requeued"]),
            text(&v["matched"]),
            a.subscription
        );
    }
    Ok(())
}
