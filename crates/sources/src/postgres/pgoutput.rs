//! A decoder of the `pgoutput` logical replication messages (protocol versions 1 and 2), pure: bytes in,
//! borrowed messages out, no I/O.
//!
//! Layout (PostgreSQL "Logical Replication Message Formats"): every message starts with one tag byte;
//! integers are big-endian; strings end with a NUL byte. Inside a streamed transaction (between
//! [`Message::StreamStart`] and [`Message::StreamStop`], protocol 2) the Relation, Type, Insert, Update,
//! Delete, Truncate and Message messages carry the transaction id (`Int32`) right after the tag, so
//! [`decode`] is told whether a stream is open.
//!
//! | tag | message | body |
//! |---|---|---|
//! | `B` | Begin | final (commit) LSN `Int64`, commit time `Int64` (µs since 2000-01-01), xid `Int32` |
//! | `C` | Commit | flags `Int8`, commit LSN `Int64`, end LSN `Int64`, commit time `Int64` |
//! | `O` | Origin | commit LSN `Int64`, name `String` |
//! | `R` | Relation | OID `Int32`, namespace `String`, name `String`, replica identity `Int8`, columns `Int16` × (flags `Int8`, name `String`, type OID `Int32`, type modifier `Int32`) |
//! | `Y` | Type | OID `Int32`, namespace `String`, name `String` |
//! | `I` | Insert | relation OID `Int32`, `N`, tuple |
//! | `U` | Update | relation OID `Int32`, optional `K` or `O` and a tuple, `N`, tuple |
//! | `D` | Delete | relation OID `Int32`, `K` or `O`, tuple |
//! | `T` | Truncate | relations `Int32`, options `Int8` (1 cascade, 2 restart identity), OIDs `Int32` × n |
//! | `M` | Message | flags `Int8` (1 transactional), LSN `Int64`, prefix `String`, length `Int32`, content |
//! | `S` | Stream Start | xid `Int32`, first segment `Int8` |
//! | `E` | Stream Stop | (nothing) |
//! | `c` | Stream Commit | xid `Int32`, flags `Int8`, commit LSN `Int64`, end LSN `Int64`, commit time `Int64` |
//! | `A` | Stream Abort | xid `Int32`, subtransaction xid `Int32` (protocol 4 adds abort LSN and time) |
//!
//! A tuple is `Int16` columns × (`n` NULL | `u` unchanged TOAST value | `t` `Int32` length + text |
//! `b` `Int32` length + binary). Nothing is trusted: every length is checked against the bytes left, and
//! a count is never used to reserve more memory than the bytes left could hold.

use std::fmt;

/// A WAL position, written as PostgreSQL writes it (`16/B374D848`: high and low 32 bits in hex).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

impl Lsn {
    /// Parses `X/Y` (hex, as PostgreSQL writes LSNs).
    pub fn parse(s: &str) -> Option<Self> {
        let (hi, lo) = s.split_once('/')?;
        if hi.is_empty() || lo.is_empty() || hi.len() > 8 || lo.len() > 8 {
            return None;
        }
        let hi = u32::from_str_radix(hi, 16).ok()?;
        let lo = u32::from_str_radix(lo, 16).ok()?;
        Some(Self((u64::from(hi) << 32) | u64::from(lo)))
    }
}

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01T00:00:00Z).
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// One column value of a tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// SQL NULL.
    Null,
    /// A TOASTed value that did not change (an update or delete without it); its content is not sent.
    UnchangedToast,
    /// The value in the type's text format.
    Text(&'a [u8]),
    /// The value in the type's binary format (only with the `binary` option).
    Binary(&'a [u8]),
}

/// A row: one value per column of the relation, in the relation's column order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tuple<'a>(pub Vec<Value<'a>>);

/// Which old row an update or delete carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OldKind {
    /// `K`: the replica identity's key columns only (the other columns are NULL).
    Key,
    /// `O`: the whole old row (`REPLICA IDENTITY FULL`).
    Full,
}

/// A column of a [`Relation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column<'a> {
    /// Part of the replica identity (by default the primary key).
    pub key: bool,
    /// The column name.
    pub name: &'a str,
    /// The type's OID.
    pub type_oid: u32,
    /// The type modifier (`atttypmod`).
    pub type_modifier: i32,
}

/// A table's shape, sent before its first change in a session and again after it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relation<'a> {
    /// The relation's OID.
    pub oid: u32,
    /// The schema (`public`).
    pub namespace: &'a str,
    /// The table name.
    pub name: &'a str,
    /// `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    /// The columns, in order.
    pub columns: Vec<Column<'a>>,
}

