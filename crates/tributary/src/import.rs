//! `tributary import`: a gossip file into a `lightning` source, through the source's pipeline
//! ([`tributary_sources::lightning::import`]: decode, verify on all cores, store in batches).
//!
//! Two ways, one result: with `--config`, into a stopped node's store, opened directly (a running node's
//! lock says so, and how to send the file to it instead); without, to the running node at `--url`
//! (`POST /v1/lightning/import`, the file streamed as it is read, with the admin key). Both print the
//! same summary (`--json`: as JSON).

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Arc;
use tributary_core::Log;
use tributary_engine::Config;
use tributary_sources::SourceConfig;
use tributary_sources::lightning::import::{ImportOptions, ImportSummary, import};
use tributary_sources::lightning::{Format, Network};

/// Resolves the source and the options from the config and the command line.
pub fn lightning_source<'a>(
    config: &'a Config,
    name: &str,
) -> anyhow::Result<&'a tributary_sources::lightning::LightningSourceConfig> {
    match config.sources.iter().find(|s| s.name() == name).map(|s| (s, &s.kind)) {
        Some((_, SourceConfig::Lightning(c))) => Ok(c),
        Some((other, _)) => bail!(
            "source {name:?} is of type {:?}; tributary import needs a source of type \"lightning\"",
            other.type_name()
        ),
        None => bail!("no source named {name:?} in the config; add [[sources]] name = {name:?} type = \"lightning\""),
    }
}

/// Opens the config's store for an import, explaining a lock held by a running node.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Log>> {
    if config.node.store == tributary_engine::config::StoreKind::Memory {
        bail!("[node] store = \"memory\": an import would be lost; use the embedded or the PostgreSQL store");
    }
    let opened = tributary_engine::node::open_store(config).await;
    opened.map_err(|e| {
        // The embedded store's directory lock.
        let locked = matches!(&e, tributary_core::StoreError::Backend { source, .. }
            if matches!(source.downcast_ref::<tributary_store::OpenError>(), Some(tributary_store::OpenError::Locked { .. })));
        if locked {
            anyhow::anyhow!(
                "{e}\n  a running node holds the store: send the file to it instead (without --config): `tributary import --url {} --key ADMIN_KEY --source NAME FILE`; or stop the node (Ctrl-C or SIGTERM) and run this again",
                node_url(&config.node.listen)
            )
        } else {
            anyhow::Error::from(e)
        }
    })
    .map(|store| store as Arc<dyn Log>)
}

/// The URL a client on this machine reaches a node listening on `listen` at (`http://HOST:PORT` when
/// the port is chosen at start).
fn node_url(listen: &str) -> String {
    match listen.rsplit_once(':') {
        Some((_, "0")) | None => "http://HOST:PORT".into(),
        Some(("0.0.0.0" | "[::]", port)) => format!("http://127.0.0.1:{port}"),
        Some(_) => format!("http://{listen}"),
    }
}

/// `tributary import [--config FILE] --source NAME INPUT` (the global `--json` prints the summary as JSON;
/// without `--config`, the global `--url` and `--key` say where the running node is).
#[derive(Clone, Debug, clap::Args)]
pub struct ImportArgs {
    /// The stopped node's TOML config: its store is opened directly. Without it, the file is sent to the
    /// running node at --url (with the admin --key).
    #[arg(long, short, env = "TRIBUTARY_CONFIG")]
    pub config: Option<PathBuf>,
    /// A configured source of type "lightning".
    #[arg(long)]
    pub source: String,
    /// The gossip file.
    pub input: PathBuf,
    /// auto, gossip_store, gsp, compact or hex.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Store without checking signatures and chain (trusted input only).
    #[arg(long)]
    pub no_verify: bool,
    /// The chain (default: the source's `network`).
    #[arg(long)]
    pub network: Option<Network>,
    /// The observer recorded on every message (default: the source name).
    #[arg(long)]
    pub collector: Option<String>,
}

/// A progress bar over the file's bytes on stderr, or a hidden one (`--json`, or not a terminal).
fn progress_bar(size: u64, json: bool) -> ProgressBar {
    use std::io::IsTerminal;
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(size);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {msg} eta {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    pb
}

/// Runs `tributary import`.
pub async fn run(args: ImportArgs, conn: &crate::client::Conn) -> anyhow::Result<()> {
    let format = match args.format.as_str() {
        "auto" => None,
        f => Some(
            f.parse::<Format>()
                .map_err(|e| anyhow::anyhow!("--format: {e} (or auto)"))?,
        ),
    };
    // The file first: a typo must not create or lock a store, nor start an upload.
    let size = std::fs::metadata(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?
        .len();
    let pb = progress_bar(size, conn.json);
    let summary = match &args.config {
        Some(path) => into_store(&args, path, format, &pb).await?,
        None => to_node(&args, conn, &pb).await?,
    };
    pb.finish_and_clear();
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.text(&args.input.display().to_string()));
    }
    Ok(())
}

/// Imports into the stopped node's store.
async fn into_store(
    args: &ImportArgs,
    config: &std::path::Path,
    format: Option<Format>,
    pb: &ProgressBar,
) -> anyhow::Result<ImportSummary> {
    let config = Config::load(config)?;
    let source = lightning_source(&config, &args.source)?;
    let opts = ImportOptions {
        source: args.source.clone(),
        format,
        verify: !args.no_verify,
        network: args.network.unwrap_or(source.network),
        collector: args.collector.clone(),
        max_waiting: source.max_waiting_updates,
        keep_waiting: true,
    };
    let file = std::fs::File::open(&args.input).with_context(|| format!("cannot read {}", args.input.display()))?;
    let store = open_store(&config).await?;
    let summary = import(store, file, opts, |bytes, s| {
        pb.inc(bytes);
        pb.set_message(format!(
            "{} messages, {:.0} msg/s",
            s.messages,
            s.messages as f64 / s.seconds.max(1e-9)
        ));
    })
    .await
    .with_context(|| format!("importing {}", args.input.display()))?;
    Ok(summary)
}

/// Sends the file to the running node, as it is read (`POST /v1/lightning/import`).
async fn to_node(args: &ImportArgs, conn: &crate::client::Conn, pb: &ProgressBar) -> anyhow::Result<ImportSummary> {
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt;
    let client = crate::client::Client::new(conn)?;
    let file = tokio::fs::File::open(&args.input)
        .await
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let sent = pb.clone();
    let chunks = futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = bytes::BytesMut::with_capacity(1 << 20);
        match file.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok::<_, std::io::Error>(buf.freeze()), file)),
            Err(e) => Some((Err(e), file)),
        }
    })
    .map(move |chunk| {
        if let Ok(b) = &chunk {
            sent.inc(b.len() as u64);
        }
        chunk
    });
    pb.set_message(format!("sending to {}", conn.url));
    let query = [
        ("source", Some(args.source.clone())),
        ("format", Some(args.format.clone())),
        ("verify", Some((!args.no_verify).to_string())),
        ("collector", args.collector.clone()),
        ("network", args.network.map(|n| n.to_string())),
    ];
    let answer = client
        .upload(
            "/v1/lightning/import",
            &query,
            "application/octet-stream",
            reqwest::Body::wrap_stream(chunks),
        )
        .await?;
    serde_json::from_value(answer)
        .context("the node's import answer is not an import summary; is --url a tributary node?")
}
