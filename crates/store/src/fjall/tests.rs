//! Unit tests of the embedded backend: record encoding, poisoning, reopening, locking, and a crash test
//! that kills a child process in the middle of appends.

use super::FjallStore;
use super::{keys, record};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use tributary_core::store::{AppendBatch, AppendItem, DeliveryUpdate};
use tributary_core::{Catalog, DeliveryState, EventId, Log, NewEvent, Reject, StoreError, Timestamp};

fn ev(n: u64) -> NewEvent {
    NewEvent {
        id: EventId::sha256(&n.to_be_bytes()),
        kind: "test.event".into(),
        key: None,
        occurred_at: None,
        position: None,
        payload: Vec::new(),
        data: serde_json::json!({ "n": n }),
        tenant: None,
        retracts: None,
    }
}

fn batch(events: Vec<NewEvent>) -> AppendBatch {
    AppendBatch {
        source: "src".into(),
        observer: "src".into(),
        seen_at: Timestamp(1),
        events,
        ..AppendBatch::default()
    }
}

#[test]
fn event_records_round_trip() {
    let full = NewEvent {
        id: EventId::sha256(b"x"),
        kind: "ln.channel_update".into(),
        key: Some("chan-1".into()),
        occurred_at: Some(Timestamp(-5)),
        position: Some("block 7".into()),
        payload: vec![0, 1, 255],
        data: serde_json::json!({ "a": [1, 2.5, null, "\u{1F600}"], "b": { "c": true } }),
        tenant: Some("t".into()),
        retracts: Some(EventId::sha256(b"y")),
    };
    for ev in [full, ev(3)] {
        let bytes = record::encode_event(&ev, "nostr", Timestamp(42));
        let back = record::decode_event(9, &bytes).unwrap();
        assert_eq!(
            (back.seq, back.source.as_str(), back.ingested_at),
            (9, "nostr", Timestamp(42))
        );
        assert_eq!(back.event, ev);
        // Every truncation is reported as corruption, never a panic or a wrong event.
        for len in 0..bytes.len() {
            let err = record::decode_event(9, &bytes[..len]).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { what: "event", .. }), "{err}");
        }
    }
}

#[test]
fn observation_values_are_checked() {
    let v = keys::encode_observation((Timestamp(1), Timestamp(2), 3));
    assert_eq!(keys::decode_observation(&v).unwrap(), (Timestamp(1), Timestamp(2), 3));
    assert!(keys::decode_observation(&v[..23]).is_err());
}

#[test]
fn id_entries_round_trip() {
    let entry = keys::IdEntry {
        seq: 7,
        observer: "wss://relay.example".into(),
        obs: (Timestamp(1), Timestamp(2), 3),
    };
    let v = keys::encode_id_entry(&entry);
    assert_eq!(keys::decode_id_entry(&v).unwrap(), entry);
    assert!(keys::decode_id_entry(&v[..31]).is_err());
}

#[tokio::test]
async fn a_failed_commit_poisons_writes_but_not_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = FjallStore::open(dir.path()).unwrap();
    store.append(batch(vec![ev(1)])).await.unwrap();
    store.fail_next_commit();
    let err = store.append(batch(vec![ev(2)])).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Poisoned(ref r) if r.contains("injected")),
        "{err}"
    );
    assert!(store.poisoned().is_some_and(|r| r.contains("injected")));
    let err = store.put_meta("k", "v").await.unwrap_err();
    assert!(matches!(err, StoreError::Poisoned(_)), "{err}");
    let update = DeliveryUpdate {
        cursor: Some(1),
        ..DeliveryUpdate::default()
    };
    let err = store.commit_delivery("s", update).await.unwrap_err();
    assert!(matches!(err, StoreError::Poisoned(_)), "{err}");
    // The failed group left nothing behind, and reads still answer.
    assert_eq!(store.last_seq(), 1);
    assert_eq!(store.read_from(1, 10).await.unwrap().len(), 1);
    assert!(store.get("src", &ev(2).id).await.unwrap().is_none());
    assert_eq!(store.get_meta("k").await.unwrap(), None);
}

