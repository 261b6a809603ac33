//! Turning the raw events of an answer into stored events: each parsed with its size bound, its id
//! recomputed and its signature verified — on every core when the batch is large — then shaped as a
//! `nostr.<kind>` event. What fails becomes a reject naming the reason and the relay.

use super::{EventError, NostrEvent};
use tributary_core::{EventId, NewEvent, Reject, Timestamp};

/// Below this many events a batch is verified on the calling thread.
const PARALLEL_FROM: usize = 64;

/// The event as tributary stores it: kind `nostr.<kind>`, id = the NIP-01 id, key = the pubkey (hex),
/// occurred_at = `created_at`, data = the event JSON, position = `created_at`.
pub fn shape(e: &NostrEvent) -> NewEvent {
    NewEvent {
        id: EventId(e.id),
        kind: format!("nostr.{}", e.kind),
        key: Some(hex::encode(e.pubkey)),
        occurred_at: Some(Timestamp::from_unix_secs(i64::try_from(e.created_at).unwrap_or(i64::MAX)).clamped()),
        position: Some(e.created_at.to_string()),
        payload: Vec::new(),
        data: e.to_json(),
        tenant: None,
        retracts: None,
    }
}

/// One raw event's verdict.
pub type Verdict = Result<NostrEvent, (EventError, String)>;

fn check(raw: &str, max_bytes: usize) -> Verdict {
    let excerpt = || super::prefix(raw, 1024).to_owned();
    let event = NostrEvent::parse(raw, max_bytes).map_err(|e| (e, excerpt()))?;
    event.verify().map_err(|e| (e, excerpt()))?;
    Ok(event)
}

/// Checks every raw event, in order, on all cores for a large batch (run it off the async threads).
pub fn check_all(raws: &[String], max_bytes: usize) -> Vec<Verdict> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if raws.len() < PARALLEL_FROM || threads == 1 {
        return raws.iter().map(|r| check(r, max_bytes)).collect();
    }
    let chunk = raws.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = (raws.chunks(chunk))
            .map(|part| s.spawn(move || part.iter().map(|r| check(r, max_bytes)).collect::<Vec<_>>()))
            .collect();
        parts.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

/// The reject of an event that failed, from `relay`.
pub fn reject(relay: &str, error: &EventError, excerpt: String) -> Reject {
    Reject {
        position: relay.to_owned(),
        reason: format!("{}: {error} (from {relay})", error.reason()),
        excerpt,
        at: Timestamp::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_batch_keeps_its_order_and_verdicts() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/nostr/signed_events.jsonl");
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let raws: Vec<String> = (0..10)
            .flat_map(|_| lines.iter().map(|c| c["event"].to_string()))
            .collect();
        let want: Vec<String> = (0..10)
            .flat_map(|_| lines.iter().map(|c| c["verdict"].as_str().unwrap().to_owned()))
            .collect();
        assert!(raws.len() >= PARALLEL_FROM);
        let got: Vec<String> = check_all(&raws, 1 << 20)
            .into_iter()
            .map(|v| match v {
                Ok(_) => "valid".to_owned(),
                Err((e, _)) => e.reason().to_owned(),
            })
            .collect();
        assert_eq!(got, want);
        let e = NostrEvent::parse(&raws[1], 1 << 20).unwrap();
        let stored = shape(&e);
        assert_eq!(stored.kind, format!("nostr.{}", e.kind));
        assert_eq!(stored.id.0, e.id);
        assert_eq!(stored.key.as_deref(), Some(hex::encode(e.pubkey).as_str()));
        assert_eq!(stored.occurred_at.unwrap().unix_secs() as u64, e.created_at);
    }
}
