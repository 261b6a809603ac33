//! BOLT #7 decoding (through LDK) and verification of any type-prefixed message: a `Gossip` or a
//! `Malformed` naming the field, never a panic; a decoded message keeps its bytes, turns into an event,
//! and its signatures are checked without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_sources::lightning::events::{Origin, gossip_event};
use tributary_sources::lightning::{Network, Verifier, decode, gossip_id, wire};

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok(g) => {
            assert_eq!(Some(g.msg_type()), wire::msg_type(data));
            if let Some(raw) = g.raw() {
                assert_eq!(raw, data);
            }
            let _ = serde_json::to_string(&g).expect("gossip serializes");
            let _ = g.timestamp();
            let _ = g.short_channel_id().map(|s| s.to_string());
            let origin = Origin {
                position: "offset 0".into(),
                timestamp: Some(1),
            };
            if let Some(e) = gossip_event(&g, data, &origin, None) {
                assert!(!e.kind.is_empty());
                assert!(gossip_id(data).is_some());
            }
            let mut verifier = Verifier::new(Network::Mainnet);
            let _ = verifier.verify(&g);
        }
        Err(m) => assert!(!m.to_string().is_empty()),
    }
});
