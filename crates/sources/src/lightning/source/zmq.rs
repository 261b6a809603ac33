//! The `gossip-publisher-zmq` plugin's stream: a ZeroMQ PUB socket sending two frames per message, a topic
//! and the JSON `{"metadata": {"type", "name", "timestamp", "sender_node_id", "length"}, "raw_hex",
//! "parsed"}` (`raw_gossip_hex` is accepted for `raw_hex`). Only `raw_hex` is trusted: it is re-framed
//! ([`envelope::reframe`](crate::lightning::envelope::reframe)), decoded and verified like any input;
//! `parsed` is ignored.
//!
//! Sizes: a message longer than [`zmtp::MAX_FRAME`] (1 MiB) is read past without being buffered, and a
//! `raw_hex` longer than the longest envelope BOLT #1 allows (65,535-byte message) is refused before it
//! is decoded; both are rejects (`malformed`) that never stop the collector.

use super::task::{Shared, ingest};
use super::zmtp::{self, Received};
use crate::lightning::events::Origin;
use crate::lightning::{envelope, wire};
use std::time::Duration;
use tributary_core::{Reject, SourceContext, SourceError, Timestamp};

/// One message of the plugin: the type-prefixed gossip, its collector and its timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginMessage {
    /// The type-prefixed message.
    pub msg: Vec<u8>,
    /// `metadata.sender_node_id`, when present.
    pub sender: Option<String>,
    /// `metadata.timestamp` (Unix seconds), when present.
    pub timestamp: Option<u32>,
}

/// Parses the JSON frame of a plugin event.
pub fn parse_plugin_event(json: &[u8]) -> Result<PluginMessage, String> {
    let v: serde_json::Value = serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
    let raw_hex = v
        .get("raw_hex")
        .or_else(|| v.get("raw_gossip_hex"))
        .and_then(|h| h.as_str())
        .ok_or("no raw_hex")?;
    let raw_hex = raw_hex.trim();
    if raw_hex.len() > 2 * wire::MAX_ENVELOPE_LEN {
        return Err(format!(
            "raw_hex: {} hex digits; {}",
            raw_hex.len(),
            wire::too_long(raw_hex.len() as u64 / 2)
        ));
    }
    let bytes = hex::decode(raw_hex).map_err(|e| format!("raw_hex is not hex: {e}"))?;
    let msg = envelope::reframe(&bytes)
        .map(|r| r.msg.into_owned())
        .ok_or("raw_hex: no envelope shape frames a known gossip message")?;
    let meta = v.get("metadata");
    Ok(PluginMessage {
        msg,
        sender: meta
            .and_then(|m| m.get("sender_node_id"))
            .and_then(|s| s.as_str())
            .map(str::to_owned),
        timestamp: meta
            .and_then(|m| m.get("timestamp"))
            .and_then(|t| t.as_u64())
            .and_then(|t| u32::try_from(t).ok()),
    })
}

/// Messages of one observer, with where they came from.
type Items = Vec<(Vec<u8>, Origin)>;

/// Subscribes to one collector until shutdown, reconnecting with exponential backoff (0.1 s to 30 s).
pub(crate) async fn collect(
    cx: SourceContext,
    pipeline: Shared,
    endpoint: String,
    batch: usize,
) -> Result<(), SourceError> {
    let mut backoff = Duration::from_millis(100);
    let mut received: u64 = 0;
    loop {
        let sock = tokio::select! {
            _ = cx.shutdown.cancelled() => return Ok(()),
            s = zmtp::subscribe(&endpoint) => s,
        };
        let mut sock = match sock {
            Ok(s) => {
                tracing::info!(source = %cx.name, %endpoint, "subscribed to collector");
                s
            }
            Err(error) => {
                tracing::warn!(source = %cx.name, %endpoint, %error, retry_in = ?backoff, "cannot connect to collector; retrying");
                tokio::select! {
                    _ = cx.shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        loop {
            let first = tokio::select! {
                _ = cx.shutdown.cancelled() => return Ok(()),
                m = sock.recv() => m,
            };
            let mut frames: Vec<Received> = match first {
                Some(Ok(m)) => vec![m],
                Some(Err(error)) => {
                    tracing::warn!(source = %cx.name, %endpoint, %error, "collector connection lost; reconnecting");
                    break;
                }
                None => {
                    tracing::warn!(source = %cx.name, %endpoint, "collector connection closed; reconnecting");
                    break;
                }
            };
            backoff = Duration::from_millis(100);
            // Gather what else is already there, up to one batch.
            while frames.len() < batch {
                match tokio::time::timeout(Duration::from_millis(20), sock.recv()).await {
                    Ok(Some(Ok(m))) => frames.push(m),
                    // An error comes back on the next recv (the channel keeps it): handled above.
                    _ => break,
                }
            }
            let mut runs: Vec<(String, Items)> = Vec::new();
            let mut rejects = Vec::new();
            for m in frames {
                received += 1;
                let position = format!("{endpoint} #{received}");
                let json = match m {
                    Received::Message(mut frames) => frames.pop().unwrap_or_default(),
                    Received::Oversized { announced } => {
                        let reason = format!(
                            "malformed: a {announced}-byte collector message is longer than {} bytes (1 MiB, the limit of one plugin message); read past without keeping it",
                            zmtp::MAX_FRAME
                        );
                        tracing::warn!(source = %cx.name, %endpoint, %reason, "collector message skipped and kept as a reject");
                        rejects.push(Reject {
                            position,
                            reason,
                            excerpt: String::new(),
                            at: Timestamp::now(),
                        });
                        continue;
                    }
                };
                match parse_plugin_event(&json) {
                    Ok(p) => {
                        let observer = p.sender.unwrap_or_else(|| endpoint.clone());
                        let item = (
                            p.msg,
                            Origin {
                                position,
                                timestamp: p.timestamp,
                            },
                        );
                        match runs.last_mut() {
                            Some((o, items)) if *o == observer => items.push(item),
                            _ => runs.push((observer, vec![item])),
                        }
                    }
                    Err(reason) => rejects.push(Reject {
                        position,
                        reason: format!("malformed: {reason}"),
                        excerpt: String::from_utf8_lossy(&json[..json.len().min(1024)]).into_owned(),
                        at: Timestamp::now(),
                    }),
                }
            }
            if runs.is_empty() && !rejects.is_empty() {
                ingest(&cx, &pipeline, Vec::new(), endpoint.clone(), rejects, None).await?;
                continue;
            }
            for (observer, items) in runs {
                ingest(&cx, &pipeline, items, observer, std::mem::take(&mut rejects), None).await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_plugin_event;

    #[test]
    fn plugin_events_parse_and_bad_ones_say_why() {
        let ok = br#"{"metadata":{"type":258,"name":"channel_update","timestamp":1700000000,"sender_node_id":"02aa","length":3},"raw_hex":"0102aabbcc","parsed":{}}"#;
        // Too short for a channel update: refused by the envelope check.
        assert!(parse_plugin_event(ok).unwrap_err().contains("no envelope"));
        assert!(parse_plugin_event(b"{}").unwrap_err().contains("no raw_hex"));
        assert!(parse_plugin_event(b"nope").unwrap_err().contains("not JSON"));
        // Longer than a message BOLT #1 allows: refused before decoding, saying why.
        let long = format!(r#"{{"raw_hex":"{}"}}"#, "00".repeat(70_000));
        let err = parse_plugin_event(long.as_bytes()).unwrap_err();
        assert!(err.contains("140000 hex digits") && err.contains("65,535"), "{err}");
    }
}
