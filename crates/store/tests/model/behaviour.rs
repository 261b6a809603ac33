//! Behaviour every backend shares, written once over `Arc<dyn Store>` and run against each (fjall,
//! memory, PostgreSQL), and what only the PostgreSQL backend has (migrations, two nodes on one schema).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tributary_core::catalog::{Entry, Expect, RecordKind, Versioned};
use tributary_core::store::{AppendBatch, AppendItem, Checkpoint, DeliveryUpdate, Pending};
use tributary_core::{EventId, Log, NewEvent, Reject, Seq, Store, StoreError, Timestamp};
use tributary_store::{FjallStore, MemoryStore, REJECTS_KEPT_PER_SOURCE};

fn ev(n: u32) -> NewEvent {
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

fn batch(observer: &str, events: Vec<NewEvent>) -> AppendBatch {
    AppendBatch {
        source: "src".into(),
        observer: observer.into(),
        seen_at: Timestamp::now(),
        events,
        ..AppendBatch::default()
    }
}

/// 50 tasks appending one event each all succeed, with distinct seqs 1..=50.
async fn concurrent_appends_get_gap_free_seqs(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.append(batch("o", vec![ev(n)])).await })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for task in tasks {
        let outcome = task.await.expect("task panicked").expect("append failed");
        match outcome.items.as_slice() {
            [AppendItem::Accepted(seq)] => assert!(seqs.insert(*seq), "seq {seq} given twice"),
            other => panic!("expected one accepted item, got {other:?}"),
        }
    }
    assert_eq!(seqs, (1..=50).collect::<BTreeSet<Seq>>());
    assert_eq!(store.last_seq(), 50);
    assert_eq!(store.read_from(1, 100).await.unwrap().len(), 50);
}

/// Duplicates within a batch and across batches, and the observations they leave.
async fn duplicates_add_observations(store: Arc<dyn Store>) {
    let first = store.append(batch("a", vec![ev(1), ev(2), ev(1)])).await.unwrap();
    use AppendItem::*;
    assert_eq!(first.items, vec![Accepted(1), Accepted(2), Duplicate(1)]);
    assert_eq!((first.accepted(), first.duplicates()), (2, 1));
    let again = store.append(batch("b", vec![ev(2), ev(3)])).await.unwrap();
    assert_eq!(again.items, vec![Duplicate(2), Accepted(3)]);
    let obs = store.observations("src", &ev(1).id).await.unwrap();
    assert_eq!(obs.len(), 1);
    assert_eq!((obs[0].observer.as_str(), obs[0].count), ("a", 2));
    let obs = store.observations("src", &ev(2).id).await.unwrap();
    let seen: Vec<_> = obs.iter().map(|o| (o.observer.as_str(), o.count)).collect();
    assert_eq!(seen, vec![("a", 1), ("b", 1)]);
    let got = store.get("src", &ev(3).id).await.unwrap().expect("event 3 stored");
    assert_eq!((got.seq, got.event), (3, ev(3)));
    assert!(store.get("src", &ev(9).id).await.unwrap().is_none());
    // Ids are unique per source (ADR 0005): the same id in another source is another event.
    let mut other = batch("a", vec![ev(1)]);
    other.source = "other".into();
    let elsewhere = store.append(other).await.unwrap();
    assert_eq!(elsewhere.items, vec![Accepted(4)]);
    assert_eq!(store.get("other", &ev(1).id).await.unwrap().map(|e| e.seq), Some(4));
    assert_eq!(store.get("src", &ev(1).id).await.unwrap().map(|e| e.seq), Some(1));
    assert_eq!(
        store.observations("other", &ev(1).id).await.unwrap()[0].event_id,
        ev(1).id
    );
    assert!(store.get_seq(5).await.unwrap().is_none());
}

/// A checkpoint lands with its batch, and the watch channel sees every durable append.
async fn checkpoints_and_watch(store: Arc<dyn Store>) {
    let mut watch = store.watch_seq();
    assert_eq!(*watch.borrow_and_update(), 0);
    let mut b = batch("o", vec![ev(1), ev(2)]);
    b.checkpoint = Some(Checkpoint {
        partition: "/var/log/x".into(),
        position: "1024".into(),
    });
    store.append(b).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), watch.changed())
        .await
        .expect("watch notified")
        .unwrap();
    assert_eq!(*watch.borrow(), 2);
    let cps = store.checkpoints("src").await.unwrap();
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].position, "1024");
    assert!(store.checkpoints("other").await.unwrap().is_empty());
}

