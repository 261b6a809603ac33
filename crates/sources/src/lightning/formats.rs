//! Gossip files: readers that yield type-prefixed messages with their position, and format detection.
//!
//! ```text
//! gossip_store  version u8 (top 3 bits major = 0, low 5 bits minor), then records:
//!               flags be16 ‖ len be16 ‖ crc be32 ‖ timestamp be32 ‖ msg [len]
//!               crc = crc32c(msg) seeded with timestamp, i.e. CCAN's crc32c(timestamp, msg, len)
//!               as Core Lightning writes and checks it (CRC-32C/Castagnoli, reflected, ~seed in,
//!               ~crc out). Flags: 0x8000 deleted (skipped, not CRC-checked: its bytes may be zeroed),
//!               0x4000 push, 0x2000 ratelimit/completed, 0x0800 dying. Older stores' be32 length
//!               carried the same bits in its top half, so they read identically.
//! gsp           "GSP" ‖ 0x01, then CompactSize(len(msg)) ‖ msg, the CompactSize's multi-byte forms
//!               big-endian (lnresearch/topology; lnhistoryclient `parser.gossip_file._iter_gsp`);
//!               a little-endian length is accepted when only it frames a known message.
//! compact       concatenated envelopes: ln-history's canonical CompactSize(len(body)) ‖ type ‖ body,
//!               or any mis-framed shape of [`envelope`](super::envelope) that carries a length.
//! hex           one message per line in hex, in any envelope shape; blank lines and `#` comments skipped.
//! ```
//!
//! Invariants: a record is yielded only when all its bytes are present; [`Reader::offset`] is the byte
//! just after the last record consumed (a checkpoint). A record that fails its CRC, or a hex line that is
//! not a message, is an error the reader steps over; an unknown store major version, or a stream that no
//! envelope explains, stops the reader.

use super::envelope::{self, Framing};
pub use super::reader::Reader;
use super::wire;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// `gossip_store` record flag: deleted.
pub const FLAG_DELETED: u16 = 0x8000;
/// Size of a `gossip_store` record header.
pub const STORE_HEADER_LEN: usize = 12;
/// The GSP file header.
pub const GSP_HEADER: &[u8; 4] = b"GSP\x01";

/// An input format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Core Lightning's `gossip_store`.
    GossipStore,
    /// `GSP\x01` then length-prefixed messages.
    Gsp,
    /// Concatenated CompactSize-prefixed envelopes.
    Compact,
    /// One hex message per line.
    Hex,
}

impl Format {
    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GossipStore => "gossip_store",
            Self::Gsp => "gsp",
            Self::Compact => "compact",
            Self::Hex => "hex",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gossip_store" => Ok(Self::GossipStore),
            "gsp" => Ok(Self::Gsp),
            "compact" => Ok(Self::Compact),
            "hex" => Ok(Self::Hex),
            _ => Err(format!("expected gossip_store, gsp, compact or hex, got {s:?}")),
        }
    }
}

