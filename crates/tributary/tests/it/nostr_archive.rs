//! The `nostr` source against real relays (nostr-rs-relay and PyPI nostr-relay) with events signed here:
//! one event served by two relays is one event with two observations; a restart downloads nothing again;
//! a relay capping its answers below the asked limit, and reading `until` as exclusive, loses nothing; relays named by a kind 10002 list are
//! discovered and archived; a misbehaving relay written here (tampered content, forged signatures, wrong
//! ids, invalid JSON, oversized events, NOTICE, CLOSED, slow answers) gets every bad event refused with
//! its reason while the archive of the good relay goes on.

use crate::nostr_peer::{Kind, Relay, author, note, now, publish};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tributary_sources::nostr::NostrEvent;
use tributary_testkit::{TestNode, wait_until};

const T: Duration = Duration::from_secs(120);

fn source(relays: &[&str], extra: &str) -> String {
    let list: Vec<String> = relays.iter().map(|r| format!("{r:?}")).collect();
    format!(
        "[[sources]]\nname = \"nostr\"\ntype = \"nostr\"\nrelays = [{}]\nallow_private_networks = true\nrequest_timeout_ms = 5000\n{extra}\n",
        list.join(", ")
    )
}

/// Every stored event of the source, by id.
async fn stored(node: &TestNode) -> std::collections::HashMap<String, Value> {
    let mut out = std::collections::HashMap::new();
    let mut after = 0;
    loop {
        let (_, page) = node
            .get(&format!("/v1/events?source=nostr&limit=1000&after={after}"))
            .await;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        for e in &events {
            out.insert(e["id"].as_str().unwrap_or_default().to_owned(), e.clone());
        }
        let next = page["next_after"].as_u64().unwrap_or(after);
        if events.is_empty() || next == after {
            return out;
        }
        after = next;
    }
}

async fn has_all(node: &TestNode, want: &HashSet<String>) -> bool {
    let have = stored(node).await;
    want.iter().all(|id| have.contains_key(id))
}

/// The source's view, for a failure's message.
async fn view(node: &TestNode) -> Value {
    node.get("/v1/sources/nostr").await.1
}

async fn observers(node: &TestNode, id: &str) -> Vec<String> {
    let (_, e) = node.get(&format!("/v1/events/{id}")).await;
    let mut o: Vec<String> = (e["observations"].as_array().cloned().unwrap_or_default())
        .iter()
        .map(|o| o["observer"].as_str().unwrap_or_default().to_owned())
        .collect();
    o.sort();
    o
}

async fn part(node: &TestNode, relay: &str) -> Value {
    let (_, s) = node.get("/v1/sources/nostr").await;
    s["parts"][relay].clone()
}

