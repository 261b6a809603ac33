//! Starting and stopping a node with its HTTP API.

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tributary_engine::{Config, Node};

/// A node serving its API.
pub struct RunningNode {
    /// The node.
    pub node: Arc<Node>,
    /// Where the API listens.
    pub addr: SocketAddr,
    api_stop: CancellationToken,
    api: JoinHandle<std::io::Result<()>>,
}

impl RunningNode {
    /// Opens the store, starts sources, workers and the API.
    pub async fn start(mut config: Config) -> anyhow::Result<Self> {
        let listen = config.node.listen.clone();
        let data_dir = config.node.data_dir.clone();
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}: is another process using it? change [node] listen"))?;
        let addr = listener.local_addr()?;
        // The address really listened on (a port chosen at start), for the node's id and URL among
        // the nodes sharing a store.
        config.node.listen = addr.to_string();
        let node = Node::start(config)
            .await
            .with_context(|| format!("cannot start the node (data_dir {})", data_dir.display()))?;
        let node = Arc::new(node);
        node.start_cluster_sync();
        let api_stop = CancellationToken::new();
        let api = tokio::spawn(tributary_api::serve(node.clone(), listener, api_stop.clone()));
        Ok(Self {
            node,
            addr,
            api_stop,
            api,
        })
    }

    /// Stops accepting requests, then stops sources, drains deliveries and commits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.api_stop.cancel();
        match self.api.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "api server ended with an error"),
            Err(e) => tracing::warn!(error = %e, "api server task failed"),
        }
        self.node.shutdown().await;
        Ok(())
    }
}

/// `tributary run`: serves until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let running = RunningNode::start(config).await?;
    // Listen for signals before saying we listen: a SIGTERM right after the line is a graceful stop.
    let signals = signals()?;
    println!("tributary listening on http://{}", running.addr);
    tracing::info!(addr = %running.addr, sources = running.node.config.sources.len(), subscriptions = running.node.subscription_list().len(), "node started");
    wait_for_signal(signals).await;
    tracing::info!("shutting down: stopping sources, draining deliveries");
    running.stop().await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

type Signals = (tokio::signal::unix::Signal, tokio::signal::unix::Signal);

fn signals() -> anyhow::Result<Signals> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok((term, int))
}

async fn wait_for_signal((mut term, mut int): Signals) {
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
