//! How a relay reads `since` and `until`. NIP-01 says both are inclusive (`since <= created_at <= until`),
//! but relays differ: PyPI nostr-relay, for one, answers `created_at < until`. A walk that trusted the
//! bounds would lose the events at the last second of every window of such a relay. So each connection
//! first asks one event it holds by id, with `since` and then `until` set to that event's `created_at`:
//! whichever bound drops the event is exclusive there, and the walk widens it by one second.

use super::conn::{Connection, Incoming};
use super::message::RelayMessage;
use serde_json::{Value, json};
use std::time::Duration;

/// A relay's reading of the bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bounds {
    /// `since` is exclusive (`created_at > since`).
    pub since_exclusive: bool,
    /// `until` is exclusive (`created_at < until`).
    pub until_exclusive: bool,
}

impl Bounds {
    /// The `since` and `until` to send for the window `since..=until`.
    pub fn ask(&self, since: u64, until: u64) -> (u64, u64) {
        (
            if self.since_exclusive {
                since.saturating_sub(1)
            } else {
                since
            },
            if self.until_exclusive {
                until.saturating_add(1)
            } else {
                until
            },
        )
    }
}

/// The outcome of a probe: the bounds, and what else came meanwhile (to be handled by the archive).
pub struct Probed {
    /// How the relay reads the bounds (the NIP-01 reading when it holds no event to ask with).
    pub bounds: Bounds,
    /// Messages for other subscriptions, in order.
    pub other: Vec<Incoming>,
}

/// Probes the relay with one event matching the first of `filters` that finds one.
pub async fn probe(conn: &mut Connection, filters: Vec<Value>, wait: Duration) -> Result<Probed, String> {
    let mut other = Vec::new();
    let deadline = tokio::time::Instant::now() + (wait * 4).max(Duration::from_secs(60));
    let run = async {
        let mut found = None;
        for (i, filter) in filters.into_iter().enumerate() {
            let sub = format!("probe{i}");
            let events = ask(conn, &sub, json!([filter_with_limit(filter)]), wait, &mut other).await?;
            found = events.first().and_then(|r| id_and_time(r));
            if found.is_some() {
                break;
            }
        }
        let Some((id, at)) = found else {
            return Ok::<Bounds, String>(Bounds::default());
        };
        let since = ask(
            conn,
            "probe-since",
            json!([{"ids": [id], "since": at}]),
            wait,
            &mut other,
        )
        .await?;
        let until = ask(
            conn,
            "probe-until",
            json!([{"ids": [id], "until": at}]),
            wait,
            &mut other,
        )
        .await?;
        Ok(Bounds {
            since_exclusive: since.is_empty(),
            until_exclusive: until.is_empty(),
        })
    };
    let bounds = tokio::time::timeout_at(deadline, run)
        .await
        .map_err(|_| "the probe of since/until did not end within its deadline".to_owned())??;
    Ok(Probed { bounds, other })
}

fn filter_with_limit(mut filter: Value) -> Value {
    if let Value::Object(m) = &mut filter {
        m.insert("limit".into(), 1.into());
    }
    filter
}

fn id_and_time(raw: &str) -> Option<(String, u64)> {
    let v: Value = serde_json::from_str(raw).ok()?;
    let id = v["id"].as_str().filter(|s| s.len() == 64)?.to_owned();
    Some((id, v["created_at"].as_u64()?))
}

/// Sends `REQ sub filters…` and gathers the events until EOSE (at most a few), then closes it.
async fn ask(
    conn: &mut Connection,
    sub: &str,
    filters: Value,
    wait: Duration,
    other: &mut Vec<Incoming>,
) -> Result<Vec<String>, String> {
    let mut req = vec![json!("REQ"), json!(sub)];
    req.extend(filters.as_array().cloned().unwrap_or_default());
    conn.send(&Value::Array(req)).await?;
    let mut events = Vec::new();
    loop {
        match conn.recv(wait).await {
            None => return Err(format!("no answer to a REQ within {} ms", wait.as_millis())),
            Some(Incoming::Message(RelayMessage::Event { sub: got, event })) if got == sub => {
                if events.len() < 4 {
                    events.push(event);
                }
            }
            Some(Incoming::Message(RelayMessage::Eose { sub: got })) if got == sub => break,
            Some(Incoming::Message(RelayMessage::Closed { sub: got, message })) if got == sub => {
                return Err(format!("the relay closed a REQ: {message}"));
            }
            Some(Incoming::Ended(why)) => return Err(why),
            Some(m) => {
                // Before the live subscription only notices and garbage come; a few are kept.
                if other.len() < 64 {
                    other.push(m);
                }
            }
        }
    }
    let _ = conn.send(&json!(["CLOSE", sub])).await;
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_bounds_are_widened_by_a_second() {
        assert_eq!(Bounds::default().ask(10, 20), (10, 20));
        let b = Bounds {
            since_exclusive: true,
            until_exclusive: true,
        };
        assert_eq!(b.ask(10, 20), (9, 21));
        assert_eq!(b.ask(0, u64::MAX), (0, u64::MAX));
    }
}
