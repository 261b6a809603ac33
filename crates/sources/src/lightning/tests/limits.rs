//! BOLT #1's 65,535-byte limit in every framing other than gossip_store (whose u16 length cannot exceed
//! it): an oversized record is an error that says so, stepped over without reading it into memory.

use super::hex_lines;
use crate::lightning::events::{self, Origin};
use crate::lightning::formats::{Format, FormatError, Reader, read_all};
use crate::lightning::reader::MAX_HEX_LINE;
use crate::lightning::verify::VerifyError;
use crate::lightning::{decode, wire};

fn valid() -> Vec<Vec<u8>> {
    hex_lines("generated/valid.hex").into_iter().map(|(_, m)| m).collect()
}

/// A channel_update of `len` bytes: a valid one with zero padding after its fields.
fn long_update(len: usize) -> Vec<u8> {
    let mut m = valid()
        .into_iter()
        .find(|m| wire::msg_type(m) == Some(wire::CHANNEL_UPDATE))
        .unwrap();
    m.resize(len, 0);
    m
}

fn assert_too_long(e: &FormatError) {
    let text = e.to_string();
    assert!(matches!(e, FormatError::Skipped { .. }), "{e:?}");
    assert!(text.contains("65,535") && text.contains("skipped"), "{text}");
}

#[test]
fn decode_refuses_messages_longer_than_bolt1() {
    let e = decode(&long_update(65_536)).unwrap_err();
    assert_eq!(e.field, "length");
    assert!(e.to_string().contains("65536-byte message"), "{e}");
    // 65,535 bytes exactly is within the limit (its padding is then judged as trailing data).
    assert!(decode(&long_update(65_535)).is_ok_or_malformed_elsewhere());
}

trait OkOrElsewhere {
    fn is_ok_or_malformed_elsewhere(&self) -> bool;
}
impl<T> OkOrElsewhere for Result<T, wire::Malformed> {
    fn is_ok_or_malformed_elsewhere(&self) -> bool {
        self.as_ref().err().is_none_or(|e| e.field != "length")
    }
}

#[test]
fn gsp_oversized_length_is_skipped_without_buffering() {
    let good = valid();
    let mut data = b"GSP\x01".to_vec();
    let push = |data: &mut Vec<u8>, m: &[u8]| {
        data.push(0xfd);
        data.extend_from_slice(&(m.len() as u16).to_be_bytes());
        data.extend_from_slice(m);
    };
    push(&mut data, &good[0]);
    let big = long_update(100_000);
    data.push(0xfe);
    data.extend_from_slice(&(big.len() as u32).to_be_bytes());
    let big_at = data.len();
    data.extend_from_slice(&big);
    push(&mut data, &good[1]);
    let (records, errors, _) = read_all(&data, Format::Gsp);
    assert_eq!(records.len(), 2, "the messages around it are read");
    assert_eq!(&*records[1].msg, &good[1][..]);
    assert_eq!(errors.len(), 1);
    assert_too_long(&errors[0]);
    // Incrementally: the length prefix alone is enough to refuse it; the offset jumps past its bytes.
    let mut r = Reader::new(Format::Gsp);
    let head = &data[..big_at];
    // (A record is yielded from a short buffer only at the end of the input: DECIDE_WINDOW.)
    assert!(r.next(head, false).unwrap().is_none());
    let at = r.offset() as usize; // past the header
    assert!(r.next(&head[at..], true).unwrap().is_some());
    let at = r.offset() as usize;
    assert_too_long(&r.next(&head[at..], false).unwrap_err());
    assert_eq!(
        r.offset() as usize,
        big_at + big.len(),
        "stepped over by its length prefix"
    );
    // A length of 2^64 - 1: no allocation, and the reader is simply past the end.
    let mut huge = b"GSP\x01\xff".to_vec();
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    huge.extend_from_slice(&good[0]);
    let (records, errors, _) = read_all(&huge, Format::Gsp);
    assert!(records.is_empty());
    assert_too_long(&errors[0]);
}

