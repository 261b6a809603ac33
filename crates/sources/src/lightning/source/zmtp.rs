//! A minimal ZeroMQ SUB client: ZMTP 3.0 (RFC 23) with the NULL mechanism over TCP or IPC, enough to
//! subscribe to a `gossip-publisher-zmq` PUB socket. Written here instead of using a ZeroMQ library so
//! that a frame's announced length is checked before anything is allocated for it.
//!
//! ```text
//! greeting   0xff ‖ 8 bytes (0…0 1) ‖ 0x7f ‖ major 3 ‖ minor 0 ‖ "NULL" padded to 20 ‖ as-server 0 ‖ 31 × 0
//! frame      flags u8 (0x01 more, 0x02 long, 0x04 command) ‖ size (u8, or u64 BE when long) ‖ body
//! READY      command "\x05READY" ‖ properties: name-len u8 ‖ name ‖ value-len u32 BE ‖ value
//! subscribe  (ZMTP 3.0) a one-frame message "\x01" ‖ topic; the empty topic takes everything
//! ```
//!
//! Limits: a message frame longer than [`MAX_FRAME`] bytes, or a message whose frames add up to more, is
//! read past (discarded as it arrives, never buffered) and reported as [`Received::Oversized`]; a command
//! longer than [`MAX_COMMAND`] ends the connection. One task per connection reads messages into a bounded
//! channel of [`QUEUE`] messages, so receiving is cancellation-safe and a fast publisher is slowed down by
//! TCP rather than by memory.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The longest message frame (and message) read: 1 MiB. A plugin message carries one gossip message of at
/// most 65,535 bytes as hex plus its decoded fields, far below.
pub const MAX_FRAME: u64 = 1 << 20;
/// The longest command accepted (READY, ERROR, PING): 4 KiB.
pub const MAX_COMMAND: u64 = 4096;
/// Messages received ahead of the collector loop, per connection.
const QUEUE: usize = 16;
/// At most this many frames in one message.
const MAX_FRAMES: usize = 64;
/// Connecting and the handshake must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ZmtpError {
    /// The endpoint is not `tcp://host:port` or `ipc://path`.
    #[error("endpoint {0:?}: expected tcp://host:port or ipc://path")]
    Endpoint(String),
    /// Connecting or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer does not speak ZMTP 3 with the NULL mechanism, or broke the protocol.
    #[error("ZMTP: {0}")]
    Protocol(String),
    /// The handshake did not finish in time.
    #[error("ZMTP handshake did not finish within {0:?}")]
    Timeout(Duration),
}

/// What a subscription receives.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A message: its frames.
    Message(Vec<Vec<u8>>),
    /// A message longer than [`MAX_FRAME`], read past: the bytes its frames announced (so far).
    Oversized {
        /// Announced length.
        announced: u64,
    },
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A subscribed connection: messages arrive from its reader task.
pub struct Subscription {
    rx: mpsc::Receiver<Result<Received, ZmtpError>>,
    stop: CancellationToken,
}

impl Subscription {
    /// The next message; `None` once the connection ended after its error was returned. Cancellation-safe.
    pub async fn recv(&mut self) -> Option<Result<Received, ZmtpError>> {
        self.rx.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn open(endpoint: &str) -> Result<Box<dyn Io>, ZmtpError> {
    if let Some(addr) = endpoint.strip_prefix("tcp://") {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Box::new(s))
    } else if let Some(path) = endpoint.strip_prefix("ipc://") {
        Ok(Box::new(tokio::net::UnixStream::connect(path).await?))
    } else {
        Err(ZmtpError::Endpoint(endpoint.to_owned()))
    }
}

/// Connects to a PUB (or XPUB) socket at `endpoint` and subscribes to every topic.
pub async fn subscribe(endpoint: &str) -> Result<Subscription, ZmtpError> {
    let io = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        let mut io = open(endpoint).await?;
        handshake(&mut io).await?;
        Ok::<_, ZmtpError>(io)
    })
    .await
    .map_err(|_| ZmtpError::Timeout(HANDSHAKE_TIMEOUT))??;
    let (tx, rx) = mpsc::channel(QUEUE);
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let mut io = BufReader::with_capacity(64 << 10, io);
        loop {
            let next = tokio::select! {
                _ = token.cancelled() => return,
                m = read_message(&mut io) => m,
            };
            let failed = next.is_err();
            if tx.send(next).await.is_err() || failed {
                return;
            }
        }
    });
    Ok(Subscription { rx, stop })
}