#[tokio::test]
async fn reopening_recovers_seqs_rejects_and_state() {
    let dir = tempfile::tempdir().unwrap();
    let reject = |i: u64| Reject {
        position: format!("line {i}"),
        reason: "bad".into(),
        excerpt: String::new(),
        at: Timestamp(0),
    };
    {
        let store = FjallStore::open(dir.path()).unwrap();
        let mut b = batch(vec![ev(1), ev(2)]);
        b.rejects = vec![reject(1)];
        store.append(b).await.unwrap();
        store.put_meta("secret", "s3").await.unwrap();
    }
    let store = FjallStore::open(dir.path()).unwrap();
    assert_eq!(store.last_seq(), 2);
    assert_eq!(*store.watch_seq().borrow(), 2);
    let mut b = batch(vec![ev(2), ev(3)]);
    b.rejects = vec![reject(2)];
    let outcome = store.append(b).await.unwrap();
    assert_eq!(outcome.items, vec![AppendItem::Duplicate(2), AppendItem::Accepted(3)]);
    let rejects = store.rejects("src", 10).await.unwrap();
    assert_eq!(rejects, vec![reject(1), reject(2)]);
    assert_eq!(store.get_meta("secret").await.unwrap().as_deref(), Some("s3"));
}

#[test]
fn a_second_open_of_the_same_directory_says_it_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = FjallStore::open(dir.path()).unwrap();
    let Err(err) = FjallStore::open(dir.path()) else {
        panic!("a second open succeeded");
    };
    let text = std::error::Error::source(&err)
        .map(|s| s.to_string())
        .unwrap_or_default();
    assert!(text.contains("locked"), "{text}");
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
}

const CRASH_DIR: &str = "TRIBUTARY_STORE_CRASH_DIR";

/// Run by [`acknowledged_appends_survive_kill_9`] in a child process: appends until killed, printing
/// the last seq of every acknowledged batch. Does nothing in a normal test run.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_DIR) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = FjallStore::open(std::path::Path::new(&dir)).unwrap();
        for i in 0u64.. {
            let events = (0..10).map(|j| ev(i * 10 + j)).collect();
            store.append(batch(events)).await.unwrap();
            println!("acked {}", store.last_seq());
        }
    });
}

#[test]
fn acknowledged_appends_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["fjall::tests::crash_child", "--exact", "--nocapture"])
        .env(CRASH_DIR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(seq) = line.strip_prefix("acked ").and_then(|s| s.parse::<u64>().ok()) {
                let _ = tx.send(seq);
            }
        }
    });
    let mut acked = 0;
    while acked < 500 {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(seq) => acked = seq,
            Err(e) => panic!("child stopped acknowledging after seq {acked}: {e}"),
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    acked = rx.try_iter().fold(acked, u64::max);

    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let store = FjallStore::open(dir.path()).unwrap();
        let last = store.last_seq();
        assert!(last >= acked, "acknowledged up to {acked}, recovered only {last}");
        let all = store.read_from(1, usize::MAX).await.unwrap();
        assert_eq!(all.len() as u64, last);
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1);
            assert_eq!(e.event, ev(i as u64), "event at seq {}", e.seq);
        }
        // The recovered store takes new writes after the last recovered seq.
        let outcome = store.append(batch(vec![ev(1_000_000)])).await.unwrap();
        assert_eq!(outcome.items, vec![AppendItem::Accepted(last + 1)]);
    });
}

/// A store written before ids were scoped by source (bare ids in `ids` and `observations`) is upgraded
/// when opened: its events are found by (source, id) and duplicates still meet them.
#[tokio::test]
async fn a_store_with_bare_ids_is_upgraded_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = FjallStore::open(dir.path()).unwrap();
        store.append(batch(vec![ev(1), ev(2)])).await.unwrap();
        let mut later = batch(vec![ev(1)]);
        later.observer = "collector-b".into();
        store.append(later).await.unwrap();
        // Put the layout back as an earlier version wrote it.
        let t = &store.shared.tables;
        let mut b = fjall::OwnedWriteBatch::with_capacity(store.shared.db.clone(), 8);
        for n in [1, 2] {
            let (id, scoped) = (ev(n).id, ev(n).id.in_source("src"));
            let entry = t.ids.get(scoped.0).unwrap().unwrap();
            b.insert(&t.ids, id.0, entry);
            b.remove(&t.ids, scoped.0);
            for g in t.observations.prefix(scoped.0) {
                let (k, v) = g.into_inner().unwrap();
                let mut bare = id.0.to_vec();
                bare.extend_from_slice(&k[32..]);
                b.insert(&t.observations, bare, v);
                b.remove(&t.observations, k);
            }
        }
        b.remove(&t.meta, keys::meta_key(b'm', "store/ids-scoped"));
        b.commit().unwrap();
        assert!(
            store.get("src", &ev(1).id).await.unwrap().is_none(),
            "the legacy layout is in place"
        );
    }
    let store = FjallStore::open(dir.path()).unwrap();
    assert_eq!(store.get("src", &ev(1).id).await.unwrap().map(|e| e.seq), Some(1));
    assert_eq!(store.get("src", &ev(2).id).await.unwrap().map(|e| e.seq), Some(2));
    let observers: Vec<_> = (store.observations("src", &ev(1).id).await.unwrap().into_iter())
        .map(|o| o.observer)
        .collect();
    assert_eq!(observers, vec!["collector-b".to_string(), "src".to_string()]);
    let again = store.append(batch(vec![ev(2), ev(3)])).await.unwrap();
    assert_eq!(again.items, vec![AppendItem::Duplicate(2), AppendItem::Accepted(3)]);
}

