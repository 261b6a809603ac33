//! What relays send, and what the archive stores of them: a relay message parses or is refused with a
//! reason, never a panic; an `EVENT` message's event goes through the archive's checks (size, id,
//! signature) and discovery of the relay URLs it names; a relay cursor's text renders back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_sources::nostr::checkpoint::Position;
use tributary_sources::nostr::message::RelayMessage;
use tributary_sources::nostr::{NostrEvent, RelayUrl, discover, verify};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(RelayMessage::Event { event, .. }) = RelayMessage::parse(text) {
        for verdict in verify::check_all(std::slice::from_ref(&event), 1 << 16) {
            if let Ok(e) = verdict {
                let stored = verify::shape(&e);
                assert_eq!(stored.kind, format!("nostr.{}", e.kind));
            }
        }
        if let Ok(e) = NostrEvent::parse(&event, 1 << 16) {
            for url in discover::relay_urls(std::slice::from_ref(&e)) {
                let _ = RelayUrl::parse(&url, false);
            }
        }
    }
    if let Ok(p) = Position::parse(text) {
        assert_eq!(Position::parse(&p.render()).expect("a rendered position parses"), p);
    }
});
