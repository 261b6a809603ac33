//! The ingest pipeline on generated fixtures: events, problems, and updates waiting for their channel.

use super::hex_lines;
use crate::lightning::events::Origin;
use crate::lightning::{Network, Pipeline};

fn items(name: &str) -> Vec<(Vec<u8>, Origin)> {
    hex_lines(name)
        .into_iter()
        .enumerate()
        .map(|(i, (_, m))| {
            let origin = Origin {
                position: format!("line {i}"),
                timestamp: None,
            };
            (m, origin)
        })
        .collect()
}

fn kinds(out: &crate::lightning::pipeline::Output) -> Vec<String> {
    out.groups
        .iter()
        .flat_map(|g| g.events.iter().map(|e| e.kind.clone()))
        .collect()
}

#[test]
fn valid_messages_become_events_with_their_kinds() {
    let mut p = Pipeline::new(Network::Mainnet, true, 10);
    let out = p.process(items("generated/valid.hex"), "c1", tributary_core::Timestamp::now());
    assert!(out.rejects.is_empty(), "{:?}", out.rejects);
    let k = kinds(&out);
    assert_eq!(k[0], "ln.channel_announcement");
    assert_eq!(k.iter().filter(|k| *k == "ln.channel_update").count(), 3);
    let e = &out.groups[0].events[0];
    assert_eq!(e.key.as_deref(), Some("800000x1x0"));
    assert_eq!(e.id, crate::lightning::gossip_id(&e.payload).unwrap());
    assert_eq!(e.data["raw_hex"], hex::encode(&e.payload));
}

#[test]
fn tampered_and_other_chain_messages_are_problems_not_events() {
    for name in ["generated/tampered_signature.hex", "generated/other_chain.hex"] {
        let mut p = Pipeline::new(Network::Mainnet, true, 10);
        // Make the valid channel known, so that tampered updates are checked against it.
        p.process(items("generated/valid.hex"), "c1", tributary_core::Timestamp::now());
        let out = p.process(items(name), "c1", tributary_core::Timestamp::now());
        let flushed = p.flush_waiting();
        let k = kinds(&out);
        assert!(k.iter().all(|k| k.starts_with("ln.problem.")), "{name}: {k:?}");
        assert_eq!(out.rejects.len() + flushed.rejects.len(), items(name).len(), "{name}");
        let code = if name.contains("tampered") {
            "bad_signature"
        } else {
            "wrong_chain"
        };
        assert!(
            out.rejects.iter().all(|r| r.reason.starts_with(code)),
            "{name}: {:?}",
            out.rejects
        );
        let problem = &out.groups[0].events[0];
        assert_eq!(problem.data["reason"], code);
        assert_eq!(problem.data["collector"], "c1");
    }
}

#[test]
fn updates_before_their_announcement_wait_and_are_verified_when_it_arrives() {
    let all = items("generated/out_of_order.hex");
    let (announcement, updates) = all.split_first().unwrap();
    let mut p = Pipeline::new(Network::Mainnet, true, 10);
    let out = p.process(updates.to_vec(), "early", tributary_core::Timestamp::now());
    assert!(out.groups[0].events.is_empty() && out.rejects.is_empty());
    assert_eq!(p.stats.waiting, 3);
    let out = p.process(vec![announcement.clone()], "late", tributary_core::Timestamp::now());
    assert_eq!(
        out.groups.len(),
        2,
        "the released updates keep the observer that saw them"
    );
    assert_eq!(out.groups[0].observer, "late");
    assert_eq!(out.groups[1].observer, "early");
    assert_eq!(out.groups[1].events.len(), 3);
    assert_eq!(p.stats.released, 3);
    assert_eq!(p.stats.waiting, 0);
}

#[test]
fn the_waiting_queue_is_bounded_and_drops_the_oldest_as_a_problem() {
    let all = items("generated/out_of_order.hex");
    let mut p = Pipeline::new(Network::Mainnet, true, 2);
    let out = p.process(all[1..].to_vec(), "c", tributary_core::Timestamp::now());
    assert_eq!(out.rejects.len(), 1);
    assert!(
        out.rejects[0].reason.starts_with("unknown_channel"),
        "{:?}",
        out.rejects
    );
    assert_eq!(out.rejects[0].position, "line 1");
    assert_eq!(p.flush_waiting().rejects.len(), 2);
}