fn ids(events: &[NostrEvent]) -> HashSet<String> {
    events.iter().map(|e| hex::encode(e.id)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_relays_give_one_event_two_observations_and_a_restart_downloads_nothing_again() {
    let (rs, py) = tokio::join!(Relay::start(Kind::Rs, None), Relay::start(Kind::Py, None));
    let alice = author(1);
    let base = now() - 7200;
    let both: Vec<NostrEvent> = (0..30).map(|i| note(&alice, base + i, &format!("both {i}"))).collect();
    let only_rs: Vec<NostrEvent> = (0..10)
        .map(|i| note(&alice, base + 100 + i, &format!("rs {i}")))
        .collect();
    let only_py: Vec<NostrEvent> = (0..10)
        .map(|i| note(&alice, base + 200 + i, &format!("py {i}")))
        .collect();
    publish(&rs.url, &[both.clone(), only_rs.clone()].concat()).await;
    publish(&py.url, &[both.clone(), only_py.clone()].concat()).await;

    // A small window limit makes the walk split and ask again on both relays.
    let mut node = TestNode::start(crate::BIN, &source(&[&rs.url, &py.url], "req_limit = 4"));
    let all: HashSet<String> = [ids(&both), ids(&only_rs), ids(&only_py)]
        .into_iter()
        .flatten()
        .collect();
    if !wait_until(T, || has_all(&node, &all)).await {
        let have = stored(&node).await;
        let missing: Vec<String> = [&both, &only_rs, &only_py]
            .iter()
            .flat_map(|l| l.iter())
            .filter(|e| !have.contains_key(&hex::encode(e.id)))
            .map(|e| format!("{} at {}", e.content, e.created_at - base))
            .collect();
        panic!(
            "not every event was archived: missing {missing:?}; {}",
            view(&node).await
        );
    }
    let have = stored(&node).await;
    assert_eq!(have.len(), 50, "only the events published");
    let e = &have[&hex::encode(both[0].id)];
    assert_eq!(e["kind"], "nostr.1");
    assert_eq!(e["key"], hex::encode(alice.pubkey));
    assert_eq!(e["data"], both[0].to_json());
    let mut two = vec![rs.url.clone(), py.url.clone()];
    two.sort();
    for ev in &both {
        assert_eq!(observers(&node, &hex::encode(ev.id)).await, two);
    }
    assert_eq!(
        observers(&node, &hex::encode(only_rs[0].id)).await,
        vec![rs.url.clone()]
    );
    assert_eq!(
        observers(&node, &hex::encode(only_py[0].id)).await,
        vec![py.url.clone()]
    );
    for url in [&rs.url, &py.url] {
        assert!(wait_until(T, || async { part(&node, url).await["state"] == "live" }).await);
        let p = part(&node, url).await;
        assert!(p["windows"].as_u64().unwrap() > 3, "{p}");
        assert_eq!(p["rejected"], json!({}), "{p}");
    }

    // A restart resumes every relay from its cursor: nothing is asked for, or received, again.
    node.terminate();
    node.spawn();
    for url in [&rs.url, &py.url] {
        assert!(wait_until(T, || async { part(&node, url).await["state"] == "live" }).await);
        let p = part(&node, url).await;
        assert_eq!(
            (p["events"].as_u64(), p["duplicates"].as_u64()),
            (Some(0), Some(0)),
            "{url}: {p}"
        );
    }
    // Live: an event published now reaches the archive through the open subscription.
    let fresh = note(&alice, now(), "live");
    publish(&rs.url, std::slice::from_ref(&fresh)).await;
    let want = ids(std::slice::from_ref(&fresh));
    assert!(
        wait_until(T, || has_all(&node, &want)).await,
        "the live event was not archived"
    );
    assert_eq!(stored(&node).await.len(), 51);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_relay_capping_its_answers_below_the_limit_loses_nothing() {
    // nostr-relay returns at most 7 events per REQ; the source asks for 20.
    let py = Relay::start(Kind::Py, Some(7)).await;
    let bob = author(2);
    let base = now() - 86_400;
    // 150 events over 100 seconds, up to three in one second.
    let events: Vec<NostrEvent> = (0..150)
        .map(|i| note(&bob, base + (i * 2 / 3), &format!("n {i}")))
        .collect();
    publish(&py.url, &events).await;
    let node = TestNode::start(crate::BIN, &source(&[&py.url], "req_limit = 20"));
    let want = ids(&events);
    assert!(
        wait_until(T, || has_all(&node, &want)).await,
        "a capped relay lost events: {}",
        view(&node).await
    );
    assert!(wait_until(T, || async { part(&node, &py.url).await["state"] == "live" }).await);
    let p = part(&node, &py.url).await;
    assert_eq!(p["events"], 150, "{p}");
    assert_eq!(p["saturated_seconds"], json!([]), "{p}");
    // nostr-relay reads `until` as exclusive (created_at < until): the probe found it, the walk widened it.
    assert_eq!(
        p["bounds"],
        json!({"since_exclusive": false, "until_exclusive": true}),
        "{p}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn relays_named_by_a_kind_10002_list_are_discovered_and_archived() {
    let (rs, py) = tokio::join!(Relay::start(Kind::Rs, None), Relay::start(Kind::Py, None));
    let carol = author(3);
    let t = now() - 600;
    let list = carol.sign(10002, t, vec![vec!["r".into(), py.url.clone()]], String::new());
    publish(&rs.url, std::slice::from_ref(&list)).await;
    let notes: Vec<NostrEvent> = (0..5).map(|i| note(&carol, t + i, &format!("on py {i}"))).collect();
    publish(&py.url, &notes).await;

    let node = TestNode::start(crate::BIN, &source(&[&rs.url], "discover = true"));
    let want = ids(&notes);
    assert!(
        wait_until(T, || has_all(&node, &want)).await,
        "the relay of the kind 10002 list was not archived"
    );
    assert_eq!(observers(&node, &hex::encode(notes[0].id)).await, vec![py.url.clone()]);
    let (_, s) = node.get("/v1/sources/nostr").await;
    assert_eq!(s["parts"]["relays"]["discovered"], 1, "{s}");
}

/// What the misbehaving relay sends for the first window of each connection.
fn bad_answers(sub: &str, good: &NostrEvent, max_event_bytes: usize) -> (Vec<Message>, HashSet<String>) {
    let mallory = author(9);
    let t = good.created_at;
    let mut tampered = mallory.sign(1, t, vec![], "original".into());
    tampered.content = "changed".into();
    let mut forged = mallory.sign(1, t, vec![], "forged".into());
    forged.sig = author(8).sign(1, t, vec![], "other".into()).sig;
    let mut wrong_id = mallory.sign(1, t, vec![], "wrong id".into());
    wrong_id.id = [0xab; 32];
    let big = mallory.sign(1, t, vec![], "x".repeat(max_event_bytes));
    let event = |e: &NostrEvent| Message::text(json!(["EVENT", sub, e.to_json()]).to_string());
    let refused = [&tampered, &forged, &wrong_id, &big]
        .iter()
        .map(|e| hex::encode(e.id))
        .collect();
    (
        vec![
            event(good),
            event(&tampered),
            event(&forged),
            event(&wrong_id),
            Message::text(format!(r#"["EVENT","{sub}",{{"id": nope"#)),
            Message::text(r#"["NOTICE","you are being rate limited"]"#),
            event(&big),
            Message::binary(vec![0u8, 1, 2]),
        ],
        refused,
    )
}

/// A relay written here: for the first window of a connection, a good event among bad ones and a slow
/// EOSE; the next window is CLOSED, which ends the session (the archive reconnects after a backoff).
async fn misbehaving_relay(good: NostrEvent, max_event_bytes: usize) -> (String, HashSet<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let (_, refused) = bad_answers("x", &good, max_event_bytes);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let good = good.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let mut windows = 0;
                while let Some(Ok(Message::Text(t))) = ws.next().await {
                    let v: Value = serde_json::from_str(&t).unwrap_or_default();
                    if v[0] != "REQ" {
                        continue;
                    }
                    let sub = v[1].as_str().unwrap_or_default().to_owned();
                    // The live subscription, and the archive's probe of the bounds: nothing held.
                    if sub == "live" || sub.starts_with("probe") {
                        let _ = ws.send(Message::text(json!(["EOSE", sub]).to_string())).await;
                        continue;
                    }
                    windows += 1;
                    if windows > 1 {
                        let _ = ws
                            .send(Message::text(
                                json!(["CLOSED", sub, "error: shutting down"]).to_string(),
                            ))
                            .await;
                        continue;
                    }
                    for m in bad_answers(&sub, &good, max_event_bytes).0 {
                        let _ = ws.send(m).await;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let _ = ws.send(Message::text(json!(["EOSE", sub]).to_string())).await;
                }
            });
        }
    });
    (url, refused)
}

async fn rejected(node: &TestNode) -> Vec<Value> {
    let (_, r) = node.get("/v1/sources/nostr/rejects?limit=1000").await;
    r["rejects"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misbehaving_relay_gets_every_bad_event_refused_and_the_archive_goes_on() {
    let rs = Relay::start(Kind::Rs, None).await;
    let dave = author(4);
    let t = now() - 3600;
    let good_notes: Vec<NostrEvent> = (0..20).map(|i| note(&dave, t + i, &format!("good {i}"))).collect();
    publish(&rs.url, &good_notes).await;
    let from_bad = note(&dave, t + 50, "served by the bad relay");
    let (bad_url, refused) = misbehaving_relay(from_bad.clone(), 4096).await;

    let node = TestNode::start(
        crate::BIN,
        &source(&[&rs.url, &bad_url], "max_event_bytes = 4096\nreq_limit = 5"),
    );
    let mut want = ids(&good_notes);
    want.insert(hex::encode(from_bad.id));
    assert!(
        wait_until(T, || has_all(&node, &want)).await,
        "the good events were not all archived: {}",
        view(&node).await
    );
    let reasons = ["id_mismatch", "bad_signature", "too_big", "garbage"];
    assert!(
        wait_until(T, || async {
            let r = rejected(&node).await;
            reasons.iter().all(|why| {
                r.iter()
                    .any(|x| x["reason"].as_str().unwrap_or_default().starts_with(why))
            })
        })
        .await,
        "{:?}",
        rejected(&node).await
    );
    for r in rejected(&node).await {
        assert_eq!(r["position"], bad_url, "{r}");
        assert!(r["reason"].as_str().unwrap().contains(&bad_url), "{r}");
    }
    let have = stored(&node).await;
    assert!(
        refused.iter().all(|id| !have.contains_key(id)),
        "a bad event was stored"
    );
    assert_eq!(have.len(), 21, "only the good events");
    // The bad relay's session failed on CLOSED and is retried: a problem of that relay, not of the source.
    assert!(
        wait_until(T, || async {
            let (_, s) = node.get("/v1/sources/nostr").await;
            s["problems"][&bad_url]
                .as_str()
                .is_some_and(|p| p.contains("shutting down"))
        })
        .await
    );
    let p = part(&node, &bad_url).await;
    assert!(p["notices"].as_u64().unwrap() >= 1, "{p}");
    assert!(wait_until(T, || async { part(&node, &rs.url).await["state"] == "live" }).await);
    // The bad relay's problem makes the source degraded, never failed.
    let (_, health) = node.get("/health").await;
    assert_eq!(health["sources"]["nostr"]["status"], "degraded", "{health}");
}

#[test]
fn the_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/nostr.example.toml");
    let out = std::process::Command::new(crate::BIN)
        .args(["validate", "--config", path])
        .output()
        .expect("run tributary validate");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
