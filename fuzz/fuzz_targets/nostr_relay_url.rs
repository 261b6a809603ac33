//! Relay URLs from outside (configs, seed files, kind 10002 lists, relay hints): the normaliser never
//! panics, and whatever it accepts is its own normal form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_sources::nostr::RelayUrl;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for allow_private in [false, true] {
        if let Ok(url) = RelayUrl::parse(text, allow_private) {
            let again = RelayUrl::parse(url.as_str(), allow_private).expect("a normal form parses");
            assert_eq!(again, url);
        }
    }
});
