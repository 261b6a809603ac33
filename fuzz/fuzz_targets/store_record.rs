//! The fjall store's decoders on any bytes (catalog records included): each answers a `Corrupt` error or a value, never panics, and a
//! value encodes back to bytes that decode to the same value (what the store writes it can read).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_store::fjall::fuzzing as store;

/// Encoding a decoded JSON record and decoding it again gives the same record.
fn json_round_trip<T: serde::Serialize + PartialEq + std::fmt::Debug>(
    v: T,
    decode: fn(&[u8]) -> Result<T, tributary_core::StoreError>,
) {
    let bytes = store::encode_json(&v).expect("a decoded record encodes");
    let again = decode(&bytes).expect("an encoded record decodes");
    assert_eq!(again, v);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, v)) = data.split_first() else {
        return;
    };
    match which % 10 {
        0 => {
            if let Ok(e) = store::decode_event(7, v) {
                let bytes = store::encode_event(&e);
                let again = store::decode_event(7, &bytes).expect("an encoded event decodes");
                assert_eq!(again, e);
            }
        }
        1 => {
            if let Ok(e) = store::decode_id_entry(v) {
                assert_eq!(store::encode_id_entry(&e), v);
            }
        }
        2 => {
            let at = v.len().min(40);
            let _ = store::decode_observation(&v[..at], &v[at..]);
        }
        3 => {
            if let Ok(p) = store::decode_pending(v) {
                json_round_trip(p, store::decode_pending);
            }
        }
        4 => {
            if let Ok(r) = store::decode_reject(v) {
                json_round_trip(r, store::decode_reject);
            }
        }
        5 => {
            if let Ok(a) = store::decode_attempt(v) {
                json_round_trip(a, store::decode_attempt);
            }
        }
        6 => {
            if let Ok(d) = store::decode_dead_letter(v) {
                json_round_trip(d, store::decode_dead_letter);
            }
        }
        7 => {
            if let Ok(s) = store::decode_meta(v) {
                assert_eq!(s.as_bytes(), v);
            }
        }
        8 => {
            if let Ok((version, value)) = store::decode_record(v) {
                let bytes = store::encode_record(version, value.as_deref());
                assert_eq!(store::decode_record(&bytes).expect("an encoded record decodes"), (version, value));
            }
        }
        _ => {
            if let Ok(seq) = store::key_seq(v) {
                assert_eq!(seq.to_be_bytes(), v[v.len() - 8..]);
            }
        }
    }
});
