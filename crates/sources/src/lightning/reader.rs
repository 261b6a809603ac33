//! The incremental reader behind [`formats`](super::formats): fed the input from its checkpoint on, it
//! yields complete records only, steps over damaged ones, and keeps its offset as the checkpoint. The
//! byte layouts are in [`formats`](super::formats).

use super::envelope::{self, Framing};
use super::formats::{FLAG_DELETED, Format, FormatError, GSP_HEADER, ReadStats, Record, STORE_HEADER_LEN, crc32c};
use super::wire;
use std::borrow::Cow;

/// An incremental reader: feed it the input from [`Reader::offset`] on.
#[derive(Clone, Debug)]
pub struct Reader {
    format: Format,
    offset: u64,
    line: u64,
    header_done: bool,
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
    /// [`FormatError::Truncated`], and the reader moves past them.
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
            let step = match self.format {
                Format::GossipStore => self.store_record(rest),
                Format::Gsp => self.gsp_record(rest),
                Format::Compact => self.compact_record(rest, eof),
                Format::Hex => self.hex_line(rest, eof),
            };
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
                    self.offset += used as u64;
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
                used,
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
        for big_endian in [true, false] {
            let Some((len, n)) = wire::read_compact_size(buf, big_endian) else {
                incomplete = true;
                continue;
            };
            let end = usize::try_from(len).ok().and_then(|l| l.checked_add(n));
            let Some(msg) = end.and_then(|e| buf.get(n..e)) else {
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
            None if !eof && buf.len() < 70_000 => Step::NeedMore,
            None => Step::Error(
                FormatError::Corrupt {
                    format: Format::Compact,
                    offset: self.offset,
                    reason: "no envelope shape frames a known gossip message here".into(),
                },
                0,
            ),
        }
    }

    fn hex_line<'a>(&mut self, buf: &'a [u8], eof: bool) -> Step<'a> {
        let (line, used) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], i + 1),
            None if eof && !buf.is_empty() => (buf, buf.len()),
            None => return Step::NeedMore,
        };
        self.line += 1;
        let text = line.trim_ascii();
        if text.is_empty() || text.starts_with(b"#") {
            return Step::Skip(used);
        }
        let bytes = match hex::decode(text) {
            Ok(b) => b,
            Err(e) => return self.skipped(format!("not hex: {e}"), used),
        };
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
            used,
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
    Error(FormatError, usize),
    NeedMore,
}