/// One decoded `pgoutput` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A transaction starts.
    Begin {
        /// The LSN of its commit record.
        final_lsn: Lsn,
        /// Its commit time, µs since 2000-01-01.
        commit_time: i64,
        /// Its transaction id.
        xid: u32,
    },
    /// The transaction ends.
    Commit {
        /// Flags (unused, 0).
        flags: u8,
        /// The LSN of the commit record.
        commit_lsn: Lsn,
        /// The LSN just after it.
        end_lsn: Lsn,
        /// The commit time, µs since 2000-01-01.
        commit_time: i64,
    },
    /// Replication origin of the transaction.
    Origin {
        /// The commit LSN on the origin server.
        commit_lsn: Lsn,
        /// The origin's name.
        name: &'a str,
    },
    /// A table's shape.
    Relation {
        /// Set inside a streamed transaction.
        xid: Option<u32>,
        /// The relation.
        relation: Relation<'a>,
    },
    /// A data type's name.
    Type {
        /// Set inside a streamed transaction.
        xid: Option<u32>,
        /// The type's OID.
        oid: u32,
        /// Its schema.
        namespace: &'a str,
        /// Its name.
        name: &'a str,
    },
    /// A row inserted.
    Insert {
        /// Set inside a streamed transaction.
        xid: Option<u32>,
        /// The relation's OID.
        relation: u32,
        /// The new row.
        new: Tuple<'a>,
    },
    /// A row updated.
    Update {
        /// Set inside a streamed transaction.
        xid: Option<u32>,
        /// The relation's OID.
        relation: u32,
        /// The old key or row, when the replica identity gives it.
        old: Option<(OldKind, Tuple<'a>)>,
        /// The new row.
        new: Tuple<'a>,
    },
    /// A row deleted.
    Delete {
        /// Set inside a streamed transaction.
        xid: Option<u32>,
        /// The relation's OID.
        relation: u32,
        /// The old key or row.
        old: (OldKind, Tuple<'a>),
    },
    /// Tables truncated.
    Truncate {
        /// Set inside a streamed transaction.
        xid: Option<u32>,
        /// 1: CASCADE, 2: RESTART IDENTITY.
        options: u8,
        /// The relations' OIDs.
        relations: Vec<u32>,
    },
    /// `pg_logical_emit_message`.
    Message {
        /// Set inside a streamed transaction.
        xid: Option<u32>,
        /// Emitted inside a transaction (delivered with it).
        transactional: bool,
        /// The message's LSN.
        lsn: Lsn,
        /// The application's prefix.
        prefix: &'a str,
        /// The content.
        content: &'a [u8],
    },
    /// A segment of a large transaction in progress starts (protocol 2).
    StreamStart {
        /// The transaction.
        xid: u32,
        /// The first segment of this transaction.
        first_segment: bool,
    },
    /// The segment ends.
    StreamStop,
    /// A streamed transaction committed.
    StreamCommit {
        /// The transaction.
        xid: u32,
        /// Flags (unused, 0).
        flags: u8,
        /// The LSN of the commit record.
        commit_lsn: Lsn,
        /// The LSN just after it.
        end_lsn: Lsn,
        /// The commit time, µs since 2000-01-01.
        commit_time: i64,
    },
    /// A streamed transaction (or one of its subtransactions) aborted.
    StreamAbort {
        /// The top-level transaction.
        xid: u32,
        /// The aborted subtransaction (`xid` itself when the whole transaction aborted).
        subxid: u32,
        /// Protocol 4 (parallel apply): the abort's LSN and time.
        abort: Option<(Lsn, i64)>,
    },
}

/// Why bytes are not a `pgoutput` message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("pgoutput message {tag}: {problem} at byte {offset}")]
pub struct DecodeError {
    /// The message's tag as text (`'I'`), or `empty`.
    pub tag: String,
    /// What was wrong.
    pub problem: String,
    /// Where.
    pub offset: usize,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    tag: u8,
}

impl<'a> Reader<'a> {
    fn err(&self, problem: impl Into<String>) -> DecodeError {
        DecodeError {
            tag: format!("{:?}", self.tag as char),
            problem: problem.into(),
            offset: self.pos,
        }
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(self.err(format!("{what} needs {n} bytes, {} left", self.buf.len() - self.pos)));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }
    fn i16(&mut self, what: &str) -> Result<i16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self, what: &str) -> Result<i32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        Ok(self.i32(what)? as u32)
    }
    fn i64(&mut self, what: &str) -> Result<i64, DecodeError> {
        let b = self.take(8, what)?;
        Ok(i64::from_be_bytes(b.try_into().expect("8 bytes")))
    }
    fn lsn(&mut self, what: &str) -> Result<Lsn, DecodeError> {
        Ok(Lsn(self.i64(what)? as u64))
    }
    fn string(&mut self, what: &str) -> Result<&'a str, DecodeError> {
        let rest = &self.buf[self.pos..];
        let Some(end) = rest.iter().position(|b| *b == 0) else {
            return Err(self.err(format!("{what}: no terminating NUL")));
        };
        let s = std::str::from_utf8(&rest[..end]).map_err(|e| self.err(format!("{what}: not UTF-8 ({e})")))?;
        self.pos += end + 1;
        Ok(s)
    }
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.left() != 0 {
            return Err(self.err(format!("{} unexpected bytes after the message", self.left())));
        }
        Ok(())
    }
    fn xid(&mut self, in_stream: bool) -> Result<Option<u32>, DecodeError> {
        if in_stream {
            Ok(Some(self.u32("xid")?))
        } else {
            Ok(None)
        }
    }
    fn tuple(&mut self) -> Result<Tuple<'a>, DecodeError> {
        let n = self.i16("column count")?;
        if n < 0 {
            return Err(self.err(format!("negative column count {n}")));
        }
        // Each column takes at least one byte: never reserve more than the bytes left.
        let mut values = Vec::with_capacity((n as usize).min(self.left()));
        for _ in 0..n {
            let v = match self.u8("column kind")? {
                b'n' => Value::Null,
                b'u' => Value::UnchangedToast,
                k @ (b't' | b'b') => {
                    let len = self.i32("value length")?;
                    if len < 0 {
                        return Err(self.err(format!("negative value length {len}")));
                    }
                    let bytes = self.take(len as usize, "value")?;
                    if k == b't' {
                        Value::Text(bytes)
                    } else {
                        Value::Binary(bytes)
                    }
                }
                other => return Err(self.err(format!("unknown column kind {:?}", other as char))),
            };
            values.push(v);
        }
        Ok(Tuple(values))
    }
}

