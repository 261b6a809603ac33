//! Unit tests: the decoder on messages as the server writes them, the JSON typing of values, and the
//! event rules of table changes and outbox rows.

use super::changes::Changes;
use super::config::OutboxConfig;
use super::pgoutput::{Column, Lsn, Message, OldKind, Relation, Tuple, Value, decode, encode};
use super::value::to_json;
use serde_json::json;
use tributary_core::EventId;

/// Every message kind, as (message, in_stream).
fn samples() -> Vec<(Message<'static>, bool)> {
    let rel = Relation {
        oid: 16384,
        namespace: "public",
        name: "orders",
        replica_identity: b'd',
        columns: vec![
            Column {
                key: true,
                name: "id",
                type_oid: 20,
                type_modifier: -1,
            },
            Column {
                key: false,
                name: "note",
                type_oid: 25,
                type_modifier: -1,
            },
        ],
    };
    let row = Tuple(vec![Value::Text(b"42"), Value::Null]);
    vec![
        (
            Message::Begin {
                final_lsn: Lsn(0x16B3748),
                commit_time: 817_000_000_000_000,
                xid: 734,
            },
            false,
        ),
        (
            Message::Commit {
                flags: 0,
                commit_lsn: Lsn(0x16B3748),
                end_lsn: Lsn(0x16B3778),
                commit_time: 817_000_000_000_000,
            },
            false,
        ),
        (
            Message::Origin {
                commit_lsn: Lsn(7),
                name: "pg_1",
            },
            false,
        ),
        (
            Message::Relation {
                xid: None,
                relation: rel.clone(),
            },
            false,
        ),
        (
            Message::Relation {
                xid: Some(9),
                relation: rel,
            },
            true,
        ),
        (
            Message::Type {
                xid: None,
                oid: 90000,
                namespace: "public",
                name: "mood",
            },
            false,
        ),
        (
            Message::Insert {
                xid: None,
                relation: 16384,
                new: row.clone(),
            },
            false,
        ),
        (
            Message::Insert {
                xid: Some(9),
                relation: 16384,
                new: row.clone(),
            },
            true,
        ),
        (
            Message::Update {
                xid: None,
                relation: 16384,
                old: None,
                new: Tuple(vec![Value::Text(b"42"), Value::UnchangedToast]),
            },
            false,
        ),
        (
            Message::Update {
                xid: None,
                relation: 16384,
                old: Some((OldKind::Key, Tuple(vec![Value::Text(b"41"), Value::Null]))),
                new: row.clone(),
            },
            false,
        ),
        (
            Message::Update {
                xid: None,
                relation: 16384,
                old: Some((OldKind::Full, Tuple(vec![Value::Text(b"42"), Value::Text(b"x")]))),
                new: row.clone(),
            },
            false,
        ),
        (
            Message::Delete {
                xid: None,
                relation: 16384,
                old: (OldKind::Key, row.clone()),
            },
            false,
        ),
        (
            Message::Delete {
                xid: Some(3),
                relation: 16384,
                old: (OldKind::Full, Tuple(vec![Value::Binary(&[1, 2]), Value::Null])),
            },
            true,
        ),
        (
            Message::Truncate {
                xid: None,
                options: 3,
                relations: vec![16384, 16390],
            },
            false,
        ),
        (
            Message::Message {
                xid: None,
                transactional: true,
                lsn: Lsn(99),
                prefix: "app",
                content: b"hello",
            },
            false,
        ),
        (
            Message::StreamStart {
                xid: 9,
                first_segment: true,
            },
            false,
        ),
        (Message::StreamStop, true),
        (
            Message::StreamCommit {
                xid: 9,
                flags: 0,
                commit_lsn: Lsn(1 << 33),
                end_lsn: Lsn((1 << 33) + 48),
                commit_time: 5,
            },
            false,
        ),
        (
            Message::StreamAbort {
                xid: 9,
                subxid: 10,
                abort: None,
            },
            false,
        ),
        (
            Message::StreamAbort {
                xid: 9,
                subxid: 9,
                abort: Some((Lsn(77), 8)),
            },
            false,
        ),
    ]
}

#[test]
fn every_message_decodes_back_from_its_bytes() {
    for (m, in_stream) in samples() {
        let bytes = encode(&m, in_stream);
        assert_eq!(decode(&bytes, in_stream).as_ref(), Ok(&m), "{m:?}");
    }
}

