//! The replication session: startup, authentication (trust, password, SCRAM-SHA-256), START_REPLICATION
//! with `pgoutput` protocol 2 and `streaming 'on'` where the server has it (PostgreSQL 14 and later;
//! protocol 1 before), the CopyBoth stream, and standby status updates.
//!
//! Framing, the CopyData parser and the SCRAM exchange are pgwire-replication's building blocks; the
//! session is ours because pgwire-replication 0.5's client always asks for protocol 1, which cannot
//! stream large transactions in progress.
//!
//! One task owns the socket: it reads messages (with a cancel-safe reader), forwards them on a bounded
//! channel (when the channel is full it waits: backpressure reaches the server through TCP), answers
//! keepalives that ask for a reply, and reports the flushed position every `status_interval`. The
//! position it reports is only what [`Session::confirm`] was given: what the store holds durably.

use bytes::Bytes;
use pgwire_replication::protocol::framing::{
    MessageReader, read_backend_message, write_copy_data, write_password_message, write_query, write_startup_message,
};
use pgwire_replication::protocol::{
    ReplicationCopyData, encode_standby_status_update, parse_auth_request, parse_copy_data, parse_error_response,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::pgoutput::Lsn;

/// What the stream delivers.
#[derive(Debug)]
pub enum Frame {
    /// One pgoutput message.
    Data(Bytes),
    /// The server's WAL end; everything before it was sent.
    KeepAlive(Lsn),
}

/// Where and how to open the session.
pub struct SessionConfig {
    /// Host name or address (TCP).
    pub host: String,
    /// Port.
    pub port: u16,
    /// User.
    pub user: String,
    /// Password (empty: none).
    pub password: String,
    /// Database.
    pub database: String,
    /// `application_name`.
    pub application_name: String,
    /// Startup `options` (`-c name=value …`).
    pub options: String,
    /// The slot.
    pub slot: String,
    /// The publication.
    pub publication: String,
    /// Ask for protocol 2 with streaming of transactions in progress.
    pub streaming: bool,
    /// Resume after this LSN.
    pub start: Lsn,
    /// How often the flushed position is reported.
    pub status_interval: Duration,
}

/// A running replication session.
pub struct Session {
    rx: mpsc::Receiver<Result<Frame, String>>,
    confirmed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn err(e: pgwire_replication::PgWireError) -> String {
    e.to_string()
}

async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, cfg: &SessionConfig) -> Result<(), String> {
    loop {
        let msg = read_backend_message(s).await.map_err(err)?;
        match msg.tag {
            b'R' => {
                let (code, data) = parse_auth_request(&msg.payload).map_err(err)?;
                match code {
                    0 => {}
                    3 => {
                        let mut p = cfg.password.as_bytes().to_vec();
                        p.push(0);
                        write_password_message(s, &p).await.map_err(err)?;
                    }
                    10 => scram(s, cfg, data).await?,
                    5 => {
                        return Err("the server asks for md5 password authentication, which this build does not speak; use scram-sha-256 in pg_hba.conf".into());
                    }
                    other => return Err(format!("unsupported authentication request {other} from the server")),
                }
            }
            b'E' => return Err(format!("server: {}", parse_error_response(&msg.payload))),
            b'Z' => return Ok(()),
            _ => {}
        }
    }
}

async fn auth_data<S: AsyncRead + Unpin>(s: &mut S, want: i32) -> Result<Vec<u8>, String> {
    loop {
        let msg = read_backend_message(s).await.map_err(err)?;
        match msg.tag {
            b'R' => {
                let (code, data) = parse_auth_request(&msg.payload).map_err(err)?;
                if code != want {
                    return Err(format!("SCRAM: expected authentication message {want}, got {code}"));
                }
                return Ok(data.to_vec());
            }
            b'E' => return Err(format!("server: {}", parse_error_response(&msg.payload))),
            _ => {}
        }
    }
}

async fn scram<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    cfg: &SessionConfig,
    mechanisms: &[u8],
) -> Result<(), String> {
    use pgwire_replication::auth::scram::ScramClient;
    if !mechanisms.split(|b| *b == 0).any(|m| m == b"SCRAM-SHA-256") {
        return Err("the server offers no SCRAM-SHA-256 authentication".into());
    }
    if cfg.password.is_empty() {
        return Err(
            "the server asks for a password and none is configured (url, password_env or password_file)".into(),
        );
    }
    let client = ScramClient::new(&cfg.user);
    let mut init = b"SCRAM-SHA-256\0".to_vec();
    init.extend_from_slice(&(client.client_first.len() as i32).to_be_bytes());
    init.extend_from_slice(client.client_first.as_bytes());
    write_password_message(s, &init).await.map_err(err)?;
    let first = auth_data(s, 11).await?;
    let (fin, auth_message, salted) = client
        .client_final(&cfg.password, &String::from_utf8_lossy(&first))
        .map_err(err)?;
    write_password_message(s, fin.as_bytes()).await.map_err(err)?;
    let last = auth_data(s, 12).await?;
    ScramClient::verify_server_final(&String::from_utf8_lossy(&last), &salted, &auth_message).map_err(err)
}