/// The 64-byte greeting of a ZMTP 3.0 client with the NULL mechanism.
pub(crate) fn greeting() -> [u8; 64] {
    let mut g = [0u8; 64];
    g[0] = 0xff;
    g[8] = 1;
    g[9] = 0x7f;
    g[10] = 3;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// A command frame (short: every command written here is under 256 bytes).
fn command(name: &str, properties: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name.as_bytes());
    for (k, v) in properties {
        body.push(k.len() as u8);
        body.extend_from_slice(k.as_bytes());
        body.extend_from_slice(&(v.len() as u32).to_be_bytes());
        body.extend_from_slice(v);
    }
    let mut frame = vec![0x04, body.len() as u8];
    frame.extend_from_slice(&body);
    frame
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S) -> Result<(), ZmtpError> {
    io.write_all(&greeting()).await?;
    let mut peer = [0u8; 64];
    io.read_exact(&mut peer).await?;
    if peer[0] != 0xff || peer[9] & 1 != 1 {
        return Err(ZmtpError::Protocol(
            "the peer's greeting is not a ZMTP signature".into(),
        ));
    }
    if peer[10] < 3 {
        return Err(ZmtpError::Protocol(format!(
            "the peer speaks ZMTP {}.{}; 3.0 or later is needed",
            peer[10], peer[11]
        )));
    }
    let mechanism = &peer[12..32];
    if !mechanism.starts_with(b"NULL") || mechanism[4..].iter().any(|b| *b != 0) {
        return Err(ZmtpError::Protocol(format!(
            "the peer wants the {:?} security mechanism; only NULL is supported",
            String::from_utf8_lossy(mechanism).trim_end_matches('\0')
        )));
    }
    io.write_all(&command("READY", &[("Socket-Type", b"SUB")])).await?;
    // The peer's READY (or ERROR).
    let (flags, len) = frame_header(io).await?;
    if flags & 0x04 == 0 || len > MAX_COMMAND {
        return Err(ZmtpError::Protocol(
            "expected the peer's READY command after the greeting".into(),
        ));
    }
    let mut body = vec![0u8; len as usize];
    io.read_exact(&mut body).await?;
    match command_name(&body) {
        Some(b"READY") => {}
        Some(b"ERROR") => {
            return Err(ZmtpError::Protocol(format!(
                "the peer refused the connection: {}",
                String::from_utf8_lossy(body.get(7..).unwrap_or_default())
            )));
        }
        _ => return Err(ZmtpError::Protocol("expected the peer's READY command".into())),
    }
    // ZMTP 3.0 subscription: a message whose first byte is 1, then the topic (empty: everything).
    io.write_all(&[0x00, 0x01, 0x01]).await?;
    io.flush().await?;
    Ok(())
}

fn command_name(body: &[u8]) -> Option<&[u8]> {
    let n = *body.first()? as usize;
    body.get(1..1 + n)
}

async fn frame_header<S: AsyncRead + Unpin>(io: &mut S) -> Result<(u8, u64), ZmtpError> {
    let flags = io.read_u8().await?;
    let len = if flags & 0x02 != 0 {
        io.read_u64().await?
    } else {
        io.read_u8().await? as u64
    };
    Ok((flags, len))
}