/// Meta entries put and removed with a batch, in order, with its checkpoint.
async fn meta_moves_with_the_batch(store: Arc<dyn Store>) {
    store.put_meta("state/a", "old").await.unwrap();
    let mut b = batch("o", vec![ev(1)]);
    b.checkpoint = Some(Checkpoint {
        partition: String::new(),
        position: "7".into(),
    });
    b.meta = vec![
        ("state/a".into(), None),
        ("state/b".into(), Some("1".into())),
        ("state/c".into(), Some("first".into())),
        ("state/c".into(), Some("second".into())),
    ];
    store.append(b).await.unwrap();
    let kept = store.meta_prefix("state/").await.unwrap();
    assert_eq!(
        kept,
        vec![("state/b".into(), "1".into()), ("state/c".into(), "second".into())]
    );
    // A batch of nothing but meta changes is written too.
    let mut b = batch("o", Vec::new());
    b.meta = vec![("state/b".into(), None)];
    store.append(b).await.unwrap();
    assert_eq!(store.get_meta("state/b").await.unwrap(), None);
    assert_eq!(store.checkpoints("src").await.unwrap()[0].position, "7");
}

/// Only the newest rejects are kept, returned oldest first.
async fn rejects_keep_the_newest(store: Arc<dyn Store>) {
    let n = REJECTS_KEPT_PER_SOURCE + 3;
    let mut b = batch("o", Vec::new());
    b.rejects = (0..n)
        .map(|i| Reject {
            position: format!("line {i}"),
            reason: "not json".into(),
            excerpt: "{".into(),
            at: Timestamp(0),
        })
        .collect();
    store.append(b).await.unwrap();
    let all = store.rejects("src", usize::MAX).await.unwrap();
    assert_eq!(all.len() as u64, REJECTS_KEPT_PER_SOURCE);
    assert_eq!(all[0].position, "line 3");
    let last = store.rejects("src", 2).await.unwrap();
    let positions: Vec<_> = last.iter().map(|r| r.position.clone()).collect();
    assert_eq!(positions, vec![format!("line {}", n - 2), format!("line {}", n - 1)]);
}

/// Delivery state round-trips; an entry both removed and put ends up present.
async fn delivery_state_round_trips(store: Arc<dyn Store>) {
    assert_eq!(store.subscription_state("s").await.unwrap().cursor, 0);
    let pending = |seq| Pending {
        seq,
        key: None,
        attempts: 1,
        due_at: Timestamp(5),
        prior_attempts: 0,
    };
    let update = DeliveryUpdate {
        cursor: Some(10),
        paused: Some(true),
        pending_put: vec![pending(4), pending(7)],
        pending_remove: vec![7],
        ..DeliveryUpdate::default()
    };
    store.commit_delivery("s", update).await.unwrap();
    store.commit_delivery("s", DeliveryUpdate::default()).await.unwrap();
    let state = store.subscription_state("s").await.unwrap();
    assert_eq!((state.cursor, state.paused), (10, true));
    assert_eq!(state.pending, vec![pending(4), pending(7)]);
    assert_eq!(store.subscription_state("t").await.unwrap().cursor, 0);
    store.put_meta("secret", "abc").await.unwrap();
    assert_eq!(store.get_meta("secret").await.unwrap().as_deref(), Some("abc"));
    assert_eq!(store.get_meta("other").await.unwrap(), None);
    assert!(store.poisoned().is_none());
}

/// A poisoned memory store refuses writes and keeps answering reads.
async fn poisoned_memory_store_refuses_writes(store: Arc<MemoryStore>) {
    store.append(batch("o", vec![ev(1)])).await.unwrap();
    store.poison("disk gone");
    let err = store.append(batch("o", vec![ev(2)])).await.unwrap_err();
    assert!(matches!(err, StoreError::Poisoned(ref r) if r == "disk gone"), "{err}");
    let err = store.put_meta("k", "v").await.unwrap_err();
    assert!(matches!(err, StoreError::Poisoned(_)), "{err}");
    assert_eq!(store.read_from(1, 10).await.unwrap().len(), 1);
    assert_eq!(store.poisoned().as_deref(), Some("disk gone"));
}

/// How many of 16 concurrent writes of the `SinkSecret` record `race`, each expecting `expect`, succeed.
async fn winners(store: &Arc<dyn Store>, expect: Expect) -> usize {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let value = format!("writer {i}");
                let set = store.compare_and_set(RecordKind::SinkSecret, "race", expect, Some(&value));
                set.await.unwrap()
            })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap().is_ok());
    }
    won
}

