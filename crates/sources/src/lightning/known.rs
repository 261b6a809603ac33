//! The verified channels, kept in the store's meta entries so that a `lightning` source (and
//! `tributary import`) learns them at start without reading the whole log.
//!
//! The node's graph keeper writes them as it follows the log, in chunks of [`CHUNK`] channels:
//!
//! ```text
//! lightning/known-channels            "{seq} {chunks}": every ln.channel_announcement with a sequence
//!                                      number <= seq is in chunks 0 .. chunks-1
//! lightning/known-channels/{n:08}     one line per channel: chain_hash ‖ scid ‖ node_id_1 ‖ node_id_2,
//!                                      hex (212 characters)
//! ```
//!
//! A chunk is written (synced) before the entry that counts it, so a crash in between leaves a chunk
//! that is simply written again. Readers load the chunks the entry counts, then read the log after `seq`.
//! Anything that cannot be parsed makes the reader fall back to the whole log (and say so).

use super::gossip::ShortChannelId;

/// The entry that says how far the chunks go.
pub const KNOWN_CHANNELS_KEY: &str = "lightning/known-channels";
/// The prefix of the chunk entries.
pub const KNOWN_CHUNK_PREFIX: &str = "lightning/known-channels/";
/// Channels per chunk.
pub const CHUNK: usize = 2048;

/// One verified channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownChannel {
    /// The announcement's chain.
    pub chain_hash: [u8; 32],
    /// The channel.
    pub short_channel_id: ShortChannelId,
    /// Its two nodes.
    pub node_ids: [[u8; 33]; 2],
}

/// The key of chunk `n`.
pub fn chunk_key(n: u64) -> String {
    format!("{KNOWN_CHUNK_PREFIX}{n:08}")
}

/// The text of a chunk.
pub fn encode_chunk(channels: &[KnownChannel]) -> String {
    let mut s = String::with_capacity(channels.len() * 213);
    for c in channels {
        s.push_str(&hex::encode(c.chain_hash));
        s.push_str(&hex::encode(c.short_channel_id.0.to_be_bytes()));
        s.push_str(&hex::encode(c.node_ids[0]));
        s.push_str(&hex::encode(c.node_ids[1]));
        s.push('\n');
    }
    s
}

/// The channels of a chunk.
pub fn decode_chunk(text: &str) -> Result<Vec<KnownChannel>, String> {
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let b = hex::decode(line).map_err(|e| format!("line {}: {e}", i + 1))?;
            if b.len() != 106 {
                return Err(format!("line {}: expected 106 bytes, got {}", i + 1, b.len()));
            }
            Ok(KnownChannel {
                chain_hash: b[..32].try_into().expect("32 bytes"),
                short_channel_id: ShortChannelId(u64::from_be_bytes(b[32..40].try_into().expect("8 bytes"))),
                node_ids: [
                    b[40..73].try_into().expect("33 bytes"),
                    b[73..106].try_into().expect("33 bytes"),
                ],
            })
        })
        .collect()
}

/// `(seq, chunks)` of the [`KNOWN_CHANNELS_KEY`] entry.
pub fn parse_progress(value: &str) -> Option<(u64, u64)> {
    let (seq, chunks) = value.trim().split_once(' ')?;
    Some((seq.parse().ok()?, chunks.parse().ok()?))
}

/// The [`KNOWN_CHANNELS_KEY`] entry.
pub fn render_progress(seq: u64, chunks: u64) -> String {
    format!("{seq} {chunks}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_and_damage_is_an_error() {
        let c = KnownChannel {
            chain_hash: [7; 32],
            short_channel_id: ShortChannelId(0x000c_3500_0001_0000),
            node_ids: [[2; 33], [3; 33]],
        };
        let text = encode_chunk(&[c.clone(), c.clone()]);
        assert_eq!(decode_chunk(&text).unwrap(), [c.clone(), c]);
        assert!(decode_chunk("zz\n").is_err());
        assert!(decode_chunk(&text[..100]).is_err());
        assert_eq!(decode_chunk("").unwrap(), []);
        assert_eq!(parse_progress(&render_progress(42, 3)), Some((42, 3)));
        assert_eq!(parse_progress("42"), None);
        assert_eq!(chunk_key(3), "lightning/known-channels/00000003");
    }
}
