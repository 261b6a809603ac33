//! The store test binary: a proptest model of the [`Store`] semantics run against both backends
//! (with reopen for the embedded one), and behaviour tests shared by both backends (`behaviour`).

#[path = "model/behaviour.rs"]
mod behaviour;
#[path = "model/pg.rs"]
mod pg;

use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use tributary_core::store::{
    AppendBatch, AppendItem, AttemptOutcome, AttemptRecord, Checkpoint, DeadLetter, DeliveryUpdate, Pending,
    SubscriptionState,
};
use tributary_core::{EventId, NewEvent, Observation, Reject, Seq, Store, Timestamp};
use tributary_store::{FjallStore, MemoryStore};

const IDS: u8 = 10;
/// The source and subscription names a run uses: one is a prefix of the other, with a separator the
/// embedded store's key layout must keep apart (NUL; PostgreSQL's text cannot hold it, so its run uses
/// another control character).
struct Names {
    sources: [&'static str; 2],
    subs: [&'static str; 2],
}

const NAMES: Names = Names {
    sources: ["a", "a\0b"],
    subs: ["s", "s\0"],
};

const PG_NAMES: Names = Names {
    sources: ["a", "a\u{1}b"],
    subs: ["s", "s\u{1}"],
};
const OBSERVERS: [&str; 3] = ["", "relay-1", "relay-2"];

fn id(n: u8) -> EventId {
    EventId::sha256(&[n])
}

fn event(n: u8, variant: u8) -> NewEvent {
    NewEvent {
        id: id(n),
        kind: format!("test.k{variant}"),
        key: n.is_multiple_of(2).then(|| format!("key-{n}")),
        occurred_at: (variant % 2 == 1).then_some(Timestamp(i64::from(n) * 1_000)),
        position: Some(format!("line {n}")),
        payload: vec![n; usize::from(variant)],
        data: serde_json::json!({ "n": n, "variant": variant, "nested": { "s": "x\u{e9}" } }),
        tenant: None,
        retracts: (variant == 3).then(|| id(n.wrapping_add(1))),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Append {
        source: usize,
        observer: usize,
        events: Vec<(u8, u8)>,
        rejects: u8,
        checkpoint: Option<(u8, u16)>,
        /// Meta changes written with the batch: key index, new value or removal.
        meta: Vec<(u8, Option<u16>)>,
    },
    Deliver {
        sub: usize,
        cursor: Option<u16>,
        paused: Option<bool>,
        attempts: Vec<(u8, u8)>,
        pending_put: Vec<u8>,
        pending_remove: Vec<u8>,
        dead: Vec<u8>,
        dead_remove: Vec<u8>,
    },
    PutMeta(u8, u16),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let seqs = || prop::collection::vec(1u8..12, 0..3);
    prop_oneof![
        5 => (
            0..2usize,
            0..OBSERVERS.len(),
            prop::collection::vec((0..IDS, 0u8..4), 0..6),
            0u8..3,
            prop::option::of((0u8..3, any::<u16>())),
            prop::collection::vec((0u8..3, prop::option::of(any::<u16>())), 0..3),
        )
            .prop_map(|(source, observer, events, rejects, checkpoint, meta)| Op::Append {
                source,
                observer,
                events,
                rejects,
                checkpoint,
                meta,
            }),
        3 => (
            0..2usize,
            prop::option::of(any::<u16>()),
            prop::option::of(any::<bool>()),
            prop::collection::vec((1u8..12, 1u8..4), 0..3),
            (seqs(), seqs(), seqs(), seqs()),
        )
            .prop_map(|(sub, cursor, paused, attempts, (pp, pr, d, dr))| Op::Deliver {
                sub,
                cursor,
                paused,
                attempts,
                pending_put: pp,
                pending_remove: pr,
                dead: d,
                dead_remove: dr,
            }),
        1 => (0u8..3, any::<u16>()).prop_map(|(k, v)| Op::PutMeta(k, v)),
        1 => Just(Op::Reopen),
    ]
}

#[derive(Default)]
struct Sub {
    cursor: Seq,
    paused: bool,
    pending: BTreeMap<Seq, Pending>,
    attempts: BTreeMap<(Seq, u32), AttemptRecord>,
    dead: BTreeMap<Seq, DeadLetter>,
}

/// The reference: what every store must answer.
#[derive(Default)]
struct Model {
    events: Vec<(String, NewEvent)>,
    /// Ids are unique per source (ADR 0005).
    ids: HashMap<(String, EventId), Seq>,
    observations: BTreeMap<(String, EventId, String), Observation>,
    checkpoints: BTreeMap<(String, String), String>,
    rejects: HashMap<String, Vec<Reject>>,
    subs: HashMap<String, Sub>,
    meta: BTreeMap<String, String>,
}

impl Model {
    fn append(&mut self, b: &AppendBatch) -> Vec<AppendItem> {
        let mut items = Vec::new();
        for ev in &b.events {
            let key = (b.source.clone(), ev.id, b.observer.clone());
            if let Some(&seq) = self.ids.get(&(b.source.clone(), ev.id)) {
                let o = self.observations.entry(key).or_insert(Observation {
                    event_id: ev.id,
                    observer: b.observer.clone(),
                    first_seen: b.seen_at,
                    last_seen: b.seen_at,
                    count: 0,
                });
                o.last_seen = b.seen_at;
                o.count += 1;
                items.push(AppendItem::Duplicate(seq));
            } else {
                self.events.push((b.source.clone(), ev.clone()));
                let seq = self.events.len() as Seq;
                self.ids.insert((b.source.clone(), ev.id), seq);
                let o = Observation {
                    event_id: ev.id,
                    observer: b.observer.clone(),
                    first_seen: b.seen_at,
                    last_seen: b.seen_at,
                    count: 1,
                };
                self.observations.insert(key, o);
                items.push(AppendItem::Accepted(seq));
            }
        }
        let rejects = self.rejects.entry(b.source.clone()).or_default();
        rejects.extend(b.rejects.iter().cloned());
        if let Some(cp) = &b.checkpoint {
            let key = (b.source.clone(), cp.partition.clone());
            self.checkpoints.insert(key, cp.position.clone());
        }
        for (key, value) in &b.meta {
            match value {
                Some(v) => self.meta.insert(key.clone(), v.clone()),
                None => self.meta.remove(key),
            };
        }
        items
    }

    fn deliver(&mut self, sub: &str, u: &DeliveryUpdate) {
        let s = self.subs.entry(sub.to_owned()).or_default();
        s.cursor = u.cursor.unwrap_or(s.cursor);
        s.paused = u.paused.unwrap_or(s.paused);
        for a in &u.attempts {
            s.attempts.insert((a.seq, a.attempt), a.clone());
        }
        u.pending_remove.iter().for_each(|q| drop(s.pending.remove(q)));
        for p in &u.pending_put {
            s.pending.insert(p.seq, p.clone());
        }
        u.dead_remove.iter().for_each(|q| drop(s.dead.remove(q)));
        for d in &u.dead_letters {
            s.dead.insert(d.seq, d.clone());
        }
    }
}

fn update(op: &Op, t: Timestamp) -> DeliveryUpdate {
    let Op::Deliver {
        cursor,
        paused,
        attempts,
        pending_put,
        pending_remove,
        dead,
        dead_remove,
        ..
    } = op
    else {
        unreachable!("only called for deliveries")
    };
    DeliveryUpdate {
        cursor: cursor.map(Seq::from),
        paused: *paused,
        attempts: attempts
            .iter()
            .map(|&(seq, attempt)| AttemptRecord {
                seq: seq.into(),
                attempt: attempt.into(),
                at: t,
                outcome: AttemptOutcome::Retriable,
                status: Some(503),
                latency_us: u64::from(seq) * 7,
                error: Some(format!("attempt {attempt}")),
            })
            .collect(),
        pending_put: pending_put
            .iter()
            .map(|&seq| Pending {
                seq: seq.into(),
                key: seq.is_multiple_of(2).then(|| format!("k{seq}")),
                attempts: 1,
                due_at: t,
                prior_attempts: 0,
            })
            .collect(),
        pending_remove: pending_remove.iter().map(|&s| s.into()).collect(),
        dead_letters: dead
            .iter()
            .map(|&seq| DeadLetter {
                seq: seq.into(),
                event_id: id(seq),
                attempts: 3,
                last_status: None,
                error: "gone".into(),
                response_excerpt: Some("<html>".into()),
                dead_at: t,
            })
            .collect(),
        dead_remove: dead_remove.iter().map(|&s| s.into()).collect(),
        fence: None,
    }
}

/// Everything a store answers, compared with the model.
async fn check(store: &dyn Store, m: &Model, names: &Names) -> Result<(), TestCaseError> {
    let all = store.read_from(0, usize::MAX).await.unwrap();
    let got: Vec<_> = all.iter().map(|e| (e.source.clone(), e.event.clone())).collect();
    prop_assert_eq!(&got, &m.events);
    prop_assert!(all.iter().enumerate().all(|(i, e)| e.seq == i as Seq + 1));
    prop_assert_eq!(store.last_seq(), m.events.len() as Seq);
    prop_assert_eq!(*store.watch_seq().borrow(), m.events.len() as Seq);
    let tail = store.read_from(3, 2).await.unwrap();
    prop_assert_eq!(tail.len(), m.events.len().saturating_sub(2).min(2));
    for n in 0..IDS {
        for source in names.sources {
            let got = store.get(source, &id(n)).await.unwrap().map(|e| e.seq);
            prop_assert_eq!(got, m.ids.get(&(source.to_string(), id(n))).copied());
            let want: Vec<_> = m
                .observations
                .range((source.to_string(), id(n), String::new())..)
                .take_while(|((s, i, _), _)| s == source && *i == id(n))
                .map(|(_, o)| o.clone())
                .collect();
            prop_assert_eq!(store.observations(source, &id(n)).await.unwrap(), want);
        }
    }
    for source in names.sources {
        let want: Vec<_> = m
            .checkpoints
            .iter()
            .filter(|((s, _), _)| s == source)
            .map(|((_, p), v)| Checkpoint {
                partition: p.clone(),
                position: v.clone(),
            })
            .collect();
        prop_assert_eq!(store.checkpoints(source).await.unwrap(), want);
        let want = m.rejects.get(source).cloned().unwrap_or_default();
        prop_assert_eq!(&store.rejects(source, 1000).await.unwrap(), &want);
        let newest = store.rejects(source, 1).await.unwrap();
        prop_assert_eq!(newest.as_slice(), &want[want.len().saturating_sub(1)..]);
    }
    for sub in names.subs {
        let empty = Sub::default();
        let s = m.subs.get(sub).unwrap_or(&empty);
        let want = SubscriptionState {
            cursor: s.cursor,
            paused: s.paused,
            pending: s.pending.values().cloned().collect(),
        };
        prop_assert_eq!(store.subscription_state(sub).await.unwrap(), want);
        let dead: Vec<_> = s.dead.values().cloned().collect();
        prop_assert_eq!(&store.dead_letters(sub, 0, usize::MAX).await.unwrap(), &dead);
        let from5: Vec<_> = s.dead.range(5..).take(2).map(|(_, d)| d.clone()).collect();
        prop_assert_eq!(store.dead_letters(sub, 5, 2).await.unwrap(), from5);
        for seq in 1..12 {
            let want = s.attempts.range((seq, 0)..=(seq, u32::MAX));
            let want: Vec<_> = want.map(|(_, a)| a.clone()).collect();
            prop_assert_eq!(store.attempts(sub, seq).await.unwrap(), want);
        }
    }
    for k in 0..3 {
        let key = format!("key{k}");
        prop_assert_eq!(store.get_meta(&key).await.unwrap(), m.meta.get(&key).cloned());
    }
    Ok(())
}

async fn apply(store: &dyn Store, m: &mut Model, op: &Op, t: Timestamp, names: &Names) -> Result<(), TestCaseError> {
    match op {
        Op::Append {
            source,
            observer,
            events,
            rejects,
            checkpoint,
            meta,
        } => {
            let batch = AppendBatch {
                source: names.sources[*source].into(),
                observer: OBSERVERS[*observer].into(),
                seen_at: t,
                events: events.iter().map(|&(n, v)| event(n, v)).collect(),
                rejects: (0..*rejects)
                    .map(|i| Reject {
                        position: format!("line {}", t.0 + i64::from(i)),
                        reason: "bad".into(),
                        excerpt: "{".into(),
                        at: t,
                    })
                    .collect(),
                checkpoint: checkpoint.map(|(p, pos)| Checkpoint {
                    partition: ["", "p/1", "p"][usize::from(p)].into(),
                    position: pos.to_string(),
                }),
                meta: meta
                    .iter()
                    .map(|(k, v)| (format!("key{k}"), v.map(|v| v.to_string())))
                    .collect(),
                fence: None,
            };
            let got = store.append(batch.clone()).await.unwrap();
            prop_assert_eq!(got.items, m.append(&batch));
        }
        Op::Deliver { sub, .. } => {
            let u = update(op, t);
            store.commit_delivery(names.subs[*sub], u.clone()).await.unwrap();
            m.deliver(names.subs[*sub], &u);
        }
        Op::PutMeta(k, v) => {
            let (key, value) = (format!("key{k}"), v.to_string());
            store.put_meta(&key, &value).await.unwrap();
            m.meta.insert(key, value);
        }
        Op::Reopen => {}
    }
    Ok(())
}

fn open(dir: &Path) -> Arc<FjallStore> {
    Arc::new(FjallStore::open(dir).unwrap())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut fjall = Some(open(dir.path()));
        let memory = MemoryStore::new();
        let (mut fm, mut mm) = (Model::default(), Model::default());
        for (i, op) in ops.iter().enumerate() {
            let t = Timestamp(1_700_000_000_000_000 + i as i64);
            if let Op::Reopen = op {
                drop(fjall.take());
                fjall = Some(open(dir.path()));
            }
            let store = fjall.as_deref().unwrap();
            apply(store, &mut fm, op, t, &NAMES).await?;
            check(store, &fm, &NAMES).await?;
            apply(&memory, &mut mm, op, t, &NAMES).await?;
            check(&memory, &mm, &NAMES).await?;
        }
        Ok(())
    })
}

/// The same model over the PostgreSQL backend, in a schema of its own per case (reopened on `Reopen`).
fn run_pg(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = pg::Schema::new().await;
        let mut store = Some(db.open().await);
        let mut model = Model::default();
        for (i, op) in ops.iter().enumerate() {
            let t = Timestamp(1_700_000_000_000_000 + i as i64);
            if let Op::Reopen = op {
                drop(store.take());
                store = Some(db.open().await);
            }
            let s = store.as_ref().unwrap();
            apply(s, &mut model, op, t, &PG_NAMES).await?;
            check(s, &model, &PG_NAMES).await?;
        }
        drop(store);
        db.drop().await;
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn stores_follow_the_model(ops in prop::collection::vec(op(), 1..32)) {
        run(ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn the_postgres_store_follows_the_model(ops in prop::collection::vec(op(), 1..32)) {
        run_pg(ops)?;
    }
}