/// The catalog's rules (`tributary_core::catalog`): create once, change by version, tombstones that keep
/// the version, listings by prefix without tombstones, one winner among concurrent creates.
async fn catalog_compare_and_set(store: Arc<dyn Store>) {
    use RecordKind::*;
    let cas = |kind, name: &'static str, expect, value: Option<&'static str>| {
        let store = store.clone();
        async move { store.compare_and_set(kind, name, expect, value).await.expect("store") }
    };
    assert_eq!(store.record(Tenant, "acme").await.unwrap(), None);
    assert_eq!(cas(Tenant, "acme", Expect::Absent, Some("{\"v\":1}")).await, Ok(1));
    // A second create conflicts, naming the version there.
    let c = cas(Tenant, "acme", Expect::Absent, Some("{}")).await.unwrap_err();
    assert_eq!(c.current, Some(1));
    assert!(c.to_string().contains("tenant record \"acme\""), "{c}");
    assert_eq!(
        cas(Tenant, "acme", Expect::Version(2), Some("{}"))
            .await
            .unwrap_err()
            .current,
        Some(1)
    );
    assert_eq!(cas(Tenant, "acme", Expect::Version(1), Some("{\"v\":2}")).await, Ok(2));
    let got = store.record(Tenant, "acme").await.unwrap().unwrap();
    assert_eq!(
        got,
        Versioned {
            version: 2,
            value: "{\"v\":2}".into()
        }
    );
    // Kinds are separate namespaces.
    assert_eq!(store.record(ApiKey, "acme").await.unwrap(), None);
    assert_eq!(cas(ApiKey, "acme", Expect::Absent, Some("k")).await, Ok(1));
    // A delete leaves a tombstone: absent again, and the version goes on (no ABA).
    assert_eq!(cas(Tenant, "acme", Expect::Version(2), None).await, Ok(3));
    assert_eq!(store.record(Tenant, "acme").await.unwrap(), None);
    assert_eq!(
        cas(Tenant, "acme", Expect::Version(2), Some("{}"))
            .await
            .unwrap_err()
            .current,
        None
    );
    assert_eq!(cas(Tenant, "acme", Expect::Absent, Some("{\"v\":4}")).await, Ok(4));
    assert_eq!(cas(Tenant, "acme-2", Expect::Any, Some("x")).await, Ok(1));
    assert_eq!(cas(Tenant, "acme-2", Expect::Any, Some("y")).await, Ok(2));
    assert_eq!(cas(Tenant, "b", Expect::Absent, Some("b")).await, Ok(1));
    assert_eq!(cas(Tenant, "b", Expect::Version(1), None).await, Ok(2));
    // Deleting what is not there conflicts.
    assert_eq!(
        cas(Tenant, "b", Expect::Version(2), None).await.unwrap_err().current,
        None
    );
    // Listings: live records by prefix, in name order; tombstones left out.
    let names = |entries: Vec<Entry>| {
        entries
            .into_iter()
            .map(|e| match e {
                Entry::Ok { name, record } => (name, record.version),
                Entry::Broken { name, error } => panic!("{name} broken: {error}"),
            })
            .collect::<Vec<_>>()
    };
    let all = store.records(Tenant, "").await.unwrap();
    assert_eq!(names(all), [("acme".to_owned(), 4), ("acme-2".to_owned(), 2)]);
    let some = store.records(Tenant, "acme-").await.unwrap();
    assert_eq!(names(some), [("acme-2".to_owned(), 2)]);
    assert_eq!(
        names(store.records(ApiKey, "").await.unwrap()),
        [("acme".to_owned(), 1)]
    );
    // Concurrent creates of one name: exactly one wins; concurrent updates from one version: one wins.
    assert_eq!(winners(&store, Expect::Absent).await, 1);
    assert_eq!(winners(&store, Expect::Version(1)).await, 1);
    assert_eq!(store.record(SinkSecret, "race").await.unwrap().unwrap().version, 2);
}

#[tokio::test]
async fn memory_store_poison() {
    poisoned_memory_store_refuses_writes(Arc::new(MemoryStore::new())).await;
}

