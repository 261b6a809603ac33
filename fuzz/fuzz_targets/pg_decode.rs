//! The `postgres` source's pgoutput decoder and change rules on any bytes: a message or an error naming
//! the tag, the problem and the byte, never a panic; a decoded message encodes back to bytes that decode
//! to the same message; applied to a session that knows the relation it becomes events or rejects (or a
//! protocol error), every event with a valid kind and an id derived as documented; any column text types
//! into JSON for every typed OID.
//!
//! Input: the first byte's bit 0 says whether a stream is open (protocol 2), bit 1 whether relation 1 is
//! the outbox table; the rest is the message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_core::EventId;
use tributary_sources::json_event::valid_kind;
use tributary_sources::postgres::OutboxConfig;
use tributary_sources::postgres::changes::Changes;
use tributary_sources::postgres::pgoutput::{Column, Lsn, Message, Relation, Value, decode, encode};
use tributary_sources::postgres::value::to_json;

const TYPES: [u32; 16] = [16, 17, 20, 21, 23, 25, 114, 700, 701, 1007, 1009, 1114, 1184, 1700, 3802, 3807];

fuzz_target!(|data: &[u8]| {
    let Some((&flags, msg)) = data.split_first() else { return };
    let in_stream = flags & 1 == 1;
    let Ok(m) = decode(msg, in_stream) else { return };
    let again = encode(&m, in_stream);
    assert_eq!(decode(&again, in_stream).as_ref(), Ok(&m), "re-encoded message differs");

    let outbox = OutboxConfig {
        table: "public.t".into(),
        id: "a".into(),
        kind: "b".into(),
        key: Some("c".into()),
        payload: "d".into(),
        tenant: Some("c".into()),
    };
    let mut changes = Changes::new((flags & 2 == 2).then_some(&outbox), 4096);
    let cols = ["a", "b", "c", "d"];
    let relation = Message::Relation {
        xid: None,
        relation: Relation {
            oid: 1,
            namespace: "public",
            name: "t",
            replica_identity: b'd',
            columns: cols
                .iter()
                .enumerate()
                .map(|(i, name)| Column { key: i == 0, name, type_oid: TYPES[(flags as usize >> 2 ^ i * 5) % TYPES.len()], type_modifier: -1 })
                .collect(),
        },
    };
    let (mut events, mut rejects) = (Vec::new(), Vec::new());
    changes.apply(&relation, &mut events, &mut rejects).expect("a relation always applies");
    changes.begin(Lsn(0x1_0000_0010), 7, 0);
    if changes.apply(&m, &mut events, &mut rejects).is_ok() {
        for e in &events {
            assert!(valid_kind(&e.kind), "invalid kind {:?}", e.kind);
            if !e.kind.starts_with("outbox.") {
                let position = e.position.as_deref().expect("a position");
                assert_eq!(e.id, EventId::sha256(position.as_bytes()));
                assert!(position.starts_with("1/10/"));
            }
        }
        for r in &rejects {
            assert!(!r.reason.is_empty() && r.excerpt.len() <= 1024);
        }
    }
    let texts: Vec<&[u8]> = match &m {
        Message::Insert { new, .. } | Message::Update { new, .. } => new.0.iter().filter_map(|v| match v { Value::Text(b) => Some(*b), _ => None }).collect(),
        Message::Message { content, .. } => vec![*content],
        _ => vec![],
    };
    for t in texts {
        let s = String::from_utf8_lossy(t);
        for ty in TYPES {
            let _ = to_json(ty, &s);
        }
    }
});