/// An Insert laid out byte by byte as the protocol documentation gives it.
#[test]
fn a_server_insert_decodes() {
    // 'I', relation 16385, 'N', 2 columns: 't' "1", 't' "hello".
    let mut b = vec![b'I', 0, 0, 0x40, 0x01, b'N', 0, 2];
    b.extend_from_slice(&[b't', 0, 0, 0, 1, b'1', b't', 0, 0, 0, 5]);
    b.extend_from_slice(b"hello");
    let m = decode(&b, false).unwrap();
    assert_eq!(
        m,
        Message::Insert {
            xid: None,
            relation: 16385,
            new: Tuple(vec![Value::Text(b"1"), Value::Text(b"hello")])
        }
    );
}

#[test]
fn truncated_and_garbled_messages_are_errors_not_panics() {
    for (m, in_stream) in samples() {
        let bytes = encode(&m, in_stream);
        for cut in 0..bytes.len() {
            if cut == 9 && matches!(m, Message::StreamAbort { abort: Some(_), .. }) {
                continue; // the protocol 2 form of the same abort, without its protocol 4 tail
            }
            let r = decode(&bytes[..cut], in_stream);
            assert!(r.is_err(), "{m:?} cut at {cut} decoded as {r:?}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer, in_stream).is_err(), "{m:?} with a trailing byte");
    }
    let e = decode(b"Z123", false).unwrap_err();
    assert!(e.to_string().contains("unknown message type 'Z'"), "{e}");
    // A huge column count does not reserve memory for it.
    let e = decode(&[b'I', 0, 0, 0, 1, b'N', 0x7f, 0xff], false).unwrap_err();
    assert!(e.problem.contains("column kind"), "{e}");
    let e = decode(&[b'I', 0, 0, 0, 1, b'N', 0, 1, b't', 0xff, 0xff, 0xff, 0xff], false).unwrap_err();
    assert!(e.problem.contains("negative value length"), "{e}");
}

#[test]
fn lsns_read_and_write_as_postgres_does() {
    assert_eq!(Lsn(0x16B3748).to_string(), "0/16B3748");
    assert_eq!(Lsn((0x16 << 32) | 0xB374D848).to_string(), "16/B374D848");
    for s in ["0/0", "0/16B3748", "16/B374D848", "FFFFFFFF/FFFFFFFF"] {
        assert_eq!(Lsn::parse(s).unwrap().to_string(), s);
    }
    for bad in ["", "0", "/1", "1/", "g/1", "123456789/0", "0/1/2"] {
        assert_eq!(Lsn::parse(bad), None, "{bad}");
    }
}

#[test]
fn values_are_typed_in_json() {
    assert_eq!(to_json(23, "42"), json!(42));
    assert_eq!(to_json(20, "-9223372036854775808"), json!(i64::MIN));
    assert_eq!(to_json(21, "7"), json!(7));
    assert_eq!(
        to_json(1700, "12345678901234567890.000000001"),
        json!("12345678901234567890.000000001")
    );
    assert_eq!(to_json(1700, "NaN"), json!("NaN"));
    assert_eq!(to_json(701, "1.5"), json!(1.5));
    assert_eq!(to_json(701, "Infinity"), json!("Infinity"));
    assert_eq!(to_json(700, "NaN"), json!("NaN"));
    assert_eq!(to_json(16, "t"), json!(true));
    assert_eq!(to_json(16, "f"), json!(false));
    assert_eq!(to_json(25, "héllo"), json!("héllo"));
    assert_eq!(to_json(3802, r#"{"a": [1, 2]}"#), json!({"a": [1, 2]}));
    assert_eq!(to_json(114, "[true]"), json!([true]));
    assert_eq!(to_json(17, "\\xDEADbeef"), json!("deadbeef"));
    assert_eq!(to_json(17, "\\x"), json!(""));
    assert_eq!(
        to_json(1184, "2026-12-02 06:38:10.123456+00"),
        json!("2026-12-02T06:38:10.123456Z")
    );
    assert_eq!(
        to_json(1184, "2026-12-02 06:38:10+05:30"),
        json!("2026-12-02T01:08:10Z")
    );
    assert_eq!(to_json(1184, "infinity"), json!("infinity"));
    assert_eq!(
        to_json(1184, "0044-03-15 12:00:00+00 BC"),
        json!("0044-03-15 12:00:00+00 BC")
    );
    assert_eq!(
        to_json(1184, "1890-01-01 00:00:00+00:53:28"),
        json!("1890-01-01 00:00:00+00:53:28")
    );
    assert_eq!(to_json(1114, "2026-12-02 06:38:10.5"), json!("2026-12-02T06:38:10.5"));
    assert_eq!(to_json(1114, "2026-12-02 06:38:10"), json!("2026-12-02T06:38:10"));
    assert_eq!(to_json(1082, "2026-12-02"), json!("2026-12-02"));
    assert_eq!(
        to_json(2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        json!("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    );
    // Arrays, nested, quoted, with NULLs, with explicit bounds.
    assert_eq!(to_json(1007, "{1,2,NULL}"), json!([1, 2, null]));
    assert_eq!(to_json(1007, "{{1,2},{3,4}}"), json!([[1, 2], [3, 4]]));
    assert_eq!(
        to_json(1009, r#"{"a b","c\"d",NULL,"NULL",e}"#),
        json!(["a b", "c\"d", null, "NULL", "e"])
    );
    assert_eq!(to_json(1009, "{}"), json!([]));
    assert_eq!(to_json(1007, "[0:1]={5,6}"), json!([5, 6]));
    assert_eq!(to_json(3807, r#"{"{\"a\":1}","[2]"}"#), json!([{"a": 1}, [2]]));
    assert_eq!(to_json(1000, "{t,f}"), json!([true, false]));
    assert_eq!(to_json(1231, "{1.50,2}"), json!(["1.50", "2"]));
    // What does not parse stays as written.
    assert_eq!(to_json(1007, "{1,2"), json!("{1,2"));
    assert_eq!(to_json(1007, "{{{{{{{1}}}}}}}"), json!("{{{{{{{1}}}}}}}"));
    assert_eq!(to_json(23, "x"), json!("x"));
}

fn relation(oid: u32, table: &'static str, cols: &[(&'static str, u32, bool)]) -> Message<'static> {
    Message::Relation {
        xid: None,
        relation: Relation {
            oid,
            namespace: "public",
            name: table,
            replica_identity: b'd',
            columns: cols
                .iter()
                .map(|&(name, type_oid, key)| Column {
                    key,
                    name,
                    type_oid,
                    type_modifier: -1,
                })
                .collect(),
        },
    }
}

fn outbox() -> OutboxConfig {
    OutboxConfig {
        table: "public.event_outbox".into(),
        id: "idempotency_key".into(),
        kind: "kind".into(),
        key: Some("user_id".into()),
        payload: "payload".into(),
        tenant: Some("tenant_id".into()),
    }
}

#[test]
fn table_changes_follow_the_id_kind_key_and_data_rules() {
    let mut c = Changes::new(None, 1 << 20);
    let (mut events, mut rejects) = (Vec::new(), Vec::new());
    c.apply(
        &relation(
            1,
            "orders",
            &[("id", 20, true), ("note", 25, false), ("doc", 3802, false)],
        ),
        &mut events,
        &mut rejects,
    )
    .unwrap();
    c.begin(Lsn(0x16B3748), 734, 0);
    let ins = Message::Insert {
        xid: None,
        relation: 1,
        new: Tuple(vec![Value::Text(b"42"), Value::Null, Value::Text(br#"{"a":1}"#)]),
    };
    let upd = Message::Update {
        xid: None,
        relation: 1,
        old: None,
        new: Tuple(vec![Value::Text(b"42"), Value::Text(b"n"), Value::UnchangedToast]),
    };
    let del = Message::Delete {
        xid: None,
        relation: 1,
        old: (OldKind::Key, Tuple(vec![Value::Text(b"42"), Value::Null, Value::Null])),
    };
    let tru = Message::Truncate {
        xid: None,
        options: 0,
        relations: vec![1],
    };
    for m in [&ins, &upd, &del, &tru] {
        c.apply(m, &mut events, &mut rejects).unwrap();
    }
    assert_eq!(c.commit(), Some(Lsn(0x16B3748)));
    assert!(rejects.is_empty());
    assert_eq!(events.len(), 4);
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "pg.public.orders.insert",
            "pg.public.orders.update",
            "pg.public.orders.delete",
            "pg.public.orders.truncate"
        ]
    );
    for (i, e) in events.iter().enumerate() {
        let position = format!("0/16B3748/{}", i + 1);
        assert_eq!(e.id, EventId::sha256(position.as_bytes()));
        assert_eq!(e.position.as_deref(), Some(position.as_str()));
        // 2000-01-01T00:00:00Z: the commit time 0 in PostgreSQL's epoch.
        assert_eq!(e.occurred_at.unwrap().to_rfc3339(), "2000-01-01T00:00:00Z");
    }
    assert_eq!(events[0].key.as_deref(), Some("42"));
    assert_eq!(
        events[0].data,
        json!({"schema": "public", "table": "orders", "op": "insert", "commit_lsn": "0/16B3748", "xid": 734,
               "new": {"id": 42, "note": null, "doc": {"a": 1}}, "old": null, "primary_key": {"id": 42}})
    );
    // An unchanged TOAST value is left out of `new` and named, unlike a NULL.
    assert_eq!(events[1].data["new"], json!({"id": 42, "note": "n"}));
    assert_eq!(events[1].data["unchanged_toast"], json!(["doc"]));
    assert_eq!(events[2].data["old"], json!({"id": 42}));
    assert_eq!(events[2].data["new"], json!(null));
    assert_eq!(events[2].key.as_deref(), Some("42"));
    assert_eq!(events[3].key, None);
    // Outside a transaction, or for an unknown relation: an error, not an event.
    assert!(c.apply(&ins, &mut events, &mut rejects).is_err());
    c.begin(Lsn(1), 1, 0);
    let unknown = Message::Insert {
        xid: None,
        relation: 99,
        new: Tuple(vec![]),
    };
    assert!(c.apply(&unknown, &mut events, &mut rejects).is_err());
}

#[test]
fn composite_keys_are_json_arrays() {
    let mut c = Changes::new(None, 1 << 20);
    let (mut events, mut rejects) = (Vec::new(), Vec::new());
    c.apply(
        &relation(1, "t", &[("a", 25, true), ("b", 23, true)]),
        &mut events,
        &mut rejects,
    )
    .unwrap();
    c.begin(Lsn(5), 1, 0);
    let m = Message::Insert {
        xid: None,
        relation: 1,
        new: Tuple(vec![Value::Text(b"x,y"), Value::Text(b"2")]),
    };
    c.apply(&m, &mut events, &mut rejects).unwrap();
    assert_eq!(events[0].key.as_deref(), Some(r#"["x,y","2"]"#));
    assert_eq!(events[0].data["primary_key"], json!({"a": "x,y", "b": 2}));
}

fn outbox_row<'a>(
    id: Value<'a>,
    kind: Value<'a>,
    key: Value<'a>,
    payload: Value<'a>,
    tenant: Value<'a>,
) -> Message<'a> {
    Message::Insert {
        xid: None,
        relation: 7,
        new: Tuple(vec![Value::Text(b"1"), id, kind, key, payload, tenant]),
    }
}

#[test]
fn outbox_rows_become_events_and_bad_ones_rejects() {
    let mut c = Changes::new(Some(&outbox()), 1 << 20);
    let (mut events, mut rejects) = (Vec::new(), Vec::new());
    let rel = relation(
        7,
        "event_outbox",
        &[
            ("seq", 20, true),
            ("idempotency_key", 25, false),
            ("kind", 25, false),
            ("user_id", 25, false),
            ("payload", 3802, false),
            ("tenant_id", 25, false),
        ],
    );
    c.apply(&rel, &mut events, &mut rejects).unwrap();
    c.begin(Lsn(0x100), 9, 0);
    let t = Value::Text;
    let good = outbox_row(
        t(b"k-1"),
        t(b"miner.portfolio_updated"),
        t(b"user-7"),
        t(br#"{"v": 1}"#),
        t(b"acme"),
    );
    c.apply(&good, &mut events, &mut rejects).unwrap();
    let no_key = outbox_row(t(b"k-2"), t(b"treasury.moved"), Value::Null, t(b"[]"), Value::Null);
    c.apply(&no_key, &mut events, &mut rejects).unwrap();
    let bad = [
        (
            outbox_row(Value::Null, t(b"a"), Value::Null, t(b"{}"), Value::Null),
            "outbox.id",
        ),
        (
            outbox_row(t(b""), t(b"a"), Value::Null, t(b"{}"), Value::Null),
            "outbox.id",
        ),
        (
            outbox_row(t(b"k"), Value::Null, Value::Null, t(b"{}"), Value::Null),
            "outbox.kind",
        ),
        (
            outbox_row(t(b"k"), t(b"bad kind!"), Value::Null, t(b"{}"), Value::Null),
            "outbox.kind",
        ),
        (
            outbox_row(t(b"k"), t(b"a"), Value::Null, Value::Null, Value::Null),
            "outbox.payload",
        ),
        (
            outbox_row(t(b"k"), t(b"a"), Value::Null, t(b"{}"), t(b"no spaces")),
            "outbox.tenant",
        ),
    ];
    for (m, _) in &bad {
        c.apply(m, &mut events, &mut rejects).unwrap();
    }
    let delete = Message::Delete {
        xid: None,
        relation: 7,
        old: (
            OldKind::Key,
            Tuple(vec![
                t(b"1"),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ]),
        ),
    };
    c.apply(&delete, &mut events, &mut rejects).unwrap();
    assert_eq!(events.len(), 2, "deletes are ignored, bad rows rejected: {events:?}");
    let e = &events[0];
    assert_eq!(e.id, EventId::sha256(b"k-1"));
    assert_eq!(e.kind, "outbox.miner.portfolio_updated");
    assert_eq!(e.key.as_deref(), Some("user-7"));
    assert_eq!(e.tenant.as_deref(), Some("acme"));
    assert_eq!(e.data, json!({"v": 1}));
    assert_eq!(e.position.as_deref(), Some("0/100/1"));
    assert_eq!((events[1].key.as_ref(), events[1].tenant.as_ref()), (None, None));
    assert_eq!(rejects.len(), bad.len());
    for (r, (_, field)) in rejects.iter().zip(&bad) {
        assert!(r.reason.contains(field), "{} should name {field}", r.reason);
        assert!(
            r.position.starts_with("public.event_outbox insert at 0/100/"),
            "{}",
            r.position
        );
    }
    // A text payload must hold JSON.
    let mut c = Changes::new(Some(&outbox()), 1 << 20);
    let rel = relation(
        7,
        "event_outbox",
        &[
            ("seq", 20, true),
            ("idempotency_key", 25, false),
            ("kind", 25, false),
            ("user_id", 25, false),
            ("payload", 25, false),
            ("tenant_id", 25, false),
        ],
    );
    c.apply(&rel, &mut events, &mut rejects).unwrap();
    c.begin(Lsn(1), 1, 0);
    let m = outbox_row(t(b"k"), t(b"a"), Value::Null, t(b"not json"), Value::Null);
    c.apply(&m, &mut events, &mut rejects).unwrap();
    assert!(rejects.last().unwrap().reason.contains("is not JSON"));
}

#[test]
fn a_missing_outbox_column_rejects_each_row_with_its_name() {
    let mut c = Changes::new(Some(&outbox()), 1 << 20);
    let (mut events, mut rejects) = (Vec::new(), Vec::new());
    let rel = relation(7, "event_outbox", &[("idempotency_key", 25, true), ("kind", 25, false)]);
    c.apply(&rel, &mut events, &mut rejects).unwrap();
    c.begin(Lsn(1), 1, 0);
    let m = Message::Insert {
        xid: None,
        relation: 7,
        new: Tuple(vec![Value::Text(b"k"), Value::Text(b"a")]),
    };
    c.apply(&m, &mut events, &mut rejects).unwrap();
    assert!(events.is_empty());
    assert!(
        rejects[0].reason.contains(r#"no column "payload""#),
        "{}",
        rejects[0].reason
    );
}

#[test]
fn oversized_rows_are_rejects() {
    let mut c = Changes::new(None, 64);
    let (mut events, mut rejects) = (Vec::new(), Vec::new());
    c.apply(&relation(1, "t", &[("v", 25, false)]), &mut events, &mut rejects)
        .unwrap();
    c.begin(Lsn(1), 1, 0);
    let big = vec![b'x'; 100];
    let m = Message::Insert {
        xid: None,
        relation: 1,
        new: Tuple(vec![Value::Text(&big)]),
    };
    c.apply(&m, &mut events, &mut rejects).unwrap();
    assert!(events.is_empty());
    assert!(rejects[0].reason.contains("max_event_bytes"));
}

#[test]
fn config_errors_name_their_field() {
    let cfg: super::PostgresSourceConfig = toml::from_str(
        r#"
        url = "mysql://x"
        slot = "Bad-Slot"
        publication = "p"
        tables = ["a.b.c"]
        snapshot = true
        max_batch_events = 0
        max_retained_wal_bytes = 10
        slot_check_interval_ms = 0
        slot_stall_after_ms = 100000000000
        "#,
    )
    .unwrap();
    let fields: Vec<String> = cfg.validate().into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "url",
            "slot",
            "tables[0]",
            "max_batch_events",
            "max_retained_wal_bytes",
            "slot_check_interval_ms",
            "slot_stall_after_ms"
        ]
    );
    let ok: super::PostgresSourceConfig = toml::from_str(
        r#"
        url = "postgres://tributary:secret@127.0.0.1:5432/app"
        slot = "tributary_app"
        publication = "tributary_app"
        tables = ["public.event_outbox", "orders"]
        [outbox]
        table = "public.event_outbox"
        id = "idempotency_key"
        kind = "kind"
        key = "user_id"
        payload = "payload"
        tenant = "tenant_id"
        "#,
    )
    .unwrap();
    assert_eq!(ok.validate(), Vec::new());
    let shown = format!("{ok:?}");
    assert!(!shown.contains("secret") && shown.contains("tributary:***@"), "{shown}");
}