macro_rules! for_every_backend {
    ($($name:ident),* $(,)?) => {
        mod fjall_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = super::FjallStore::open(dir.path()).unwrap();
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod memory_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(std::sync::Arc::new(super::MemoryStore::new())).await;
                }
            )*
        }
        mod postgres_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let schema = crate::pg::Schema::new().await;
                    super::$name(std::sync::Arc::new(schema.open().await)).await;
                    schema.drop().await;
                }
            )*
        }
    };
}

for_every_backend!(
    concurrent_appends_get_gap_free_seqs,
    duplicates_add_observations,
    checkpoints_and_watch,
    rejects_keep_the_newest,
    meta_moves_with_the_batch,
    delivery_state_round_trips,
    catalog_compare_and_set,
);

/// Two stores on one schema (two nodes) appending at once: one gap-free sequence, each id stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_stores_on_one_schema_share_one_sequence() {
    let schema = crate::pg::Schema::new().await;
    let a: Arc<dyn Store> = Arc::new(schema.open().await);
    let b: Arc<dyn Store> = Arc::new(schema.open().await);
    let tasks: Vec<_> = (0..40u32)
        .map(|n| {
            let store = if n % 2 == 0 { a.clone() } else { b.clone() };
            // Every id is sent by both nodes.
            tokio::spawn(async move { store.append(batch(&format!("node-{}", n % 2), vec![ev(n / 2)])).await })
        })
        .collect();
    let mut accepted = BTreeSet::new();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        if let [AppendItem::Accepted(seq)] = outcome.items.as_slice() {
            assert!(accepted.insert(*seq), "seq {seq} given twice");
        }
    }
    assert_eq!(accepted, (1..=20).collect::<BTreeSet<Seq>>());
    let all = a.read_from(1, 100).await.unwrap();
    assert_eq!(all.len(), 20);
    for n in 0..20 {
        let obs = b.observations("src", &ev(n).id).await.unwrap();
        let total: u64 = obs.iter().map(|o| o.count).sum();
        assert_eq!(total, 2, "event {n} seen by both nodes: {obs:?}");
    }
    drop((a, b));
    schema.drop().await;
}

/// Opening migrates once and again changes nothing; a schema newer than this build is refused with
/// what to do.
#[tokio::test]
async fn postgres_schema_versions() {
    let schema = crate::pg::Schema::new().await;
    let store = schema.open().await;
    store.append(batch("o", vec![ev(1)])).await.unwrap();
    drop(store);
    let again = schema.open().await;
    assert_eq!(again.last_seq(), 1, "reopening keeps the log");
    drop(again);
    let newer = tributary_store::postgres::SCHEMA_VERSION + 1;
    schema
        .execute(&format!(
            "INSERT INTO \"{}\".schema_version (version) VALUES ({newer})",
            schema.name
        ))
        .await;
    let err = match tributary_store::PostgresStore::open(&schema.config()).await {
        Ok(_) => panic!("a newer schema was opened"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&format!("version {newer}, newer than this tributary knows")),
        "{err}"
    );
    schema.drop().await;
}

/// A name PostgreSQL's text cannot hold is refused with the reason; event fields with NUL are kept.
#[tokio::test]
async fn postgres_keeps_nul_in_events_and_refuses_it_in_names() {
    let schema = crate::pg::Schema::new().await;
    let store = schema.open().await;
    let mut e = ev(1);
    e.kind = "k\0".into();
    e.key = Some("a\0b".into());
    e.data = serde_json::json!({ "s": "x\u{0}y" });
    store.append(batch("o", vec![e.clone()])).await.unwrap();
    assert_eq!(store.get("src", &e.id).await.unwrap().unwrap().event, e);
    // An observer from outside with a NUL is kept, shown with U+FFFD.
    store.append(batch("node\0id", vec![ev(3)])).await.unwrap();
    let obs = store.observations("src", &ev(3).id).await.unwrap();
    assert_eq!(obs[0].observer, "node\u{fffd}id");
    let mut bad = batch("o", vec![ev(2)]);
    bad.source = "a\0b".into();
    let err = store.append(bad).await.unwrap_err().to_string();
    assert!(err.contains("NUL"), "{err}");
    drop(store);
    schema.drop().await;
}

