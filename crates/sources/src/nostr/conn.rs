//! One WebSocket connection to a relay: opened directly (the host's addresses checked against the local
//! ranges, so a public name that resolves to a private address is refused too) or through the SOCKS5
//! proxy; messages capped in size; read by a task of its own into a small bounded queue, so a relay
//! that floods waits on its own socket and holds no more than a few messages in memory.

use super::message::RelayMessage;
use super::relay_url::local_ip;
use super::socks::{self, ProxyAddr};
use super::{Network, RelayUrl};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message, protocol::WebSocketConfig};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What comes from a relay.
#[derive(Debug)]
pub enum Incoming {
    /// A message.
    Message(RelayMessage),
    /// A text that is not a relay message: why, and its start.
    Garbage {
        /// What is wrong.
        why: String,
        /// Its first bytes.
        excerpt: String,
    },
    /// The connection ended: why.
    Ended(String),
}

/// How to reach relays.
#[derive(Clone, Debug)]
pub struct Dial {
    /// The SOCKS5 proxy for `.onion`, `.i2p` and `.loki` relays.
    pub proxy: Option<ProxyAddr>,
    /// Whether local addresses may be connected to.
    pub allow_private: bool,
    /// Longest wait for the connection and the WebSocket upgrade.
    pub timeout: Duration,
    /// Largest message read; a larger one ends the connection.
    pub max_message_bytes: usize,
}

/// Messages queued between the reading task and the archive, per relay.
const QUEUE: usize = 8;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An open connection.
pub struct Connection {
    sink: SplitSink<Socket, Message>,
    incoming: mpsc::Receiver<Incoming>,
    reader: tokio::task::JoinHandle<()>,
    /// The longest wait for a message to be written.
    send_timeout: Duration,
    /// When the last frame of any kind (pongs included) came from the relay.
    heard: Arc<Mutex<Instant>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The host (without brackets) and port of a relay URL in its normal form.
pub fn host_port(url: &RelayUrl) -> (String, u16) {
    let s = url.as_str();
    let (tls, rest) = match s.strip_prefix("wss://") {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix("ws://").unwrap_or(s)),
    };
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let default = if tls { 443 } else { 80 };
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').unwrap_or((v6, ""));
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(default);
        return (host.to_owned(), port);
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().unwrap_or(default)),
        None => (authority.to_owned(), default),
    }
}

impl Dial {
    /// Whether `url` can be reached with this dial (an overlay network needs the proxy).
    pub fn reaches(&self, url: &RelayUrl) -> bool {
        match url.network() {
            Network::Clearnet | Network::Local => true,
            Network::Tor | Network::I2p | Network::Loki => self.proxy.is_some(),
        }
    }

    /// Opens a connection to `url`.
    pub async fn open(&self, url: &RelayUrl) -> Result<Connection, String> {
        let (host, port) = host_port(url);
        let tcp = match (url.network(), &self.proxy) {
            (Network::Tor | Network::I2p | Network::Loki, Some(proxy)) => {
                socks::connect(proxy, &host, port, self.timeout).await?
            }
            (Network::Tor | Network::I2p | Network::Loki, None) => {
                return Err(format!(
                    "{url} is on an overlay network ({:?}); set proxy = \"socks5://127.0.0.1:9050\" to reach it",
                    url.network()
                ));
            }
            _ => tokio::time::timeout(self.timeout, self.direct(&host, port))
                .await
                .map_err(|_| format!("no connection within {} ms", self.timeout.as_millis()))??,
        };
        let _ = tcp.set_nodelay(true);
        // wss:// uses rustls with the process's crypto provider: ring, as everywhere in tributary.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = WebSocketConfig::default()
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes));
        let upgrade = tokio_tungstenite::client_async_tls_with_config(url.as_str(), tcp, Some(config), None);
        let (socket, _) = tokio::time::timeout(self.timeout, upgrade)
            .await
            .map_err(|_| format!("no WebSocket upgrade within {} ms", self.timeout.as_millis()))?
            .map_err(|e| describe(&e))?;
        let (sink, stream) = socket.split();
        let (tx, incoming) = mpsc::channel(QUEUE);
        let heard = Arc::new(Mutex::new(Instant::now()));
        let reader = tokio::spawn(read(stream, tx, heard.clone()));
        Ok(Connection {
            sink,
            incoming,
            reader,
            send_timeout: self.timeout,
            heard,
        })
    }

    /// A TCP connection to the first address of `host` that answers, refusing local addresses unless
    /// allowed.
    async fn direct(&self, host: &str, port: u16) -> Result<TcpStream, String> {
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("{host}: cannot resolve ({e})"))?
            .collect();
        let mut last = format!("{host}: no address");
        for addr in addrs {
            if !self.allow_private
                && let Some(why) = local_ip(addr.ip())
            {
                last = format!(
                    "{host} resolves to {} ({why}); set allow_private_networks = true to archive a local relay",
                    addr.ip()
                );
                continue;
            }
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(last)
    }
}

