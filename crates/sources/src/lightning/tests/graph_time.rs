//! The graph in time, on signed generated messages and on the real sample.

use super::{hex_lines, sample};
use crate::lightning::formats::{Format, read_all};
use crate::lightning::graph::{Applied, Graph};
use crate::lightning::{Gossip, ShortChannelId, decode, wire};

const T0: u32 = 1_700_000_000;

/// The out-of-order fixture: an announcement, then updates of direction 0 at T0+3, T0+1, T0+2 (their fee
/// base is 3, 1, 2).
fn out_of_order() -> (Gossip, Vec<Gossip>) {
    let mut msgs: Vec<Gossip> = hex_lines("generated/out_of_order.hex")
        .into_iter()
        .map(|(_, m)| decode(&m).unwrap())
        .collect();
    let ca = msgs.remove(0);
    (ca, msgs)
}

fn fee_at(g: &Graph, scid: ShortChannelId, at: u32) -> Option<u32> {
    g.channel(scid, at)?.updates[0].as_ref().map(|d| d.update.fee_base_msat)
}

#[test]
fn updates_at_3_1_2_give_intervals_1_2_3_in_every_arrival_order() {
    let (ca, updates) = out_of_order();
    let scid = ca.short_channel_id().unwrap();
    let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    let mut snapshots = Vec::new();
    for order in orders {
        let mut g = Graph::new();
        assert_eq!(g.apply(&ca, T0 + 100), Applied::Inserted);
        for i in order {
            assert_eq!(g.apply(&updates[i], T0 + 100), Applied::Inserted);
        }
        assert_eq!(
            g.update_intervals(scid, 0),
            [(T0 + 1, Some(T0 + 2)), (T0 + 2, Some(T0 + 3)), (T0 + 3, None)]
        );
        assert_eq!(fee_at(&g, scid, T0 + 1), Some(1));
        assert_eq!(fee_at(&g, scid, T0 + 2), Some(2));
        assert_eq!(fee_at(&g, scid, T0 + 3), Some(3));
        assert_eq!(fee_at(&g, scid, u32::MAX), Some(3));
        let d = g.channel(scid, T0 + 2).unwrap().updates[0].clone().unwrap();
        assert_eq!((d.valid_from, d.valid_until), (T0 + 2, Some(T0 + 3)));
        assert_eq!(g.apply(&updates[0], T0 + 200), Applied::Duplicate);
        snapshots.push((g.snapshot(T0 + 2), g.snapshot_raw(T0 + 2)));
    }
    assert!(snapshots.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn a_channel_opens_at_its_first_sight_or_first_update_and_closes_when_dying() {
    let (ca, updates) = out_of_order();
    let scid = ca.short_channel_id().unwrap();
    let mut g = Graph::new();
    g.apply(&ca, T0 + 100);
    assert!(g.snapshot(T0 + 50).channels.is_empty(), "seen at T0+100, no update yet");
    assert_eq!(g.snapshot(T0 + 100).channels.len(), 1);
    for u in &updates {
        g.apply(u, T0 + 100);
    }
    assert!(g.snapshot(T0).channels.is_empty());
    let s = g.snapshot(T0 + 1);
    assert_eq!(s.channels.len(), 1, "the first update's own timestamp opens it");
    assert_eq!(s.channels[0].opened_at, Some(T0 + 1));
    assert!(s.channels[0].updates[1].is_none());

    let dying = Gossip::ChannelDying {
        short_channel_id: scid,
        blockheight: 800_012,
    };
    assert_eq!(g.apply(&dying, T0 + 500), Applied::Closed);
    assert_eq!(g.snapshot(T0 + 499).channels.len(), 1);
    assert!(g.snapshot(T0 + 500).channels.is_empty());
    let closed = g.channel(scid, T0 + 600).unwrap();
    assert!(!closed.open);
    assert_eq!(closed.closed_at, Some(T0 + 500));

    let d = g.diff(T0 + 1, T0 + 3);
    assert!(d.channels_opened.is_empty() && d.channels_closed.is_empty());
    assert_eq!(d.updates_changed.len(), 1);
    assert_eq!(
        (d.updates_changed[0].from_timestamp, d.updates_changed[0].to_timestamp),
        (Some(T0 + 1), Some(T0 + 3))
    );
    assert_eq!(g.diff(T0, T0 + 1).channels_opened, [scid]);
    assert_eq!(g.diff(T0 + 499, T0 + 500).channels_closed, [scid]);
}

#[test]
fn capacity_comes_from_the_amount_record_right_after_the_announcement() {
    let (ca, _) = out_of_order();
    let scid = ca.short_channel_id().unwrap();
    let mut g = Graph::new();
    g.apply(&ca, T0);
    assert_eq!(g.apply(&Gossip::ChannelAmount { satoshis: 5 }, T0), Applied::Capacity);
    assert_eq!(g.apply(&Gossip::ChannelAmount { satoshis: 9 }, T0), Applied::Skipped);
    assert_eq!(g.channel(scid, T0).unwrap().capacity_sat, Some(5));
}

#[test]
fn valid_fixture_snapshot_has_nodes_and_raw_snapshot_is_canonical() {
    let mut g = Graph::new();
    let msgs: Vec<Vec<u8>> = hex_lines("generated/valid.hex").into_iter().map(|(_, m)| m).collect();
    for m in &msgs {
        g.apply(&decode(m).unwrap(), T0);
    }
    let s = g.snapshot(T0 + 1000);
    assert_eq!(s.channels.len(), 1);
    assert_eq!(s.nodes.len(), 2);
    let c = &s.channels[0];
    // Direction 0 had a legacy update at T0+22 after the one at T0+20: the later one wins.
    assert_eq!(c.updates[0].as_ref().unwrap().valid_from, T0 + 22);
    assert_eq!(c.updates[1].as_ref().unwrap().valid_from, T0 + 21);
    let node = g.node(&s.nodes[0].announcement.node_id, T0 + 1000).unwrap();
    assert_eq!(node.announcement.alias, "tributary-a");
    assert!(g.node(&s.nodes[0].announcement.node_id, T0).is_none());

    let raw = g.snapshot_raw(T0 + 1000);
    let (records, errors, _) = read_all(&raw, Format::Compact);
    assert!(errors.is_empty());
    let got: Vec<Vec<u8>> = records.iter().map(|r| r.msg.to_vec()).collect();
    assert_eq!(
        got,
        [&msgs[0], &msgs[5], &msgs[4], &msgs[1], &msgs[2]].map(|m| m.clone())
    );
    assert!(
        records
            .iter()
            .all(|r| r.framing == Some(crate::lightning::envelope::Framing::Canonical))
    );
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["channels"][0]["short_channel_id"], "800000x1x0");
}

#[test]
fn real_sample_graph() {
    let mut g = Graph::new();
    for m in sample() {
        g.apply(&decode(&m).unwrap(), T0);
    }
    let s = g.snapshot(T0);
    let announced = s.channels.len();
    assert_eq!(announced, 39, "39 distinct announced channels");
    assert!(
        s.channels
            .iter()
            .all(|c| c.capacity_sat.is_some() || c.short_channel_id.block() > 0)
    );
    let with_capacity = s.channels.iter().filter(|c| c.capacity_sat.is_some()).count();
    assert!(with_capacity >= 36, "{with_capacity}");
    let raw = g.snapshot_raw(T0);
    let (records, errors, _) = read_all(&raw, Format::Compact);
    assert!(errors.is_empty());
    let updates: usize = s.channels.iter().map(|c| c.updates.iter().flatten().count()).sum();
    assert_eq!(records.len(), announced + updates + s.nodes.len());
    assert!(records.iter().all(|r| wire::is_bolt7(r.msg_type())));
}