/// Decodes one message. `in_stream`: a Stream Start was seen and no Stream Stop since (protocol 2).
pub fn decode(buf: &[u8], in_stream: bool) -> Result<Message<'_>, DecodeError> {
    let Some(&tag) = buf.first() else {
        return Err(DecodeError {
            tag: "empty".into(),
            problem: "no bytes".into(),
            offset: 0,
        });
    };
    let mut r = Reader { buf, pos: 1, tag };
    let m = match tag {
        b'B' => Message::Begin {
            final_lsn: r.lsn("final LSN")?,
            commit_time: r.i64("commit time")?,
            xid: r.u32("xid")?,
        },
        b'C' => Message::Commit {
            flags: r.u8("flags")?,
            commit_lsn: r.lsn("commit LSN")?,
            end_lsn: r.lsn("end LSN")?,
            commit_time: r.i64("commit time")?,
        },
        b'O' => Message::Origin {
            commit_lsn: r.lsn("commit LSN")?,
            name: r.string("origin name")?,
        },
        b'R' => {
            let xid = r.xid(in_stream)?;
            let oid = r.u32("relation OID")?;
            let namespace = r.string("namespace")?;
            let name = r.string("relation name")?;
            let replica_identity = r.u8("replica identity")?;
            let n = r.i16("column count")?;
            if n < 0 {
                return Err(r.err(format!("negative column count {n}")));
            }
            // A column takes at least 10 bytes.
            let mut columns = Vec::with_capacity((n as usize).min(r.left() / 10));
            for _ in 0..n {
                let flags = r.u8("column flags")?;
                columns.push(Column {
                    key: flags & 1 == 1,
                    name: r.string("column name")?,
                    type_oid: r.u32("type OID")?,
                    type_modifier: r.i32("type modifier")?,
                });
            }
            Message::Relation {
                xid,
                relation: Relation {
                    oid,
                    namespace,
                    name,
                    replica_identity,
                    columns,
                },
            }
        }
        b'Y' => Message::Type {
            xid: r.xid(in_stream)?,
            oid: r.u32("type OID")?,
            namespace: r.string("namespace")?,
            name: r.string("type name")?,
        },
        b'I' => {
            let xid = r.xid(in_stream)?;
            let relation = r.u32("relation OID")?;
            match r.u8("tuple kind")? {
                b'N' => {}
                other => return Err(r.err(format!("expected 'N' before the new row, got {:?}", other as char))),
            }
            Message::Insert {
                xid,
                relation,
                new: r.tuple()?,
            }
        }
        b'U' => {
            let xid = r.xid(in_stream)?;
            let relation = r.u32("relation OID")?;
            let mut old = None;
            let mut kind = r.u8("tuple kind")?;
            if kind == b'K' || kind == b'O' {
                let k = if kind == b'K' { OldKind::Key } else { OldKind::Full };
                old = Some((k, r.tuple()?));
                kind = r.u8("tuple kind")?;
            }
            if kind != b'N' {
                return Err(r.err(format!("expected 'N' before the new row, got {:?}", kind as char)));
            }
            Message::Update {
                xid,
                relation,
                old,
                new: r.tuple()?,
            }
        }
        b'D' => {
            let xid = r.xid(in_stream)?;
            let relation = r.u32("relation OID")?;
            let k = match r.u8("tuple kind")? {
                b'K' => OldKind::Key,
                b'O' => OldKind::Full,
                other => {
                    return Err(r.err(format!(
                        "expected 'K' or 'O' before the old row, got {:?}",
                        other as char
                    )));
                }
            };
            Message::Delete {
                xid,
                relation,
                old: (k, r.tuple()?),
            }
        }
        b'T' => {
            let xid = r.xid(in_stream)?;
            let n = r.i32("relation count")?;
            if n < 0 {
                return Err(r.err(format!("negative relation count {n}")));
            }
            let options = r.u8("options")?;
            let mut relations = Vec::with_capacity((n as usize).min(r.left() / 4));
            for _ in 0..n {
                relations.push(r.u32("relation OID")?);
            }
            Message::Truncate {
                xid,
                options,
                relations,
            }
        }
        b'M' => {
            let xid = r.xid(in_stream)?;
            let flags = r.u8("flags")?;
            let lsn = r.lsn("LSN")?;
            let prefix = r.string("prefix")?;
            let len = r.i32("content length")?;
            if len < 0 {
                return Err(r.err(format!("negative content length {len}")));
            }
            Message::Message {
                xid,
                transactional: flags & 1 == 1,
                lsn,
                prefix,
                content: r.take(len as usize, "content")?,
            }
        }
        b'S' => Message::StreamStart {
            xid: r.u32("xid")?,
            first_segment: r.u8("first segment")? == 1,
        },
        b'E' => Message::StreamStop,
        b'c' => Message::StreamCommit {
            xid: r.u32("xid")?,
            flags: r.u8("flags")?,
            commit_lsn: r.lsn("commit LSN")?,
            end_lsn: r.lsn("end LSN")?,
            commit_time: r.i64("commit time")?,
        },
        b'A' => {
            let xid = r.u32("xid")?;
            let subxid = r.u32("subtransaction xid")?;
            let abort = if r.left() > 0 {
                Some((r.lsn("abort LSN")?, r.i64("abort time")?))
            } else {
                None
            };
            Message::StreamAbort { xid, subxid, abort }
        }
        other => {
            return Err(r.err(format!(
                "unknown message type {:?} (two-phase messages need protocol 3, which tributary does not ask for)",
                other as char
            )));
        }
    };
    r.end()?;
    Ok(m)
}