/// A store that kept its catalog as prefixed meta values (before ADR 0006's catalog) is upgraded when
/// opened: each value becomes a record at version 1, deleted ones (empty values) are left out, other
/// meta values stay, and a record that cannot be decoded is listed as broken, not fatal.
#[tokio::test]
async fn a_store_with_a_meta_catalog_is_upgraded_on_open() {
    use tributary_core::catalog::{Entry, Expect, RecordKind};
    let dir = tempfile::tempdir().unwrap();
    {
        let store = FjallStore::open(dir.path()).unwrap();
        let legacy = [
            ("tenant/acme", "{\"name\":\"acme\"}"),
            ("api-key/k1", "{\"tenant\":\"acme\"}"),
            ("api-subscription/s1", "{\"name\":\"s1\"}"),
            ("api-subscription/gone", ""),
            ("deleted-subscription/gone", "2026-01-01T00:00:00Z"),
            ("subscription/s1/secret", "whsec_abc"),
            ("subscription/s1/started", "2026-01-01T00:00:00Z"),
            ("idempotency/00ff/admin/k", "{\"status\":201}"),
            ("lightning/ln/waiting/0000000000000001", "{}"),
        ];
        for (k, v) in legacy {
            store.put_meta(k, v).await.unwrap();
        }
        let t = &store.shared.tables;
        let mut b = fjall::OwnedWriteBatch::with_capacity(store.shared.db.clone(), 8);
        b.remove(&t.meta, keys::meta_key(b'm', "store/catalog"));
        // A record an earlier crash or a bug left unreadable.
        b.insert(
            &t.meta,
            keys::catalog_key(RecordKind::Tenant, "zz-broken"),
            vec![1, 2, 3],
        );
        b.commit().unwrap();
    }
    let store = FjallStore::open(dir.path()).unwrap();
    let record = |kind, name: &'static str| {
        let store = &store;
        async move { store.record(kind, name).await.unwrap().map(|r| (r.version, r.value)) }
    };
    assert_eq!(
        record(RecordKind::Tenant, "acme").await,
        Some((1, "{\"name\":\"acme\"}".into()))
    );
    assert_eq!(record(RecordKind::ApiKey, "k1").await.map(|r| r.0), Some(1));
    assert_eq!(record(RecordKind::Subscription, "s1").await.map(|r| r.0), Some(1));
    assert_eq!(record(RecordKind::Subscription, "gone").await, None);
    assert!(record(RecordKind::DeletedSubscription, "gone").await.is_some());
    assert_eq!(
        record(RecordKind::SinkSecret, "s1").await.map(|r| r.1),
        Some("whsec_abc".into())
    );
    assert!(record(RecordKind::Idempotency, "00ff/admin/k").await.is_some());
    // The moved values are gone from meta; the others stay.
    assert_eq!(store.get_meta("tenant/acme").await.unwrap(), None);
    assert_eq!(store.get_meta("subscription/s1/secret").await.unwrap(), None);
    assert!(store.get_meta("subscription/s1/started").await.unwrap().is_some());
    assert!(
        store
            .get_meta("lightning/ln/waiting/0000000000000001")
            .await
            .unwrap()
            .is_some()
    );
    let tenants = store.records(RecordKind::Tenant, "").await.unwrap();
    assert!(
        matches!(&tenants[0], Entry::Ok { name, .. } if name == "acme"),
        "{tenants:?}"
    );
    assert!(
        matches!(&tenants[1], Entry::Broken { name, .. } if name == "zz-broken"),
        "{tenants:?}"
    );
    // Versions go on from the upgraded ones, and survive a reopen.
    let v = store
        .compare_and_set(RecordKind::Tenant, "acme", Expect::Version(1), Some("{}"))
        .await
        .unwrap();
    assert_eq!(v, Ok(2));
    drop(store);
    let store = FjallStore::open(dir.path()).unwrap();
    assert_eq!(
        store.record(RecordKind::Tenant, "acme").await.unwrap().unwrap().version,
        2
    );
}