/// Leases: one holder at a time, taken over after expiry with a higher epoch, renewed and released;
/// the fence refuses the writes of a holder that lost its lease, and lets the holder's writes through.
#[tokio::test]
async fn postgres_leases_fence_the_writes_of_a_node_that_lost_its_lease() {
    use tributary_core::DeliveryState;
    use tributary_core::cluster::Fence;
    let schema = crate::pg::Schema::new().await;
    let a = schema.open().await;
    let b = schema.open().await;
    let (la, lb) = (a.leases().unwrap(), b.leases().unwrap());
    let ttl = Duration::from_millis(600);
    let first = la
        .acquire("source:src", "a", ttl)
        .await
        .unwrap()
        .expect("a free lease is taken");
    assert_eq!(lb.acquire("source:src", "b", ttl).await.unwrap(), None, "held by a");
    let fence_a = Fence {
        lease: "source:src".into(),
        holder: "a".into(),
        epoch: first,
    };
    let mut fenced = batch("o", vec![ev(1)]);
    fenced.fence = Some(fence_a.clone());
    a.append(fenced).await.expect("the holder writes");
    assert_eq!(
        la.renew("a", std::slice::from_ref(&fence_a), ttl).await.unwrap(),
        vec!["source:src"]
    );
    // a stops renewing: b takes the lease once it expired, at a higher epoch.
    tokio::time::sleep(ttl + Duration::from_millis(200)).await;
    let second = lb
        .acquire("source:src", "b", ttl)
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert!(second > first, "{second} > {first}");
    assert!(
        la.renew("a", std::slice::from_ref(&fence_a), ttl)
            .await
            .unwrap()
            .is_empty(),
        "a's lease is lost"
    );
    let mut stale = batch("o", vec![ev(2)]);
    stale.fence = Some(fence_a.clone());
    let err = a.append(stale).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::LeaseLost { lease, .. } if lease == "source:src"),
        "{err:?}"
    );
    assert!(
        a.get("src", &ev(2).id).await.unwrap().is_none(),
        "nothing of a refused write is kept"
    );
    let stale_update = DeliveryUpdate {
        cursor: Some(1),
        fence: Some(fence_a.clone()),
        ..Default::default()
    };
    assert!(matches!(
        a.commit_delivery("s", stale_update).await,
        Err(StoreError::LeaseLost { .. })
    ));
    // Released, it is taken at once.
    let fence_b = Fence {
        lease: "source:src".into(),
        holder: "b".into(),
        epoch: second,
    };
    lb.release(&fence_b).await.unwrap();
    let third = la
        .acquire("source:src", "a", ttl)
        .await
        .unwrap()
        .expect("a released lease is free");
    assert!(third > second);
    let view = la.view(ttl).await.unwrap();
    assert_eq!(view.leases.len(), 1);
    assert_eq!(
        (
            view.leases[0].holder.as_str(),
            view.leases[0].epoch,
            view.leases[0].expired
        ),
        ("a", third, false)
    );
    drop((a, b));
    schema.drop().await;
}

/// A node learns of the events another node appended, promptly and without reading itself.
#[tokio::test]
async fn postgres_stores_learn_of_each_others_appends() {
    let schema = crate::pg::Schema::new().await;
    let a = schema.open().await;
    let b = schema.open().await;
    let mut watch = b.watch_seq();
    a.append(batch("o", vec![ev(1), ev(2)])).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while *watch.borrow_and_update() < 2 {
            watch.changed().await.unwrap();
        }
    })
    .await
    .expect("b heard of a's append");
    assert_eq!(b.last_seq(), 2);
    assert_eq!(b.read_from(1, 10).await.unwrap().len(), 2);
    drop((a, b));
    schema.drop().await;
}

/// Nodes announce themselves; the view tells which are alive, and a node that leaves is gone.
#[tokio::test]
async fn postgres_nodes_announce_themselves() {
    use tributary_core::cluster::NodeAnnouncement;
    let schema = crate::pg::Schema::new().await;
    let a = schema.open().await;
    let leases = a.leases().unwrap();
    let node = |id: &str| NodeAnnouncement {
        id: id.into(),
        url: format!("http://127.0.0.1/{id}"),
        version: "test".into(),
        started_at: tributary_core::Timestamp(1),
        problems: vec![],
    };
    leases.announce(&node("n1")).await.unwrap();
    leases.announce(&node("n2")).await.unwrap();
    let view = leases.view(Duration::from_secs(10)).await.unwrap();
    let ids: Vec<_> = view.nodes.iter().map(|n| (n.node.id.as_str(), n.alive)).collect();
    assert_eq!(ids, [("n1", true), ("n2", true)]);
    leases.leave("n1").await.unwrap();
    let view = leases.view(Duration::from_secs(10)).await.unwrap();
    assert_eq!(view.nodes.len(), 1);
    drop(a);
    schema.drop().await;
}