/// A quoted string literal for the replication command.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Connects and authenticates a replication connection (`replication=database`).
async fn open(cfg: &SessionConfig) -> Result<TcpStream, String> {
    let mut s = tokio::time::timeout(
        Duration::from_secs(10),
        TcpStream::connect((cfg.host.as_str(), cfg.port)),
    )
    .await
    .map_err(|_| format!("connecting to {}:{} timed out after 10 s", cfg.host, cfg.port))?
    .map_err(|e| format!("cannot connect to {}:{}: {e}", cfg.host, cfg.port))?;
    s.set_nodelay(true).ok();
    let params = [
        ("user", cfg.user.as_str()),
        ("database", cfg.database.as_str()),
        ("replication", "database"),
        ("application_name", cfg.application_name.as_str()),
        ("options", cfg.options.as_str()),
        ("client_encoding", "UTF8"),
    ];
    write_startup_message(&mut s, 196608, &params).await.map_err(err)?;
    authenticate(&mut s, cfg).await?;
    Ok(s)
}

/// A slot just created with an exported snapshot; the snapshot can be imported (`SET TRANSACTION
/// SNAPSHOT`) for as long as this value lives and nothing else is sent on its connection.
pub struct Exported {
    _connection: TcpStream,
    /// The slot's consistent point: streaming from here follows the snapshot exactly.
    pub consistent_point: Lsn,
    /// The snapshot's name.
    pub snapshot: String,
}

/// Creates `cfg.slot` (logical, pgoutput) on a replication connection, exporting its snapshot.
pub async fn create_slot_exporting(cfg: &SessionConfig) -> Result<Exported, String> {
    let mut s = open(cfg).await?;
    let sql = format!(
        "CREATE_REPLICATION_SLOT \"{}\" LOGICAL pgoutput EXPORT_SNAPSHOT",
        cfg.slot
    );
    write_query(&mut s, &sql).await.map_err(err)?;
    let mut row: Option<Vec<Option<String>>> = None;
    loop {
        let msg = read_backend_message(&mut s).await.map_err(err)?;
        match msg.tag {
            b'D' => row = Some(data_row(&msg.payload).ok_or("CREATE_REPLICATION_SLOT: a malformed answer row")?),
            b'E' => {
                return Err(format!(
                    "CREATE_REPLICATION_SLOT: {}",
                    parse_error_response(&msg.payload)
                ));
            }
            b'Z' => break,
            _ => {}
        }
    }
    // Columns: slot_name, consistent_point, snapshot_name, output_plugin.
    let row = row.ok_or("CREATE_REPLICATION_SLOT answered no row")?;
    let field = |i: usize| row.get(i).cloned().flatten();
    let consistent_point = field(1)
        .as_deref()
        .and_then(Lsn::parse)
        .ok_or("CREATE_REPLICATION_SLOT answered no consistent point")?;
    let snapshot = field(2).ok_or("CREATE_REPLICATION_SLOT exported no snapshot")?;
    Ok(Exported {
        _connection: s,
        consistent_point,
        snapshot,
    })
}

