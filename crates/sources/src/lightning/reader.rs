//! The incremental reader behind [`formats`](super::formats): fed the input from its checkpoint on, it
//! yields complete records only, steps over damaged ones, and keeps its offset as the checkpoint. The
//! byte layouts are in [`formats`](super::formats).
//!
//! Size limit (BOLT #1): no message is longer than [`wire::MAX_MESSAGE_LEN`]. A GSP or compact record
//! whose length prefix announces more is an error that is stepped over by its announced length without
//! reading it, so after such an error [`Reader::offset`] may lie beyond the bytes given: the caller seeks
//! there. A hex line longer than [`MAX_HEX_LINE`] is an error as soon as that many bytes have no newline,
//! and the rest of the line is then discarded as it comes. Before the end of the input, a GSP or compact
//! record is yielded only from [`DECIDE_WINDOW`] bytes or more (errors are decided at once). So the reader
//! never needs more than about [`DECIDE_WINDOW`] bytes of input at once to make progress.

use super::envelope::{self, Framing};
use super::formats::{FLAG_DELETED, Format, FormatError, GSP_HEADER, ReadStats, Record, STORE_HEADER_LEN, crc32c};
use super::wire;
use std::borrow::Cow;

/// The longest hex line read: two hex digits per byte of the longest envelope, plus 1 KiB of whitespace.
pub const MAX_HEX_LINE: usize = 2 * wire::MAX_ENVELOPE_LEN + 1024;

/// How much input a GSP or compact record found before the end of the input is decided on: two of the
/// longest envelopes (the record and the one that follows it), plus room. Fed in pieces, the reader then
/// yields exactly what it yields on the whole input (found by fuzzing, target `ln_formats`).
pub const DECIDE_WINDOW: usize = 140_000;

/// An incremental reader: feed it the input from [`Reader::offset`] on.
#[derive(Clone, Debug)]
pub struct Reader {
    format: Format,
    offset: u64,
    line: u64,
    header_done: bool,
    /// Inside a hex line that was too long: discard up to its newline.
    skip_line: bool,
    /// The `gossip_store` version byte, once read.
    pub store_version: Option<u8>,
    /// What was read so far.
    pub stats: ReadStats,
}

impl Reader {
    /// A reader for an input starting at byte 0 (its header included).
    pub fn new(format: Format) -> Self {
        Self::resume(format, 0, 0)
    }

    /// A reader continuing at a checkpoint (`offset` and, for hex, the lines already consumed).
    /// Offset 0 means the header is still to be read.
    pub fn resume(format: Format, offset: u64, line: u64) -> Self {
        Self {
            format,
            offset,
            line,
            header_done: offset > 0,
            skip_line: false,
            store_version: None,
            stats: ReadStats::default(),
        }
    }