/// Reads one message, stepping over commands; a message over [`MAX_FRAME`] is discarded as it arrives.
pub async fn read_message<S: AsyncRead + Unpin>(io: &mut S) -> Result<Received, ZmtpError> {
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut total: u64 = 0;
    let mut oversized = false;
    loop {
        let (flags, len) = frame_header(io).await?;
        if flags & 0x04 != 0 {
            if len > MAX_COMMAND {
                return Err(ZmtpError::Protocol(format!(
                    "a {len}-byte command is longer than {MAX_COMMAND} bytes"
                )));
            }
            let mut body = vec![0u8; len as usize];
            io.read_exact(&mut body).await?;
            if command_name(&body) == Some(b"ERROR") {
                return Err(ZmtpError::Protocol(format!(
                    "the peer sent ERROR: {}",
                    String::from_utf8_lossy(body.get(7..).unwrap_or_default())
                )));
            }
            // PING and other commands need no answer from a ZMTP 3.0 peer.
            continue;
        }
        total = total.saturating_add(len);
        if oversized || total > MAX_FRAME || frames.len() >= MAX_FRAMES {
            oversized = true;
            frames.clear();
            let copied = tokio::io::copy(&mut (&mut *io).take(len), &mut tokio::io::sink()).await?;
            if copied < len {
                return Err(ZmtpError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        } else {
            let mut body = vec![0u8; len as usize];
            io.read_exact(&mut body).await?;
            frames.push(body);
        }
        if flags & 0x01 == 0 {
            return Ok(if oversized {
                Received::Oversized { announced: total }
            } else {
                Received::Message(frames)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flags: u8, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        if body.len() > 255 {
            f.push(flags | 0x02);
            f.extend_from_slice(&(body.len() as u64).to_be_bytes());
        } else {
            f.extend_from_slice(&[flags, body.len() as u8]);
        }
        f.extend_from_slice(body);
        f
    }

    #[tokio::test]
    async fn messages_commands_and_oversized_frames() {
        let mut input = Vec::new();
        input.extend(frame(0x04, b"\x04PING\x00\x00"));
        input.extend(frame(0x01, b"channel_update"));
        input.extend(frame(0x00, b"{\"raw_hex\":\"00\"}"));
        // A frame announcing 2^62 bytes is never allocated: it is read past until the input ends.
        let mut huge = vec![0x02];
        huge.extend_from_slice(&(1u64 << 62).to_be_bytes());
        // A message of two frames over the limit together, then a normal one.
        let big = vec![b'x'; (MAX_FRAME as usize / 2) + 1];
        input.extend(frame(0x01, &big));
        input.extend(frame(0x00, &big));
        input.extend(frame(0x00, b"after"));
        input.extend(&huge);
        input.extend(b"only a few bytes");
        let mut r = &input[..];
        assert_eq!(
            read_message(&mut r).await.unwrap(),
            Received::Message(vec![b"channel_update".to_vec(), b"{\"raw_hex\":\"00\"}".to_vec()])
        );
        assert_eq!(
            read_message(&mut r).await.unwrap(),
            Received::Oversized {
                announced: 2 * big.len() as u64
            }
        );
        assert_eq!(
            read_message(&mut r).await.unwrap(),
            Received::Message(vec![b"after".to_vec()])
        );
        assert!(matches!(read_message(&mut r).await, Err(ZmtpError::Io(_))));
        // A long command ends the connection.
        let mut cmd = vec![0x06];
        cmd.extend_from_slice(&(MAX_COMMAND + 1).to_be_bytes());
        assert!(matches!(read_message(&mut &cmd[..]).await, Err(ZmtpError::Protocol(m)) if m.contains("command")));
    }

    #[tokio::test]
    async fn handshake_with_a_publisher_on_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("tcp://{}", listener.local_addr().unwrap());
        let publisher = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut g = [0u8; 64];
            s.read_exact(&mut g).await.unwrap();
            assert_eq!(g, greeting());
            let mut mine = greeting();
            mine[11] = 1;
            s.write_all(&mine).await.unwrap();
            s.write_all(&command("READY", &[("Socket-Type", b"PUB")]))
                .await
                .unwrap();
            // Their READY, then the subscription message.
            let mut ready = [0u8; 2];
            s.read_exact(&mut ready).await.unwrap();
            let mut body = vec![0u8; ready[1] as usize];
            s.read_exact(&mut body).await.unwrap();
            assert_eq!(command_name(&body), Some(&b"READY"[..]));
            let mut sub = [0u8; 3];
            s.read_exact(&mut sub).await.unwrap();
            assert_eq!(sub, [0, 1, 1]);
            s.write_all(&frame(0x00, b"hello")).await.unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
        });
        let mut sub = subscribe(&endpoint).await.unwrap();
        assert_eq!(
            sub.recv().await.unwrap().unwrap(),
            Received::Message(vec![b"hello".to_vec()])
        );
        drop(sub);
        publisher.await.unwrap();
        assert!(matches!(subscribe("udp://x").await, Err(ZmtpError::Endpoint(_))));
    }
}
