//! The event record codec (version 1; the layout is documented in `keys`).
//!
//! Written by hand rather than with serde: it is on the ingest hot path, where every microsecond per
//! event counts. `data` is kept as its JSON text.

use super::keys::corrupt;
use tributary_core::{EventId, NewEvent, Seq, StoreError, StoredEvent, Timestamp};

/// The current event record version.
const EVENT_V1: u8 = 1;

/// Where `ingested_at` sits in an event record: after the version byte and the id.
const INGESTED_AT: std::ops::Range<usize> = 33..41;

/// Sets `ingested_at` in an encoded event record.
pub(crate) fn set_ingested_at(record: &mut [u8], at: Timestamp) {
    if let Some(field) = record.get_mut(INGESTED_AT) {
        field.copy_from_slice(&at.0.to_le_bytes());
    }
}

/// Encodes an event record (version 1).
pub(crate) fn encode_event(ev: &NewEvent, source: &str, ingested_at: Timestamp) -> Vec<u8> {
    let mut b = Vec::with_capacity(96 + ev.kind.len() + ev.payload.len() + source.len());
    b.push(EVENT_V1);
    b.extend_from_slice(&ev.id.0);
    b.extend_from_slice(&ingested_at.0.to_le_bytes());
    put_bytes(&mut b, source.as_bytes());
    put_bytes(&mut b, ev.kind.as_bytes());
    put_opt(&mut b, ev.key.as_deref(), |b, s| put_bytes(b, s.as_bytes()));
    put_opt(&mut b, ev.occurred_at, |b, t| b.extend_from_slice(&t.0.to_le_bytes()));
    put_opt(&mut b, ev.position.as_deref(), |b, s| put_bytes(b, s.as_bytes()));
    put_bytes(&mut b, &ev.payload);
    // The JSON text goes straight into the buffer; its length is patched in afterwards.
    let at = b.len();
    b.extend_from_slice(&[0; 4]);
    // Writing a `Value` into a Vec cannot fail: its map keys are strings.
    let _ = serde_json::to_writer(&mut b, &ev.data);
    let len = (b.len() - at - 4) as u32;
    b[at..at + 4].copy_from_slice(&len.to_le_bytes());
    put_opt(&mut b, ev.tenant.as_deref(), |b, s| put_bytes(b, s.as_bytes()));
    put_opt(&mut b, ev.retracts, |b, id| b.extend_from_slice(&id.0));
    b
}

fn put_bytes(b: &mut Vec<u8>, s: &[u8]) {
    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
    b.extend_from_slice(s);
}

fn put_opt<T>(b: &mut Vec<u8>, v: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        None => b.push(0),
        Some(v) => {
            b.push(1);
            put(b, v);
        }
    }
}

/// Decodes an event record stored at `seq`.
pub(crate) fn decode_event(seq: Seq, v: &[u8]) -> Result<StoredEvent, StoreError> {
    let mut r = Reader { buf: v, seq };
    let version = r.take::<1>()?[0];
    if version != EVENT_V1 {
        return Err(r.err(format!("unknown record version {version}")));
    }
    let id = EventId(r.take::<32>()?);
    let ingested_at = Timestamp(i64::from_le_bytes(r.take()?));
    let source = r.string()?;
    let kind = r.string()?;
    let key = r.opt(Reader::string)?;
    let occurred_at = r.opt(|r| Ok(Timestamp(i64::from_le_bytes(r.take()?))))?;
    let position = r.opt(Reader::string)?;
    let payload = r.bytes()?.to_vec();
    let data = serde_json::from_slice(r.bytes()?)
        .map_err(|e| corrupt("event", format!("seq {seq}: data is not JSON: {e}")))?;
    let tenant = r.opt(Reader::string)?;
    let retracts = r.opt(|r| Ok(EventId(r.take::<32>()?)))?;
    if !r.buf.is_empty() {
        return Err(r.err(format!("{} trailing bytes", r.buf.len())));
    }
    Ok(StoredEvent {
        seq,
        source,
        ingested_at,
        event: NewEvent {
            id,
            kind,
            key,
            occurred_at,
            position,
            payload,
            data,
            tenant,
            retracts,
        },
    })
}

struct Reader<'a> {
    buf: &'a [u8],
    seq: Seq,
}

impl<'a> Reader<'a> {
    fn err(&self, detail: String) -> StoreError {
        corrupt("event", format!("seq {}: {detail}", self.seq))
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or_else(|| self.err("record is truncated".into()))?;
        self.buf = rest;
        Ok(*head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = u32::from_le_bytes(self.take()?) as usize;
        if self.buf.len() < len {
            return Err(self.err("field runs past the record".into()));
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    fn string(&mut self) -> Result<String, StoreError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|e| self.err(format!("text is not UTF-8: {e}")))
    }

    fn opt<T>(&mut self, read: impl FnOnce(&mut Self) -> Result<T, StoreError>) -> Result<Option<T>, StoreError> {
        match self.take::<1>()?[0] {
            0 => Ok(None),
            1 => read(self).map(Some),
            t => Err(self.err(format!("bad option tag {t}"))),
        }
    }
}