#[test]
fn compact_oversized_envelope_is_skipped_without_buffering() {
    let good = valid();
    let canonical = |m: &[u8]| crate::lightning::id::raw_gossip(m).unwrap();
    let big = long_update(100_000);
    let mut data = canonical(&good[0]);
    let big_at = data.len();
    data.extend(canonical(&big));
    data.extend(canonical(&good[1]));
    let (records, errors, _) = read_all(&data, Format::Compact);
    assert_eq!(records.len(), 2, "{errors:?}");
    assert_eq!(&*records[1].msg, &good[1][..]);
    assert_eq!(errors.len(), 1);
    assert_too_long(&errors[0]);
    // Given only the envelope's first bytes, the reader refuses it at once instead of waiting for more.
    let mut r = Reader::new(Format::Compact);
    assert!(
        r.next(&data[..big_at], false).unwrap().is_none(),
        "a record waits for DECIDE_WINDOW bytes"
    );
    let at = r.offset() as usize;
    assert!(r.next(&data[at..big_at], true).unwrap().is_some());
    let e = r.next(&data[big_at..big_at + 8], false).unwrap_err();
    assert_too_long(&e);
    assert_eq!(r.offset() as usize, big_at + canonical(&big).len());
}

#[test]
fn hex_lines_longer_than_any_message_are_refused_as_they_come() {
    let good = valid();
    let line = |m: &[u8]| format!("{}\n", hex::encode(m));
    // A line with its newline, just over what the longest envelope needs.
    let mut text = line(&good[0]);
    text.push_str(&"00".repeat(wire::MAX_ENVELOPE_LEN + 3));
    text.push('\n');
    // A line far longer than MAX_HEX_LINE.
    text.push_str(&"ab".repeat(MAX_HEX_LINE));
    text.push('\n');
    text.push_str(&line(&good[1]));
    let (records, errors, _) = read_all(text.as_bytes(), Format::Hex);
    assert_eq!(records.len(), 2, "{errors:?}");
    assert_eq!(records[1].line, Some(4));
    assert_eq!(errors.len(), 2);
    assert!(errors[0].to_string().contains("65,535"), "{}", errors[0]);
    assert!(errors[1].to_string().contains("line of"), "{}", errors[1]);
    // Incrementally, in 64 KiB pieces: the long line is refused once MAX_HEX_LINE bytes have no newline,
    // and the reader never needs more than that at once.
    let bytes = text.as_bytes();
    let mut r = Reader::new(Format::Hex);
    let (mut base, mut buf, mut fed) = (0usize, Vec::new(), 0usize);
    let (mut got, mut errs, mut most) = (Vec::new(), Vec::new(), 0usize);
    loop {
        let at = r.offset() as usize - base;
        match r.next(&buf[at.min(buf.len())..], fed == bytes.len()) {
            Ok(Some(rec)) => got.push(rec.line),
            Ok(None) if fed == bytes.len() => break,
            Ok(None) => {
                let consumed = (r.offset() as usize - base).min(buf.len());
                buf.drain(..consumed);
                base = r.offset() as usize;
                let end = (fed + (64 << 10)).min(bytes.len());
                buf.extend_from_slice(&bytes[fed..end]);
                fed = end;
                most = most.max(buf.len());
            }
            Err(e) => errs.push(e.to_string()),
        }
    }
    assert_eq!(got, [Some(1), Some(4)]);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[1].contains("line longer than"), "{errs:?}");
    assert!(most <= MAX_HEX_LINE + (64 << 10), "held {most} bytes");
}

#[test]
fn a_problem_event_keeps_one_copy_of_the_message() {
    let raw = &long_update(300)[..100];
    let e = VerifyError::from(decode(raw).unwrap_err());
    let p = events::problem(raw, &e, &Origin::default(), "c");
    assert!(
        p.event.payload.is_empty(),
        "the raw bytes are not kept a second time in payload"
    );
    assert_eq!(p.event.data["raw_hex"], hex::encode(raw));
}