impl Connection {
    /// Sends a client message (`["REQ", …]`, `["CLOSE", sub]`, `["EVENT", …]`).
    pub async fn send(&mut self, message: &serde_json::Value) -> Result<(), String> {
        self.write(Message::text(message.to_string())).await
    }

    /// Sends a WebSocket ping: the relay's pong (or any other frame) shows the connection is alive.
    pub async fn ping(&mut self) -> Result<(), String> {
        self.write(Message::Ping(Vec::new().into())).await
    }

    /// How long ago the relay last sent a frame.
    pub fn silent_for(&self) -> Duration {
        self.heard.lock().map(|t| t.elapsed()).unwrap_or_default()
    }

    async fn write(&mut self, message: Message) -> Result<(), String> {
        match tokio::time::timeout(self.send_timeout, self.sink.send(message)).await {
            Ok(sent) => sent.map_err(|e| describe(&e)),
            Err(_) => Err(format!(
                "the relay did not read a message within {} ms",
                self.send_timeout.as_millis()
            )),
        }
    }

    /// The next thing from the relay, or `None` when nothing came within `wait`.
    pub async fn recv(&mut self, wait: Duration) -> Option<Incoming> {
        match tokio::time::timeout(wait, self.incoming.recv()).await {
            Ok(Some(m)) => Some(m),
            Ok(None) => Some(Incoming::Ended("the connection ended".into())),
            Err(_) => None,
        }
    }

    /// Closes politely (best effort).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.sink.close()).await;
    }
}

/// A tungstenite error in words.
fn describe(e: &tungstenite::Error) -> String {
    match e {
        tungstenite::Error::Http(resp) => format!("the relay answered the upgrade with HTTP {}", resp.status()),
        tungstenite::Error::Capacity(c) => format!("the relay sent a message too large to read ({c})"),
        other => other.to_string(),
    }
}

fn excerpt(s: &str) -> String {
    super::prefix(s, 1024).to_owned()
}

async fn read(
    mut stream: futures_util::stream::SplitStream<Socket>,
    tx: mpsc::Sender<Incoming>,
    heard: Arc<Mutex<Instant>>,
) {
    let ended = loop {
        let next = stream.next().await;
        if let Ok(mut t) = heard.lock() {
            *t = Instant::now();
        }
        let item = match next {
            None => break "the relay closed the connection".to_owned(),
            Some(Err(e)) => break describe(&e),
            Some(Ok(Message::Text(text))) => match RelayMessage::parse(&text) {
                Ok(m) => Incoming::Message(m),
                Err(why) => Incoming::Garbage {
                    why,
                    excerpt: excerpt(&text),
                },
            },
            Some(Ok(Message::Binary(b))) => Incoming::Garbage {
                why: "a binary message (relays send text)".into(),
                excerpt: excerpt(&String::from_utf8_lossy(&b)),
            },
            Some(Ok(Message::Close(frame))) => {
                break match frame {
                    Some(f) => format!("the relay closed the connection ({} {})", f.code, f.reason),
                    None => "the relay closed the connection".to_owned(),
                };
            }
            Some(Ok(_)) => continue,
        };
        if tx.send(item).await.is_err() {
            return;
        }
    };
    let _ = tx.send(Incoming::Ended(ended)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports_of_normal_forms() {
        let u = |s: &str| RelayUrl::parse(s, true).unwrap();
        assert_eq!(
            host_port(&u("wss://relay.example.com")),
            ("relay.example.com".into(), 443)
        );
        assert_eq!(
            host_port(&u("ws://relay.example.com/x")),
            ("relay.example.com".into(), 80)
        );
        assert_eq!(host_port(&u("ws://127.0.0.1:7777")), ("127.0.0.1".into(), 7777));
        assert_eq!(host_port(&u("wss://[::1]:8443/a")), ("::1".into(), 8443));
    }

    #[test]
    fn overlay_relays_need_the_proxy() {
        let mut dial = Dial {
            proxy: None,
            allow_private: false,
            timeout: Duration::from_secs(1),
            max_message_bytes: 1 << 20,
        };
        let onion = RelayUrl::parse("ws://abcdefghijklmnop.onion", false).unwrap();
        assert!(!dial.reaches(&onion));
        dial.proxy = Some(ProxyAddr::parse("socks5://127.0.0.1:9050").unwrap());
        assert!(dial.reaches(&onion));
    }
}
