//! The bundled Lightning gossip sample and ln-history's canonical `gossip_id`.

use tributary_core::EventId;

/// Real mainnet gossip, one hex message per line (see `fixtures/lightning/README.md`).
pub const SAMPLE_HEX: &str = include_str!("../../../fixtures/lightning/cln_gossip_store_sample.hex");

/// ln-history's canonical gossip id: sha256 of `CompactSize(len(body)) ‖ type (2 bytes BE) ‖ body`, where
/// `msg` is the type-prefixed message. As `lnhistoryclient.framing.canonical_gossip_id` computes it.
pub fn gossip_id(msg: &[u8]) -> Option<EventId> {
    if msg.len() < 2 {
        return None;
    }
    let body = &msg[2..];
    let mut buf = Vec::with_capacity(msg.len() + 9);
    compact_size(body.len() as u64, &mut buf);
    buf.extend_from_slice(msg);
    Some(EventId::sha256(&buf))
}

/// Bitcoin's CompactSize encoding.
pub fn compact_size(n: u64, out: &mut Vec<u8>) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// The BOLT #7 name of a gossip message type.
pub fn type_name(t: u16) -> &'static str {
    match t {
        256 => "channel_announcement",
        257 => "node_announcement",
        258 => "channel_update",
        _ => "unknown",
    }
}

/// The sample's messages, decoded from hex.
pub fn sample_messages() -> Vec<Vec<u8>> {
    SAMPLE_HEX
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| hex::decode(l.trim()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_size_boundaries() {
        let enc = |n| {
            let mut v = Vec::new();
            compact_size(n, &mut v);
            v
        };
        assert_eq!(enc(0xfc), vec![0xfc]);
        assert_eq!(enc(0xfd), vec![0xfd, 0xfd, 0x00]);
        assert_eq!(enc(0x1_0000), vec![0xfe, 0, 0, 1, 0]);
    }

    #[test]
    fn sample_is_bundled_and_decodes() {
        let msgs = sample_messages();
        assert_eq!(msgs.len(), 139);
        assert!(msgs.iter().all(|m| gossip_id(m).is_some()));
    }
}
