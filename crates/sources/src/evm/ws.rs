//! JSON-RPC over one WebSocket connection per provider (`ws://`, `wss://`), with the `newHeads`
//! subscription that wakes the follower as soon as a block arrives.
//!
//! The connection is opened by the first call and after it drops by the next one (the end of a connection
//! wakes the follower; its backoff paces the attempts), and every open subscribes to `newHeads` again; a provider that refuses
//! `eth_subscribe` is polled (`poll_interval_ms`) like an HTTP one. One task per connection owns the
//! socket: it writes the requests handed to it and routes each answer to its caller by id. Messages are
//! capped at `max_response_bytes`; a larger one, a message that is not JSON, or a close ends the
//! connection and fails every call in flight with the reason.

use super::config::RpcUrl;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_tungstenite::tungstenite::{self, Message, protocol::WebSocketConfig};
use tokio_util::sync::CancellationToken;

/// Why a call over the connection failed (turned into an `RpcError` by the caller).
#[derive(Debug, Clone, PartialEq)]
pub enum WsFailure {
    /// Could not connect, or the connection ended before the answer.
    Transport(String),
    /// No answer in time.
    Timeout,
    /// A message larger than `max_response_bytes` ended the connection.
    TooLarge,
}

/// Callers waiting for answers, by request id.
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, WsFailure>>>>>;

/// One open connection.
struct Conn {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    next_id: AtomicU64,
    /// Cancelled when the connection ended; its task then failed every pending call.
    ended: CancellationToken,
}

impl Conn {
    /// Sends `{"jsonrpc", "id", "method", "params"}` and waits for the answer with that id.
    async fn call(&self, method: &str, params: &Value, timeout: Duration) -> Result<Value, WsFailure> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending calls lock").insert(id, tx);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        if self.out.send(body).is_err() || self.ended.is_cancelled() {
            self.pending.lock().expect("pending calls lock").remove(&id);
            return Err(WsFailure::Transport("the connection closed".into()));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(WsFailure::Transport("the connection closed".into())),
            Err(_) => {
                self.pending.lock().expect("pending calls lock").remove(&id);
                Err(WsFailure::Timeout)
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Ends the connection's task (its request channel closes too).
        self.ended.cancel();
    }
}

/// A provider reached over WebSocket.
pub struct WsClient {
    url: RpcUrl,
    shown: String,
    timeout: Duration,
    max_bytes: usize,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    heads: Arc<Notify>,
    subscribed: Arc<AtomicBool>,
}

impl WsClient {
    /// A client of `url`; nothing is opened until the first call.
    pub fn new(url: RpcUrl, timeout: Duration, max_bytes: usize) -> Self {
        // wss:// uses rustls with the process's crypto provider: ring, as everywhere in tributary.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            shown: url.masked(),
            url,
            timeout,
            max_bytes,
            conn: tokio::sync::Mutex::new(None),
            heads: Arc::new(Notify::new()),
            subscribed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// One call; the whole answer object (`{"jsonrpc", "id", "result" | "error"}`).
    pub async fn call(&self, method: &str, params: &Value) -> Result<Value, WsFailure> {
        let conn = self.connection().await?;
        conn.call(method, params, self.timeout).await
    }

    /// Resolves when the provider announced a new head since the last call of this (at once if one came
    /// meanwhile); never for a provider that refused the subscription.
    pub async fn new_head(&self) {
        self.heads.notified().await
    }

    /// Whether heads arrive by subscription on the current connection (false: polled).
    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    /// The open connection, opening (and subscribing) when there is none or it ended.
    async fn connection(&self) -> Result<Arc<Conn>, WsFailure> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref()
            && !c.ended.is_cancelled()
        {
            return Ok(c.clone());
        }
        *slot = None;
        self.subscribed.store(false, Ordering::Relaxed);
        let conn = Arc::new(self.open().await?);
        match conn.call("eth_subscribe", &json!(["newHeads"]), self.timeout).await {
            Ok(answer) if answer.get("result").is_some_and(Value::is_string) => {
                self.subscribed.store(true, Ordering::Relaxed);
                tracing::debug!(provider = %self.shown, "subscribed to newHeads");
            }
            Ok(answer) => {
                tracing::info!(provider = %self.shown, answer = %super::wire::excerpt(&answer.to_string()), "the provider refuses eth_subscribe newHeads; polling it for heads");
            }
            Err(e) => return Err(e),
        }
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn open(&self) -> Result<Conn, WsFailure> {
        let config = WebSocketConfig::default()
            .max_message_size(Some(self.max_bytes))
            .max_frame_size(Some(self.max_bytes));
        let connect = tokio_tungstenite::connect_async_with_config(self.url.expose(), Some(config), true);
        let (socket, _) = match tokio::time::timeout(self.timeout, connect).await {
            Err(_) => return Err(WsFailure::Timeout),
            Ok(Err(e)) => return Err(WsFailure::Transport(describe(&e))),
            Ok(Ok(s)) => s,
        };
        let (out, requests) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let ended = CancellationToken::new();
        tokio::spawn(run(
            socket,
            requests,
            pending.clone(),
            self.heads.clone(),
            ended.clone(),
            self.shown.clone(),
        ));
        Ok(Conn {
            out,
            pending,
            next_id: AtomicU64::new(1),
            ended,
        })
    }
}

/// A tungstenite error without the URL (it may carry credentials).
fn describe(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(resp) => format!("the provider answered the upgrade with HTTP {}", resp.status()),
        tungstenite::Error::Url(_) => "the URL is not a WebSocket URL this client can open".into(),
        other => other.to_string(),
    }
}

