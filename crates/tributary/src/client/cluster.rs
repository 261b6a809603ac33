//! `tributary cluster status`: the nodes sharing the store, and which node runs each source and
//! subscription (their leases), from `GET /v1/cluster` (admin key).

use super::table::{Table, clip, text, time};
use super::{Client, print_json};

/// Cluster commands.
#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Every node (alive or gone, its URL, version and problems) and every lease (holder, epoch, expiry).
    Status,
}

/// Runs a cluster command.
pub async fn run(c: &Client, cmd: Cmd) -> anyhow::Result<()> {
    let Cmd::Status = cmd;
    let v = c.get("/v1/cluster", &[]).await?;
    if c.json {
        print_json(&v);
        return Ok(());
    }
    if v["shared"].as_bool() != Some(true) {
        println!(
            "this node's store is its own (embedded or memory): it runs every source and subscription itself; several nodes share a PostgreSQL store (docs/scale-out.md)"
        );
        return Ok(());
    }
    println!(
        "answered by node {}; leases last {} ms",
        text(&v["node"]),
        text(&v["lease_ms"])
    );
    let mut nodes = Table::new(&["NODE", "STATE", "URL", "VERSION", "STARTED", "LAST SEEN", "PROBLEMS"]);
    for n in v["nodes"].as_array().into_iter().flatten() {
        let problems: Vec<String> = (n["problems"].as_array().into_iter().flatten()).map(text).collect();
        nodes.row(vec![
            text(&n["id"]),
            if n["alive"].as_bool() == Some(true) {
                "alive"
            } else {
                "gone"
            }
            .into(),
            text(&n["url"]),
            text(&n["version"]),
            time(&n["started_at"]),
            time(&n["seen_at"]),
            if problems.is_empty() {
                "-".into()
            } else {
                clip(&problems.join("; "), 80)
            },
        ]);
    }
    nodes.print_or("no node has announced itself");
    println!();
    let mut leases = Table::new(&["LEASE", "HOLDER", "EPOCH", "STATE", "EXPIRES"]);
    for l in v["leases"].as_array().into_iter().flatten() {
        leases.row(vec![
            text(&l["name"]),
            text(&l["holder"]),
            text(&l["epoch"]),
            if l["expired"].as_bool() == Some(true) {
                "expired"
            } else {
                "held"
            }
            .into(),
            time(&l["expires_at"]),
        ]);
    }
    leases.print_or("no lease yet (no pulling source or subscription has run)");
    Ok(())
}
