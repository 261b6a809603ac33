//! ln-history's canonical framing and `gossip_id`, so that tributary dedups against existing ln-history
//! data.
//!
//! ```text
//! raw_gossip = CompactSize(len(body)) ‖ type (u16 BE) ‖ body      body = the message without its type
//! gossip_id  = sha256(raw_gossip)
//! ```
//!
//! The CompactSize is Bitcoin's (multi-byte forms little-endian) and counts the body only, not the two
//! type bytes: exactly `lnhistoryclient.framing.build_raw_gossip` / `canonical_gossip_id` (checked
//! against the PyPI package on every sample message in this module's tests). Ids depend on the message
//! bytes only, never on when or where they were seen.

use super::wire::write_compact_size;
use tributary_core::EventId;

/// The canonical envelope of a type-prefixed message, appended to `out`. `None` when `msg` has no type.
pub fn write_raw_gossip(msg: &[u8], out: &mut Vec<u8>) -> Option<()> {
    if msg.len() < 2 {
        return None;
    }
    write_compact_size((msg.len() - 2) as u64, out);
    out.extend_from_slice(msg);
    Some(())
}

/// The canonical envelope of a type-prefixed message (`lnhistoryclient.framing.build_raw_gossip`).
pub fn raw_gossip(msg: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(msg.len() + 9);
    write_raw_gossip(msg, &mut out)?;
    Some(out)
}

/// ln-history's `gossip_id` of a type-prefixed message: sha256 of its canonical envelope
/// (`lnhistoryclient.framing.canonical_gossip_id`). `None` when `msg` is shorter than its type.
pub fn gossip_id(msg: &[u8]) -> Option<EventId> {
    raw_gossip(msg).map(|env| EventId::sha256(&env))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_counts_the_body_without_the_type() {
        let msg = [0x01, 0x02, 0xaa, 0xbb, 0xcc];
        assert_eq!(raw_gossip(&msg).unwrap(), [3, 0x01, 0x02, 0xaa, 0xbb, 0xcc]);
        let long = vec![0x01; 432];
        assert_eq!(raw_gossip(&long).unwrap()[..3], [0xfd, 0xae, 0x01]);
        assert_eq!(raw_gossip(&[1]), None);
        assert_eq!(
            gossip_id(&msg),
            Some(EventId::sha256(&[3, 0x01, 0x02, 0xaa, 0xbb, 0xcc]))
        );
    }
}
