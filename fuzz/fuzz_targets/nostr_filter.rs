//! NIP-01 filters from outside (the config, the archive's queries): parsing never panics, and a filter
//! that parses renders back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_sources::nostr::NostrFilter;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(filter) = NostrFilter::parse(&value) {
        let back = NostrFilter::parse(&filter.to_json()).expect("a filter's JSON parses");
        assert_eq!(back, filter);
    }
});
