//! Lightning envelopes (every framing of one message: canonical, off-by-two, no varint, varint payload,
//! payload only, big-endian length) and the canonical `raw_gossip` id: any bytes are re-framed or refused,
//! never a panic; what is re-framed fits BOLT #1 and re-frames again from its canonical envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_sources::lightning::envelope::{
    self, Framing, infer_type, next_in_stream, oversized, oversized_in_stream, reframe,
};
use tributary_sources::lightning::{gossip_id, id, wire};

fn check(msg: &[u8]) {
    assert!(msg.len() <= wire::MAX_MESSAGE_LEN);
    assert!(wire::msg_type(msg).and_then(wire::type_name).is_some());
    let canonical = envelope::canonical([msg]);
    let again = reframe(&canonical).expect("a canonical envelope re-frames");
    assert_eq!(again.framing, Framing::Canonical);
    assert_eq!(&*again.msg, msg);
    assert_eq!(id::raw_gossip(msg).as_deref(), Some(&canonical[..]));
    assert!(gossip_id(msg).is_some());
}

fuzz_target!(|data: &[u8]| {
    let _ = oversized(data);
    let _ = infer_type(data);
    let _ = id::raw_gossip(data);
    if let Some(r) = reframe(data) {
        assert_eq!(r.len, data.len());
        assert!(oversized(data).is_none());
        check(&r.msg);
    }
    // As a stream: envelope after envelope until none fits.
    let mut rest = data;
    while let Some(r) = next_in_stream(rest) {
        assert!(r.len > 0 && r.len <= rest.len());
        check(&r.msg);
        rest = &rest[r.len..];
    }
    if let Some((reason, used)) = oversized_in_stream(rest) {
        assert!(!reason.is_empty());
        assert!(used > wire::MAX_MESSAGE_LEN as u64);
    }
});