/// The connection's task: writes requests, routes answers and head notifications, and fails every
/// pending call when the connection ends.
async fn run<S>(
    socket: tokio_tungstenite::WebSocketStream<S>,
    mut requests: mpsc::UnboundedReceiver<String>,
    pending: Pending,
    heads: Arc<Notify>,
    ended: CancellationToken,
    shown: String,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = socket.split();
    let failure = loop {
        tokio::select! {
            _ = ended.cancelled() => break WsFailure::Transport("the connection closed".into()),
            request = requests.recv() => match request {
                Some(text) => {
                    if let Err(e) = sink.send(Message::text(text)).await {
                        break WsFailure::Transport(describe(&e));
                    }
                }
                None => break WsFailure::Transport("the connection closed".into()),
            },
            message = stream.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Err(why) = route(text.as_str(), &pending, &heads) {
                        break WsFailure::Transport(why);
                    }
                }
                Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                    Ok(text) => {
                        if let Err(why) = route(text, &pending, &heads) {
                            break WsFailure::Transport(why);
                        }
                    }
                    Err(_) => break WsFailure::Transport("the provider sent a binary message that is not UTF-8 text".into()),
                },
                Some(Ok(Message::Close(frame))) => {
                    let why = frame.map(|f| format!(" ({} {})", u16::from(f.code), f.reason)).unwrap_or_default();
                    break WsFailure::Transport(format!("the provider closed the connection{why}"));
                }
                Some(Ok(_)) => {} // ping (answered by tungstenite), pong, raw frame
                Some(Err(tungstenite::Error::Capacity(_))) => break WsFailure::TooLarge,
                Some(Err(e)) => break WsFailure::Transport(describe(&e)),
                None => break WsFailure::Transport("the provider closed the connection".into()),
            },
        }
    };
    ended.cancel();
    // Wakes the follower: its next call opens a new connection (and subscribes again) at once, instead
    // of waiting out `poll_interval_ms` with no heads coming.
    heads.notify_one();
    tracing::debug!(provider = %shown, failure = ?failure, "websocket connection ended");
    let waiting: Vec<_> = pending.lock().expect("pending calls lock").drain().collect();
    for (_, tx) in waiting {
        let _ = tx.send(Err(failure.clone()));
    }
    let _ = sink.close().await;
}

/// Hands an answer to its caller, or wakes the follower for a head. `Err`: the message is not JSON-RPC,
/// so no caller can be told which answer it was: the connection ends.
fn route(text: &str, pending: &Pending, heads: &Notify) -> Result<(), String> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "the provider sent a message that is not JSON ({e}): {}",
            super::wire::excerpt(text)
        )
    })?;
    if value.get("method").and_then(Value::as_str) == Some("eth_subscription") {
        heads.notify_one();
        return Ok(());
    }
    let Some(id) = value.get("id").and_then(Value::as_u64) else {
        // Notifications of other kinds, or answers without our ids: nothing waits for them.
        return Ok(());
    };
    if let Some(tx) = pending.lock().expect("pending calls lock").remove(&id) {
        let _ = tx.send(Ok(value));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_go_to_their_callers_and_heads_wake_the_follower() {
        let pending: Pending = Arc::default();
        let heads = Notify::new();
        let (tx, mut rx) = oneshot::channel();
        pending.lock().unwrap().insert(7, tx);
        route(r#"{"jsonrpc":"2.0","id":7,"result":"0x10"}"#, &pending, &heads).unwrap();
        assert_eq!(rx.try_recv().unwrap().unwrap()["result"], "0x10");
        // An answer nobody waits for (timed out) is dropped; a head is a permit for the next wait.
        route(r#"{"jsonrpc":"2.0","id":8,"result":"0x11"}"#, &pending, &heads).unwrap();
        route(
            r#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{}}}"#,
            &pending,
            &heads,
        )
        .unwrap();
        let woke = futures_util::FutureExt::now_or_never(heads.notified());
        assert!(woke.is_some(), "a head announced before the wait wakes it at once");
        let err = route("{truncated", &pending, &heads).unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
    }
}
