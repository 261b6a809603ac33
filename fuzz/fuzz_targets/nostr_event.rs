//! NIP-01 events from relays: parsing and verification never panic, a parsed event's JSON parses back to
//! the same event, and the id of a re-serialised event is the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_sources::nostr::NostrEvent;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(event) = NostrEvent::parse(text, 1 << 16) else { return };
    let _ = event.verify();
    let back = NostrEvent::parse(&event.to_json().to_string(), 1 << 20).expect("an event's JSON parses");
    assert_eq!(back, event);
    assert_eq!(back.computed_id(), event.computed_id());
});
