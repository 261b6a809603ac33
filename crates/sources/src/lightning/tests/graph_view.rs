//! One graph per source, combined on request; and the graph's byte encoding for snapshots.

use super::{hex_lines, sample};
use crate::lightning::decode;
use crate::lightning::graph::{Graph, GraphView, codec};

const T0: u32 = 1_700_000_000;

fn msgs(name: &str) -> Vec<crate::lightning::Gossip> {
    hex_lines(name).into_iter().map(|(_, m)| decode(&m).unwrap()).collect()
}

#[test]
fn graphs_of_several_sources_combine_as_if_one_had_seen_everything() {
    // out_of_order.hex: an announcement, then updates of direction 0 at T0+3, T0+1, T0+2.
    let ooo = msgs("generated/out_of_order.hex");
    let valid = msgs("generated/valid.hex");
    let scid = ooo[0].short_channel_id().unwrap();
    let (mut a, mut b, mut all) = (Graph::new(), Graph::new(), Graph::new());
    let fed_a: Vec<_> = ooo[..2].iter().map(|g| (g, T0 + 100)).collect();
    let mut fed_b: Vec<_> = std::iter::once(&ooo[0])
        .chain(&ooo[2..])
        .map(|g| (g, T0 + 50))
        .collect();
    fed_b.extend(valid.iter().map(|g| (g, T0)));
    for (g, seen) in &fed_a {
        a.apply(g, *seen);
    }
    for (g, seen) in &fed_b {
        b.apply(g, *seen);
    }
    for (g, seen) in fed_a.iter().chain(&fed_b) {
        all.apply(g, *seen);
    }
    // Each source's graph shows only what that source saw.
    assert_eq!(a.update_intervals(scid, 0), [(T0 + 3, None)]);
    assert_eq!(
        a.snapshot(T0 + 1000).channels.len(),
        1,
        "A never saw valid.hex's channel"
    );
    assert_eq!(b.snapshot(T0 + 1000).channels.len(), 2);
    // Combined, in either order: the graph of everything.
    for view in [GraphView::new(vec![&a, &b]), GraphView::new(vec![&b, &a])] {
        for at in [T0, T0 + 1, T0 + 2, T0 + 3, T0 + 1000] {
            assert_eq!(view.snapshot(at), all.snapshot(at), "at {at}");
            assert_eq!(view.snapshot_raw(at), all.snapshot_raw(at), "at {at}");
            assert_eq!(view.channel(scid, at), all.channel(scid, at));
        }
        assert_eq!(view.diff(T0, T0 + 1000), all.diff(T0, T0 + 1000));
        assert_eq!(view.counts(), all.counts());
        let node = all.snapshot(T0 + 1000).nodes[0].announcement.node_id;
        assert_eq!(view.node(&node, T0 + 1000), all.node(&node, T0 + 1000));
        assert!(GraphView::new(vec![&a]).node(&node, T0 + 1000).is_none());
    }
    // The earliest sighting counts: B saw the announcement at T0+50, A at T0+100.
    let opened = GraphView::new(vec![&a, &b]).channel(scid, T0 + 1000).unwrap().opened_at;
    assert_eq!(opened, Some(T0 + 1));
    assert!(GraphView::new(vec![]).snapshot(T0).channels.is_empty());
}

#[test]
fn graph_encoding_round_trips_and_refuses_damage() {
    let mut g = Graph::new();
    for m in sample() {
        g.apply(&decode(&m).unwrap(), T0);
    }
    for m in msgs("generated/out_of_order.hex") {
        g.apply(&m, T0 + 7);
    }
    g.set_capacity(crate::lightning::ShortChannelId(12345), 99);
    let mut bytes = Vec::new();
    codec::encode(&g, &mut bytes);
    let back = codec::decode(&bytes).unwrap();
    assert_eq!(back, g);
    assert_eq!(back.snapshot(T0 + 10), g.snapshot(T0 + 10));
    let mut again = Vec::new();
    codec::encode(&back, &mut again);
    assert_eq!(again, bytes, "deterministic");
    // Every truncation, and trailing bytes, fail with a reason instead of panicking.
    for cut in (0..bytes.len()).step_by(97) {
        assert!(codec::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(codec::decode(&long).unwrap_err().contains("left after"));
    // A length field claiming 4 GiB is refused before anything is allocated for it.
    let mut lying = 1u32.to_be_bytes().to_vec();
    lying.extend_from_slice(&[0; 8]);
    lying.push(1);
    lying.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(
        codec::decode(&lying)
            .unwrap_err()
            .contains("longer than any gossip message")
    );
}