/// Guesses the format from the first bytes of a file (give at least 64 when the file has them):
/// `GSP\x01`; text of hex digits (and `#` comment lines); a major-0 version byte followed by a record
/// header whose message has a known type (or nothing); otherwise a stream that starts with a CompactSize
/// and a known type, or with a known type, or whose first envelope is recognised whole.
pub fn detect_format(head: &[u8]) -> Option<Format> {
    if head.starts_with(GSP_HEADER) {
        return Some(Format::Gsp);
    }
    let text = &head[..head.len().min(256)];
    let hex_lines = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.trim_ascii_start().starts_with(b"#"))
        .flatten();
    if text.iter().any(u8::is_ascii_hexdigit)
        && hex_lines
            .clone()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace())
    {
        return Some(Format::Hex);
    }
    if let Some(&v) = head.first()
        && v >> 5 == 0
    {
        let t = head.get(13..15).map(|b| u16::from_be_bytes([b[0], b[1]]));
        if head.len() == 1 || t.and_then(wire::type_name).is_some() {
            return Some(Format::GossipStore);
        }
    }
    let known = |t: Option<u16>| t.and_then(wire::type_name).is_some();
    let typed_start = wire::read_compact_size(head, false).is_some_and(|(_, n)| known(wire::msg_type(&head[n..])))
        || known(wire::msg_type(head));
    (typed_start || envelope::next_in_stream(head).is_some()).then_some(Format::Compact)
}

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82f6_3b78 } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}
static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32C (Castagnoli) continuing from `seed`: `crc32c(crc32c(0, a), b) == crc32c(0, a ‖ b)`, as CCAN's
/// `crc32c(start_crc, buf, len)` and Python's `crc32c.crc32c(data, value)` compute it.
pub fn crc32c(seed: u32, data: &[u8]) -> u32 {
    let mut c = !seed;
    for &b in data {
        c = CRC_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// One message read from a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Byte offset of the record (its header or length prefix) in the input.
    pub offset: u64,
    /// Byte offset just after it: the checkpoint once it is consumed.
    pub end: u64,
    /// 1-based line number (hex input).
    pub line: Option<u64>,
    /// The type-prefixed message.
    pub msg: Cow<'a, [u8]>,
    /// The envelope it came in (compact, GSP and hex input).
    pub framing: Option<Framing>,
    /// The record header's timestamp (`gossip_store`).
    pub timestamp: Option<u32>,
    /// The record header's flags (`gossip_store`).
    pub flags: u16,
}

impl Record<'_> {
    /// The message type.
    pub fn msg_type(&self) -> u16 {
        wire::msg_type(&self.msg).unwrap_or(0)
    }
    /// `line N` for hex input, `offset N` otherwise.
    pub fn position(&self) -> String {
        match self.line {
            Some(l) => format!("line {l}"),
            None => format!("offset {}", self.offset),
        }
    }
    /// Whether this is Core Lightning's `gossip_store_ended`: the store was rewritten, reopen it.
    pub fn is_store_ended(&self) -> bool {
        self.msg_type() == wire::GOSSIP_STORE_ENDED
    }
}

/// A problem in the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The file's header is not one this reader understands.
    #[error("{format}: unsupported header {found}: {hint}")]
    Header {
        /// The format being read.
        format: Format,
        /// What was found.
        found: String,
        /// What to do.
        hint: &'static str,
    },
    /// A `gossip_store` record whose CRC does not match (skipped).
    #[error("gossip_store record at offset {offset}: crc32c {computed:08x} != header {expected:08x}; record skipped")]
    BadCrc {
        /// Record offset.
        offset: u64,
        /// From the header.
        expected: u32,
        /// Over the message.
        computed: u32,
    },
    /// A record or line that is not a message (skipped).
    #[error("{format} at {position}: {reason}")]
    Skipped {
        /// The format being read.
        format: Format,
        /// `offset N` or `line N`.
        position: String,
        /// What is wrong.
        reason: String,
    },
    /// Bytes that no framing explains: reading cannot continue.
    #[error("{format} at offset {offset}: {reason}; reading stopped")]
    Corrupt {
        /// The format being read.
        format: Format,
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The input ends inside a record (a store being written, or a cut file).
    #[error("{format}: input ends inside a record at offset {offset} ({left} bytes left over)")]
    Truncated {
        /// The format being read.
        format: Format,
        /// Where the partial record starts.
        offset: u64,
        /// Its bytes.
        left: usize,
    },
}

impl FormatError {
    /// Whether reading cannot continue after it.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Header { .. } | Self::Corrupt { .. })
    }
}

/// Counts of what a reader stepped over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReadStats {
    /// Records yielded.
    pub records: u64,
    /// Deleted `gossip_store` records skipped.
    pub deleted: u64,
    /// Records and lines skipped with an error.
    pub errors: u64,
}

/// Every record of a complete input, with the errors met on the way (reading stops at a fatal one).
pub fn read_all(data: &[u8], format: Format) -> (Vec<Record<'_>>, Vec<FormatError>, ReadStats) {
    let mut r = Reader::new(format);
    let (mut records, mut errors) = (Vec::new(), Vec::new());
    loop {
        let at = r.offset() as usize;
        match r.next(&data[at.min(data.len())..], true) {
            Ok(Some(rec)) => records.push(rec),
            Ok(None) => break,
            Err(e) => {
                let fatal = e.is_fatal();
                errors.push(e);
                if fatal {
                    break;
                }
            }
        }
    }
    (records, errors, r.stats)
}