/// A DataRow's fields as text (`None`: NULL), or `None` when it is malformed.
fn data_row(b: &[u8]) -> Option<Vec<Option<String>>> {
    let n = i16::from_be_bytes(b.get(..2)?.try_into().ok()?);
    let mut at = 2;
    let mut out = Vec::new();
    for _ in 0..n.max(0) {
        let len = i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?);
        at += 4;
        if len < 0 {
            out.push(None);
            continue;
        }
        let bytes = b.get(at..at + len as usize)?;
        at += len as usize;
        out.push(Some(String::from_utf8_lossy(bytes).into_owned()));
    }
    Some(out)
}

impl Session {
    /// Connects, authenticates and starts streaming from `cfg.start`.
    pub async fn start(cfg: SessionConfig) -> Result<Self, String> {
        let mut s = open(&cfg).await?;
        let options = if cfg.streaming {
            format!(
                "proto_version '2', streaming 'on', publication_names {}",
                lit(&format!("\"{}\"", cfg.publication))
            )
        } else {
            format!(
                "proto_version '1', publication_names {}",
                lit(&format!("\"{}\"", cfg.publication))
            )
        };
        let sql = format!(
            "START_REPLICATION SLOT \"{}\" LOGICAL {} ({options})",
            cfg.slot, cfg.start
        );
        write_query(&mut s, &sql).await.map_err(err)?;
        loop {
            let msg = read_backend_message(&mut s).await.map_err(err)?;
            match msg.tag {
                b'W' => break,
                b'E' => return Err(format!("START_REPLICATION: {}", parse_error_response(&msg.payload))),
                _ => {}
            }
        }
        let (tx, rx) = mpsc::channel(256);
        let confirmed = Arc::new(AtomicU64::new(cfg.start.0));
        let task = tokio::spawn(run(s, tx, confirmed.clone(), cfg.status_interval));
        Ok(Self { rx, confirmed, task })
    }

    /// The next frame; an error or `None` ends the session. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<Frame, String>> {
        self.rx.recv().await
    }

    /// Everything before `lsn` is durably stored: the next status update reports it.
    pub fn confirm(&self, lsn: Lsn) {
        self.confirmed.fetch_max(lsn.0, Ordering::Relaxed);
    }
}

async fn status(s: &mut TcpStream, confirmed: &AtomicU64) -> Result<(), String> {
    let lsn = pgwire_replication::Lsn(confirmed.load(Ordering::Relaxed));
    let now = tributary_core::Timestamp::now().0 - super::pgoutput::PG_EPOCH_OFFSET_MICROS;
    write_copy_data(s, &encode_standby_status_update(lsn, now, false))
        .await
        .map_err(err)
}

/// The socket's task: read, forward, answer keepalives, report the confirmed position.
async fn run(mut s: TcpStream, tx: mpsc::Sender<Result<Frame, String>>, confirmed: Arc<AtomicU64>, interval: Duration) {
    let mut reader = MessageReader::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let msg = tokio::select! {
            m = reader.read(&mut s) => m,
            _ = ticker.tick() => {
                if let Err(e) = status(&mut s, &confirmed).await {
                    let _ = tx.send(Err(format!("sending a status update: {e}"))).await;
                    return;
                }
                continue;
            }
            _ = tx.closed() => {
                let _ = status(&mut s, &confirmed).await;
                return;
            }
        };
        let frame = match msg {
            Err(e) => Err(format!("replication stream: {e}")),
            Ok(m) => match m.tag {
                b'd' => match parse_copy_data(m.payload) {
                    Ok(ReplicationCopyData::XLogData { data, .. }) => Ok(Frame::Data(data)),
                    Ok(ReplicationCopyData::KeepAlive {
                        wal_end,
                        reply_requested,
                        ..
                    }) => {
                        if reply_requested && let Err(e) = status(&mut s, &confirmed).await {
                            let _ = tx.send(Err(format!("answering a keepalive: {e}"))).await;
                            return;
                        }
                        Ok(Frame::KeepAlive(Lsn(wal_end.0)))
                    }
                    Err(e) => Err(format!("replication stream: {e}")),
                },
                b'E' => Err(format!("server: {}", parse_error_response(&m.payload))),
                b'c' => Err("the server ended the replication stream".into()),
                _ => continue,
            },
        };
        let end = frame.is_err();
        if tx.send(frame).await.is_err() || end {
            return;
        }
    }
}
