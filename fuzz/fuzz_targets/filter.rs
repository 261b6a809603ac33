//! The filter language: any JSON filter compiles or names every problem (never a panic); a compiled
//! filter matches any event without panicking, and the filter written back and compiled again is the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_core::filter::FilterConfig;
use tributary_core::{EventId, NewEvent, StoredEvent, Timestamp};

fuzz_target!(|data: &[u8]| {
    // `filter JSON` ‖ 0x00 ‖ `data JSON` ‖ 0x00 ‖ kind ‖ 0x00 ‖ key
    let mut parts = data.splitn(4, |b| *b == 0);
    let filter = parts.next().unwrap_or_default();
    let event_data = parts.next().unwrap_or_default();
    let kind = String::from_utf8_lossy(parts.next().unwrap_or(b"a.b")).into_owned();
    let key = parts.next().map(|k| String::from_utf8_lossy(k).into_owned());
    let Ok(config) = serde_json::from_slice::<FilterConfig>(filter) else {
        return;
    };
    let compiled = match config.compile() {
        Ok(f) => f,
        Err(errors) => {
            assert!(!errors.is_empty());
            assert!(errors.iter().all(|e| !e.at.is_empty() && !e.message.is_empty()));
            return;
        }
    };
    let again: FilterConfig = serde_json::from_slice(&serde_json::to_vec(&config).expect("a filter serializes"))
        .expect("a written filter parses");
    assert_eq!(again.compile().as_ref(), Ok(&compiled));
    let data = serde_json::from_slice(event_data).unwrap_or(serde_json::Value::Null);
    let event = StoredEvent {
        seq: 1,
        source: "fuzz".into(),
        ingested_at: Timestamp(0),
        event: NewEvent {
            id: EventId([0; 32]),
            kind,
            key,
            occurred_at: None,
            position: None,
            payload: Vec::new(),
            data,
            tenant: None,
            retracts: None,
        },
    };
    let _ = compiled.matches(&event);
});
