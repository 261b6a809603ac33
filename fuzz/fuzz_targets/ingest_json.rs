//! The http source's (and the API's) ingest parsing on any body: events or an error naming the item and
//! field, never a panic; with and without limits the same events; an event's canonical `data` re-parses
//! to the same canonical text (so its id is stable through the store and delivery).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_core::EventId;
use tributary_core::id::canonical_json;
use tributary_sources::json_event::{BodyError, EventLimits, parse_body, parse_body_within};

fuzz_target!(|data: &[u8]| {
    let all = parse_body(data);
    let limits = EventLimits {
        max_events: 4,
        max_data_bytes: 256,
        max_key_bytes: 16,
    };
    let mut charged = 0usize;
    let limited = parse_body_within(data, &limits, &mut |n| {
        charged += n;
        charged < 1 << 20
    });
    match (&all, &limited) {
        (Ok(a), Ok(l)) => assert_eq!(a, l),
        (Err(_), Ok(_)) => panic!("a body refused without limits was accepted with them"),
        (_, Err(BodyError::Invalid(e))) => assert!(!e.message.is_empty()),
        _ => {}
    }
    for e in all.iter().flatten() {
        let mut text = Vec::new();
        canonical_json(&e.data, &mut text);
        let again: serde_json::Value = serde_json::from_slice(&text).expect("canonical JSON parses");
        let mut text2 = Vec::new();
        canonical_json(&again, &mut text2);
        assert_eq!(
            String::from_utf8_lossy(&text),
            String::from_utf8_lossy(&text2),
            "canonical JSON is not stable"
        );
        assert_eq!(
            EventId::of_json_event(&e.kind, e.key.as_deref(), &e.data),
            EventId::of_json_event(&e.kind, e.key.as_deref(), &again)
        );
    }
});
