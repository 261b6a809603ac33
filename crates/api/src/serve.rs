//! The HTTP server: hyper's HTTP/1 connections over the router, with the limits `axum::serve` lacks.
//!
//! - At most `[node] max_connections` connections are served at once; the accept loop waits for a free
//!   slot, so further clients wait in the kernel's listen backlog instead of using file descriptors.
//! - A connection that has not sent a whole request head within `[node] header_read_timeout_ms` (after
//!   it opened or after its previous answer) is closed.
//! - On shutdown the listener closes, idle connections close at once, requests in progress may finish,
//!   and whatever is still open `[node] shutdown_grace_ms` later is dropped.
//! - An answer given before the request's body was read to its end (a 401, 413 or 415 decided on the
//!   head) says `Connection: close`: the unread rest of the body makes the connection unusable, and a
//!   client that was not told would send its next request on a connection the server is closing.
//! - A connection that ends after an answer closes lingering: the rest of what the client sends is read
//!   and discarded for at most 2 s and 1 MiB, so the client gets the answer and not a reset.

use axum::Router;
use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

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
        let router = router.clone();
        let service = hyper::service::service_fn(move |request| Box::pin(answer(router.clone(), request)));
        let stop = shutdown.clone();
        connections.spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let mut conn = builder.serve_connection(TokioIo::new(stream), service);
            let served = tokio::select! {
                served = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => served,
                _ = stop.cancelled() => {
                    Pin::new(&mut conn).graceful_shutdown();
                    std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)).await
                }
            };
            if served.is_ok() {
                linger(conn.into_parts().io.into_inner()).await;
            }
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

/// The longest a closing connection keeps reading (and discarding) what the client still sends.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// The most bytes a closing connection reads and discards.
const LINGER_BYTES: usize = 1024 * 1024;

/// A lingering close: the write side is shut (the client reads the answer and the end), then what the
/// client still sends (the rest of a body that was answered early) is read and discarded for a bounded
/// time and size. Closing a socket with unread data sends a reset, which can make the client lose the
/// answer it has not read yet.
async fn linger(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER_TIME, async {
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Routes one request; marks the answer `Connection: close` when the handler left body bytes unread.
async fn answer(
    router: Router,
    request: hyper::Request<Incoming>,
) -> Result<axum::response::Response, std::convert::Infallible> {
    let read = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| ReadToEnd::new(body, read.clone()));
    let mut response = router.oneshot(request).await?;
    if !read.load(Ordering::Acquire) {
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    Ok(response)
}

/// A request body that records whether it was read to its end.
struct ReadToEnd {
    inner: Incoming,
    read: Arc<AtomicBool>,
}

impl ReadToEnd {
    fn new(inner: Incoming, read: Arc<AtomicBool>) -> Self {
        if inner.is_end_stream() {
            read.store(true, Ordering::Release);
        }
        Self { inner, read }
    }
}

impl Body for ReadToEnd {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