    /// The format read.
    pub fn format(&self) -> Format {
        self.format
    }
    /// The checkpoint: the byte after the last record or line consumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// Hex lines consumed.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The next record from `buf` (the input from [`Reader::offset`] on). `Ok(None)`: `buf` holds no
    /// complete record; with `eof` (no more input will come) leftover bytes are then
    /// [`FormatError::Truncated`], and the reader moves past them. After an error the offset may be
    /// beyond the end of `buf` (an oversized record stepped over): continue from [`Reader::offset`].
    pub fn next<'a>(&mut self, buf: &'a [u8], eof: bool) -> Result<Option<Record<'a>>, FormatError> {
        let mut at = 0usize;
        if !self.header_done {
            let need = match self.format {
                Format::GossipStore => 1,
                Format::Gsp => 4,
                Format::Compact | Format::Hex => 0,
            };
            if buf.len() < need {
                return self.leftover(buf.len(), eof);
            }
            self.check_header(&buf[..need])?;
            self.header_done = true;
            self.offset += need as u64;
            at = need;
        }
        loop {
            let rest = &buf[at..];
            // Near the end of a buffer that is not the end of the input, a GSP or compact record's framing
            // can depend on bytes not read yet (a canonical envelope cut two bytes short also reads as an
            // off-by-two one): a record found there waits for more input, decided again from the same
            // state. Errors (an oversized length) are decided at once, without buffering.
            let undecided = !eof && rest.len() < DECIDE_WINDOW && matches!(self.format, Format::Gsp | Format::Compact);
            let before = undecided.then(|| self.clone());
            let step = match self.format {
                Format::GossipStore => self.store_record(rest),
                Format::Gsp => self.gsp_record(rest),
                Format::Compact => self.compact_record(rest, eof),
                Format::Hex => self.hex_line(rest, eof),
            };
            if let (Some(before), Step::Yield(..)) = (before, &step) {
                *self = before;
                return Ok(None);
            }
            match step {
                Step::Yield(mut r, used) => {
                    r.offset = self.offset;
                    r.end = self.offset + used as u64;
                    self.offset = r.end;
                    self.stats.records += 1;
                    return Ok(Some(r));
                }
                Step::Skip(used) => {
                    at += used;
                    self.offset += used as u64;
                }
                Step::Error(e, used) => {
                    self.offset = self.offset.saturating_add(used);
                    self.stats.errors += 1;
                    return Err(e);
                }
                Step::NeedMore => return self.leftover(rest.len(), eof),
            }
        }
    }

    fn leftover<'a>(&mut self, left: usize, eof: bool) -> Result<Option<Record<'a>>, FormatError> {
        if !eof || left == 0 {
            return Ok(None);
        }
        let offset = self.offset;
        self.offset += left as u64;
        self.stats.errors += 1;
        Err(FormatError::Truncated {
            format: self.format,
            offset,
            left,
        })
    }

    fn check_header(&mut self, h: &[u8]) -> Result<(), FormatError> {
        match self.format {
            Format::GossipStore if h[0] >> 5 != 0 => Err(FormatError::Header {
                format: self.format,
                found: format!("version byte {:#04x} (major {})", h[0], h[0] >> 5),
                hint: "only major version 0 is known; check that this is a gossip_store file",
            }),
            Format::GossipStore => {
                self.store_version = Some(h[0]);
                Ok(())
            }
            Format::Gsp if h != GSP_HEADER => Err(FormatError::Header {
                format: self.format,
                found: format!("{:?}", String::from_utf8_lossy(h)),
                hint: "expected GSP\\x01; only GSP version 1 is known",
            }),
            _ => Ok(()),
        }
    }

    fn store_record<'a>(&mut self, buf: &'a [u8]) -> Step<'a> {
        let Some(h) = buf.get(..STORE_HEADER_LEN) else {
            return Step::NeedMore;
        };
        let be16 = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        let be32 = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let (flags, len, crc, ts) = (be16(0), be16(2) as usize, be32(4), be32(8));
        let used = STORE_HEADER_LEN + len;
        let Some(msg) = buf.get(STORE_HEADER_LEN..used) else {
            return Step::NeedMore;
        };
        if flags & FLAG_DELETED != 0 {
            self.stats.deleted += 1;
            return Step::Skip(used);
        }
        let computed = crc32c(ts, msg);
        if computed != crc {
            return Step::Error(
                FormatError::BadCrc {
                    offset: self.offset,
                    expected: crc,
                    computed,
                },
                used as u64,
            );
        }
        if msg.len() < 2 {
            return self.skipped(format!("{}-byte message has no type", msg.len()), used);
        }
        Step::Yield(
            Record {
                timestamp: Some(ts),
                flags,
                ..record(Cow::Borrowed(msg), None)
            },
            used,
        )
    }

    fn gsp_record<'a>(&mut self, buf: &'a [u8]) -> Step<'a> {
        if buf.is_empty() {
            return Step::NeedMore;
        }
        let mut incomplete = false;
        let mut oversized = None;
        for big_endian in [true, false] {
            let Some((len, n)) = wire::read_compact_size(buf, big_endian) else {
                incomplete = true;
                continue;
            };
            if len > wire::MAX_MESSAGE_LEN as u64 {
                // Never buffered: a message BOLT #1 allows is not that long.
                oversized.get_or_insert((len, n));
                continue;
            }
            let end = len as usize + n;
            let Some(msg) = buf.get(n..end) else {
                incomplete = true;
                continue;
            };
            if envelope::fits(msg) {
                let framing = if big_endian {
                    Framing::BigEndianLength
                } else {
                    Framing::OffByTwo
                };
                return Step::Yield(record(Cow::Borrowed(msg), Some(framing)), n + msg.len());
            }
        }
        if incomplete {
            return Step::NeedMore;
        }
        if let Some((len, n)) = oversized {
            // The big-endian reading (GSP's own) says how far the record goes.
            return Step::Error(
                FormatError::Skipped {
                    format: Format::Gsp,
                    position: format!("offset {}", self.offset),
                    reason: format!(
                        "{}; skipped by its length prefix without reading it",
                        wire::too_long(len)
                    ),
                },
                len.saturating_add(n as u64),
            );
        }
        Step::Error(
            FormatError::Corrupt {
                format: Format::Gsp,
                offset: self.offset,
                reason: "the length prefix does not frame a known gossip message".into(),
            },
            0,
        )
    }

    fn compact_record<'a>(&mut self, buf: &'a [u8], eof: bool) -> Step<'a> {
        if buf.is_empty() {
            return Step::NeedMore;
        }
        match envelope::next_in_stream(buf) {
            Some(r) => Step::Yield(record(r.msg, Some(r.framing)), r.len),
            None => {
                if let Some((reason, used)) = envelope::oversized_in_stream(buf) {
                    return Step::Error(
                        FormatError::Skipped {
                            format: Format::Compact,
                            position: format!("offset {}", self.offset),
                            reason: format!("{reason}; skipped by its length prefix without reading it"),
                        },
                        used,
                    );
                }
                if !eof && buf.len() < wire::MAX_ENVELOPE_LEN + 4096 {
                    return Step::NeedMore;
                }
                Step::Error(
                    FormatError::Corrupt {
                        format: Format::Compact,
                        offset: self.offset,
                        reason: "no envelope shape frames a known gossip message here".into(),
                    },
                    0,
                )
            }
        }
    }

    fn hex_line<'a>(&mut self, buf: &'a [u8], eof: bool) -> Step<'a> {
        let newline = buf.iter().position(|b| *b == b'\n');
        if self.skip_line {
            // The rest of a line already reported as too long.
            return match newline {
                Some(i) => {
                    self.skip_line = false;
                    Step::Skip(i + 1)
                }
                None if buf.is_empty() => Step::NeedMore,
                None => Step::Skip(buf.len()),
            };
        }
        let (line, used) = match newline {
            Some(i) => (&buf[..i], i + 1),
            None if buf.len() > MAX_HEX_LINE => {
                // No newline in sight: report the line now and discard the rest as it comes.
                self.line += 1;
                self.skip_line = true;
                return self.skipped(
                    format!(
                        "line longer than {MAX_HEX_LINE} characters (2 hex digits per byte of the longest message BOLT #1 allows); skipped"
                    ),
                    buf.len(),
                );
            }
            None if eof && !buf.is_empty() => (buf, buf.len()),
            None => return Step::NeedMore,
        };
        self.line += 1;
        if line.len() > MAX_HEX_LINE {
            return self.skipped(
                format!(
                    "line of {} characters is longer than {MAX_HEX_LINE} (2 hex digits per byte of the longest message BOLT #1 allows); skipped",
                    line.len()
                ),
                used,
            );
        }
        let text = line.trim_ascii();
        if text.is_empty() || text.starts_with(b"#") {
            return Step::Skip(used);
        }
        let bytes = match hex::decode(text) {
            Ok(b) => b,
            Err(e) => return self.skipped(format!("not hex: {e}"), used),
        };
        if let Some(reason) = envelope::oversized(&bytes) {
            return self.skipped(reason, used);
        }
        match envelope::reframe(&bytes) {
            Some(r) => {
                let framing = r.framing;
                let msg = Cow::Owned(r.msg.into_owned());
                Step::Yield(
                    Record {
                        line: Some(self.line),
                        ..record(msg, Some(framing))
                    },
                    used,
                )
            }
            None => self.skipped("no envelope shape frames a known gossip message".into(), used),
        }
    }

    fn skipped<'a>(&self, reason: String, used: usize) -> Step<'a> {
        let position = match self.format {
            Format::Hex => format!("line {}", self.line),
            _ => format!("offset {}", self.offset),
        };
        Step::Error(
            FormatError::Skipped {
                format: self.format,
                position,
                reason,
            },
            used as u64,
        )
    }
}

fn record(msg: Cow<'_, [u8]>, framing: Option<Framing>) -> Record<'_> {
    Record {
        offset: 0,
        end: 0,
        line: None,
        msg,
        framing,
        timestamp: None,
        flags: 0,
    }
}

enum Step<'a> {
    Yield(Record<'a>, usize),
    Skip(usize),
    /// An error, and the bytes to step over (possibly more than the buffer holds).
    Error(FormatError, u64),
    NeedMore,
}
