//! How a node learns of events other nodes appended: every append notifies [`CHANNEL`] with
//! `{schema}:{last seq}` at commit, and each store keeps one connection listening. The counter row is
//! also read once a second, so a lost notification (or a connection that broke) delays a delivery by at
//! most about a second, never forever. The same connection hears the nodes' messages
//! ([`MESSAGES`], `{schema}:{message}`), which are not kept: one sent while a node is not listening is
//! lost to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tributary_core::Seq;

/// The notification channel every schema shares (payloads name their schema).
pub(crate) const CHANNEL: &str = "tributary_seq";

/// The channel of [`Leases::broadcast`](tributary_core::cluster::Leases::broadcast).
pub(crate) const MESSAGES: &str = "tributary_messages";

/// How often the counter row is read besides the notifications.
const POLL: Duration = Duration::from_secs(1);

/// The last committed sequence number, and its watchers.
pub(crate) struct SeqWatch {
    pub(crate) last: AtomicU64,
    pub(crate) tx: watch::Sender<Seq>,
    /// The nodes' messages.
    pub(crate) messages: tokio::sync::broadcast::Sender<String>,
}

impl SeqWatch {
    pub(crate) fn new(last: Seq) -> Self {
        Self {
            last: AtomicU64::new(last),
            tx: watch::channel(last).0,
            messages: tokio::sync::broadcast::channel(256).0,
        }
    }

    /// Records a committed last sequence number and wakes the watchers (it only moves forward).
    pub(crate) fn committed(&self, last: Seq) {
        let before = self.last.fetch_max(last, Ordering::AcqRel);
        if last > before {
            self.tx.send_replace(last);
        }
    }
}

/// Listens for the appends of other nodes until aborted, reconnecting after a second when the
/// connection breaks.
pub(crate) async fn listen(connection: tokio_postgres::Config, schema: String, seq_table: String, seq: Arc<SeqWatch>) {
    let prefix = format!("{schema}:");
    // A statement on this connection that takes longer than this means the connection is gone
    // (half-open after a failover): connect again.
    let patience = POLL * 5;
    let mut listening = false;
    loop {
        if let Ok((client, mut conn)) = connection.connect(tokio_postgres::NoTls).await {
            let (found, mut heard) = tokio::sync::mpsc::unbounded_channel::<Seq>();
            let (prefix, messages) = (prefix.clone(), seq.messages.clone());
            let driver = tokio::spawn(async move {
                loop {
                    match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                        Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                            let Some(body) = n.payload().strip_prefix(&prefix) else {
                                continue;
                            };
                            if n.channel() == MESSAGES {
                                let _ = messages.send(body.to_owned());
                            } else if let Ok(last) = body.parse() {
                                let _ = found.send(last);
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => break,
                    }
                }
            });
            let listen = format!("LISTEN {CHANNEL}; LISTEN {MESSAGES}");
            let listen_now = client.batch_execute(&listen);
            if matches!(tokio::time::timeout(patience, listen_now).await, Ok(Ok(()))) {
                listening = true;
                let read = format!("SELECT n FROM {seq_table}");
                let mut poll = tokio::time::interval(POLL);
                loop {
                    tokio::select! {
                        last = heard.recv() => match last {
                            Some(last) => seq.committed(last),
                            None => break,
                        },
                        _ = poll.tick() => match tokio::time::timeout(patience, client.query_one(&read, &[])).await {
                            Ok(Ok(row)) => seq.committed(row.get::<_, i64>(0) as Seq),
                            Ok(Err(_)) | Err(_) => break,
                        },
                    }
                }
            }
            driver.abort();
        }
        if std::mem::take(&mut listening) {
            tracing::warn!(%schema, "PostgreSQL store: the connection listening for the other nodes' appends broke; connecting again every second (until then this node's subscriptions see their events only when this node appends)");
        }
        tokio::time::sleep(POLL).await;
    }
}
