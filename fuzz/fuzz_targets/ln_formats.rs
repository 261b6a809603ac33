//! Gossip files in every format (gossip_store, GSP, compact envelopes, hex lines) and format detection:
//! any bytes give records and errors, never a panic; and the incremental reader, fed the input in pieces
//! as `tributary import` and the gossip_store follower feed it, yields exactly what it yields on the whole
//! input at once, with offsets that are checkpoints.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_sources::lightning::formats::read_all;
use tributary_sources::lightning::{Format, Reader, detect_format};

/// Reads `data` fed `step` bytes at a time (more when the reader asks), as the callers do.
fn read_in_pieces(data: &[u8], format: Format, step: usize) -> Vec<(u64, u64, Vec<u8>)> {
    let mut r = Reader::new(format);
    let mut out = Vec::new();
    let mut have = step.min(data.len());
    loop {
        let at = r.offset() as usize;
        let eof = have == data.len();
        if at > data.len() {
            break;
        }
        let end = have.max(at);
        match r.next(&data[at..end], eof) {
            Ok(Some(rec)) => {
                assert!(rec.offset >= at as u64 && rec.end as usize <= end);
                out.push((rec.offset, rec.end, rec.msg.into_owned()));
            }
            Ok(None) if eof => break,
            Ok(None) => have = (end + step).min(data.len()),
            Err(e) if e.is_fatal() => break,
            Err(_) => {}
        }
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&step, data)) = input.split_first() else {
        return;
    };
    let _ = detect_format(data);
    for format in [Format::GossipStore, Format::Gsp, Format::Compact, Format::Hex] {
        let (records, errors, stats) = read_all(data, format);
        assert_eq!(stats.records, records.len() as u64);
        assert!(errors.iter().all(|e| !e.to_string().is_empty()));
        let whole: Vec<_> = records
            .into_iter()
            .map(|r| (r.offset, r.end, r.msg.into_owned()))
            .collect();
        let pieces = read_in_pieces(data, format, 1 + step as usize * 7);
        assert_eq!(pieces, whole, "{format}: reading in pieces differs");
    }
});
