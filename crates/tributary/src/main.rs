//! The `tributary` binary: parses the command line and dispatches (see the library for the commands).

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

/// mimalloc (feature `mimalloc`): fewer and cheaper allocator calls than glibc's on the per-event paths,
/// at the cost of a larger resident set; measured by `tributary bench`.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// tributary: reliable event streams from decentralized networks and databases.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "TRIBUTARY_LOG_JSON", help_heading = "Global options")]
    log_json: bool,
    #[command(flatten)]
    conn: tributary::client::Conn,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node from a config file until SIGINT or SIGTERM.
    Run {
        /// The TOML config file.
        #[arg(long, short, env = "TRIBUTARY_CONFIG")]
        config: PathBuf,
    },
    /// Start a node on a temporary store, ingest the bundled Lightning gossip and deliver it as signed
    /// webhooks to a local receiver that verifies every signature (`--json`: the report as JSON).
    #[cfg(feature = "lightning")]
    Demo,
    /// Measure ingest, delivery, latency and memory on this machine, each next to a reference (`--json`:
    /// the report as JSON).
    Bench {
        /// A smoke run of a few seconds instead of the full run (about seven minutes).
        #[arg(long)]
        quick: bool,
        /// Run only these scenarios (repeatable): ingest, delivery, latency, memory.
        #[arg(long, value_enum)]
        only: Vec<tributary::bench::Scenario>,
        /// Also write the Markdown report to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import a Lightning gossip file (gossip_store, GSP, compact or hex), verifying every signature on
    /// all cores: into a stopped node's store (--config), or sent to the running node at --url; prints
    /// accepted, duplicates and rejected by reason.
    #[cfg(feature = "lightning")]
    Import(tributary::import::ImportArgs),
    /// Check a config file and report every problem at once: unknown or misspelled keys, invalid values and
    /// kind patterns, and webhooks that every delivery would fail to reach (loopback or private addresses
    /// without `allow_private_networks`).
    Validate {
        /// The TOML config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Client commands against a running node (sources, events, subscriptions, dlq, replay, tenants).
    #[command(flatten)]
    Client(tributary::client::Command),
}

fn init_logging(json: bool, default: &str) {
    use std::io::IsTerminal;
    // The storage engine's own info lines (flushes, compactions) are noise for operators.
    let default = format!("{default},fjall=warn,lsm_tree=warn");
    let filter = EnvFilter::try_from_env("TRIBUTARY_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let quiet = !matches!(cli.command, Command::Run { .. });
    init_logging(cli.log_json, if quiet { "warn" } else { "info" });
    let json = cli.conn.json;
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|rt| rt.block_on(dispatch(cli.command, &cli.conn)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if json => {
            // Scripts read one JSON value on stdout, success or not; the exit code is the same.
            let mut body = serde_json::json!({"error": {"code": "error", "message": error_chain(&e)}});
            if let Some(c) = e.downcast_ref::<tributary::client::ClientError>() {
                body["error"]["code"] = c.code.clone().into();
            } else if let Some(c) = e.downcast_ref::<tributary_engine::config::ConfigError>() {
                body["error"]["code"] = "invalid_config".into();
                body["error"]["problems"] = serde_json::json!(c.problems);
            }
            println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// A command line clap refused. Help and version print as usual; under `--json` (anywhere on the line) the
/// refusal is `{"error": {"code": "invalid_argument", "message"}}` on stdout, with clap's exit code (2).
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let json = std::env::args_os().skip(1).any(|a| a == "--json");
    if !json || matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    let rendered = e.render().to_string();
    // The first line says what is wrong; the rest is clap's usage and "For more information" advice.
    let message = rendered
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ");
    let body = serde_json::json!({"error": {"code": "invalid_argument", "message": message}});
    println!("{}", serde_json::to_string_pretty(&body).unwrap_or_default());
    ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2))
}

/// The error and its causes joined by ": ", skipping a cause its parent's message already contains.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    let mut last = out.clone();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !last.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        last = text;
    }
    out
}

async fn dispatch(command: Command, conn: &tributary::client::Conn) -> anyhow::Result<()> {
    match command {
        Command::Run { config } => {
            let config = tributary_engine::Config::load(&config)?;
            tributary::node::run(config).await
        }
        #[cfg(feature = "lightning")]
        Command::Demo => tributary::demo::run(conn.json).await,
        Command::Client(command) => tributary::client::run(command, conn).await,
        Command::Bench { quick, only, out } => tributary::bench::run(quick, only, out, conn.json).await,
        #[cfg(feature = "lightning")]
        Command::Import(args) => tributary::import::run(args, conn).await,
        Command::Validate { config } => {
            let c = tributary_engine::Config::load_strict(&config)?;
            if conn.json {
                let ok = serde_json::json!({"file": config.display().to_string(), "ok": true,
                    "sources": c.sources.len(), "subscriptions": c.subscriptions.len()});
                println!("{}", serde_json::to_string_pretty(&ok)?);
            } else {
                println!(
                    "{}: ok ({} sources, {} subscriptions)",
                    config.display(),
                    c.sources.len(),
                    c.subscriptions.len()
                );
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