/// Encodes a message as the server sends it (for tests and the fuzz target's round trip).
pub fn encode(m: &Message<'_>, in_stream: bool) -> Vec<u8> {
    let mut o = Vec::new();
    fn s(o: &mut Vec<u8>, v: &str) {
        o.extend_from_slice(v.as_bytes());
        o.push(0);
    }
    fn xid(o: &mut Vec<u8>, x: Option<u32>, in_stream: bool) {
        if in_stream {
            o.extend_from_slice(&x.unwrap_or(0).to_be_bytes());
        }
    }
    fn tuple(o: &mut Vec<u8>, t: &Tuple<'_>) {
        o.extend_from_slice(&(t.0.len() as i16).to_be_bytes());
        for v in &t.0 {
            match v {
                Value::Null => o.push(b'n'),
                Value::UnchangedToast => o.push(b'u'),
                Value::Text(b) | Value::Binary(b) => {
                    o.push(if matches!(v, Value::Text(_)) { b't' } else { b'b' });
                    o.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    o.extend_from_slice(b);
                }
            }
        }
    }
    match m {
        Message::Begin {
            final_lsn,
            commit_time,
            xid: x,
        } => {
            o.push(b'B');
            o.extend_from_slice(&final_lsn.0.to_be_bytes());
            o.extend_from_slice(&commit_time.to_be_bytes());
            o.extend_from_slice(&x.to_be_bytes());
        }
        Message::Commit {
            flags,
            commit_lsn,
            end_lsn,
            commit_time,
        } => {
            o.push(b'C');
            o.push(*flags);
            o.extend_from_slice(&commit_lsn.0.to_be_bytes());
            o.extend_from_slice(&end_lsn.0.to_be_bytes());
            o.extend_from_slice(&commit_time.to_be_bytes());
        }
        Message::Origin { commit_lsn, name } => {
            o.push(b'O');
            o.extend_from_slice(&commit_lsn.0.to_be_bytes());
            s(&mut o, name);
        }
        Message::Relation { xid: x, relation } => {
            o.push(b'R');
            xid(&mut o, *x, in_stream);
            o.extend_from_slice(&relation.oid.to_be_bytes());
            s(&mut o, relation.namespace);
            s(&mut o, relation.name);
            o.push(relation.replica_identity);
            o.extend_from_slice(&(relation.columns.len() as i16).to_be_bytes());
            for c in &relation.columns {
                o.push(u8::from(c.key));
                s(&mut o, c.name);
                o.extend_from_slice(&c.type_oid.to_be_bytes());
                o.extend_from_slice(&c.type_modifier.to_be_bytes());
            }
        }
        Message::Type {
            xid: x,
            oid,
            namespace,
            name,
        } => {
            o.push(b'Y');
            xid(&mut o, *x, in_stream);
            o.extend_from_slice(&oid.to_be_bytes());
            s(&mut o, namespace);
            s(&mut o, name);
        }
        Message::Insert { xid: x, relation, new } => {
            o.push(b'I');
            xid(&mut o, *x, in_stream);
            o.extend_from_slice(&relation.to_be_bytes());
            o.push(b'N');
            tuple(&mut o, new);
        }
        Message::Update {
            xid: x,
            relation,
            old,
            new,
        } => {
            o.push(b'U');
            xid(&mut o, *x, in_stream);
            o.extend_from_slice(&relation.to_be_bytes());
            if let Some((k, t)) = old {
                o.push(if *k == OldKind::Key { b'K' } else { b'O' });
                tuple(&mut o, t);
            }
            o.push(b'N');
            tuple(&mut o, new);
        }
        Message::Delete {
            xid: x,
            relation,
            old: (k, t),
        } => {
            o.push(b'D');
            xid(&mut o, *x, in_stream);
            o.extend_from_slice(&relation.to_be_bytes());
            o.push(if *k == OldKind::Key { b'K' } else { b'O' });
            tuple(&mut o, t);
        }
        Message::Truncate {
            xid: x,
            options,
            relations,
        } => {
            o.push(b'T');
            xid(&mut o, *x, in_stream);
            o.extend_from_slice(&(relations.len() as i32).to_be_bytes());
            o.push(*options);
            for r in relations {
                o.extend_from_slice(&r.to_be_bytes());
            }
        }
        Message::Message {
            xid: x,
            transactional,
            lsn,
            prefix,
            content,
        } => {
            o.push(b'M');
            xid(&mut o, *x, in_stream);
            o.push(u8::from(*transactional));
            o.extend_from_slice(&lsn.0.to_be_bytes());
            s(&mut o, prefix);
            o.extend_from_slice(&(content.len() as i32).to_be_bytes());
            o.extend_from_slice(content);
        }
        Message::StreamStart { xid: x, first_segment } => {
            o.push(b'S');
            o.extend_from_slice(&x.to_be_bytes());
            o.push(u8::from(*first_segment));
        }
        Message::StreamStop => o.push(b'E'),
        Message::StreamCommit {
            xid: x,
            flags,
            commit_lsn,
            end_lsn,
            commit_time,
        } => {
            o.push(b'c');
            o.extend_from_slice(&x.to_be_bytes());
            o.push(*flags);
            o.extend_from_slice(&commit_lsn.0.to_be_bytes());
            o.extend_from_slice(&end_lsn.0.to_be_bytes());
            o.extend_from_slice(&commit_time.to_be_bytes());
        }
        Message::StreamAbort { xid: x, subxid, abort } => {
            o.push(b'A');
            o.extend_from_slice(&x.to_be_bytes());
            o.extend_from_slice(&subxid.to_be_bytes());
            if let Some((lsn, at)) = abort {
                o.extend_from_slice(&lsn.0.to_be_bytes());
                o.extend_from_slice(&at.to_be_bytes());
            }
        }
    }
    o
}
