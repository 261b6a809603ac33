//! The HTTP server: hyper's HTTP/1 connections over the router, with the limits `axum::serve` lacks.
//!
//! - At most `[node] max_connections` connections are served at once; the accept loop waits for a free
//!   slot, so further clients wait in the kernel's listen backlog instead of using file descriptors.
//! - A connection that has not sent a whole request head within `[node] header_read_timeout_ms` (after
//!   it opened or after its previous answer) is closed.
//! - On shutdown the listener closes, idle connections close at once, requests in progress may finish,
//!   and whatever is still open `[node] shutdown_grace_ms` later is dropped.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The server's limits.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Most connections served at once.
    pub max_connections: usize,
    /// Longest wait for a whole request head.
    pub header_read_timeout: Duration,
    /// Longest wait for open connections on shutdown.
    pub shutdown_grace: Duration,
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then for at most `shutdown_grace`.
pub async fn serve(router: Router, listener: TcpListener, limits: ServerLimits, shutdown: CancellationToken) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    // Out of file descriptors or memory: back off instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection; retrying in 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let stop = shutdown.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
            }
            let _ = conn.await;
        });
    }
    drop(listener);
    let open = connections.len();
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            of = open,
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "connections still open after the shutdown grace period; closing them"
        );
        connections.shutdown().await;
    }
}
