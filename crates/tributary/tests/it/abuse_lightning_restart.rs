//! Abuse regression tests (issue 7, item 14) for the Lightning source across restarts, on the running
//! binary: updates waiting for their announcement survive a graceful stop and a SIGKILL, and a restart
//! reads only the log after the graph snapshot and the known channels.

use crate::BIN;
use crate::abuse_lightning::{count, fixture, health_ok, hex_msgs, import, store_record};
use std::io::Write;
use std::time::Duration;
use tributary_core::Log;
use tributary_sources::lightning::{Graph, decode, known};
use tributary_testkit::{TestNode, wait_until};

const T: Duration = Duration::from_secs(30);

/// How a test stops the node.
#[derive(Clone, Copy)]
enum Stop {
    Graceful,
    Kill,
}

fn stop(node: &mut TestNode, how: Stop) {
    match how {
        Stop::Graceful => assert_eq!(node.terminate(), Some(0)),
        Stop::Kill => node.kill(),
    }
}

/// Item 14: updates waiting for their announcement survive a restart (bounded by
/// `max_waiting_updates`; the oldest beyond it became a problem at once), and are verified when the
/// announcement comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_lightning_waiting_updates_survive_a_restart() {
    waiting_updates_survive(Stop::Graceful).await;
}

/// The same after a SIGKILL: the kept queue is written with each batch and its checkpoint, so a killed
/// node loses no waiting update and turns none into a problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_lightning_waiting_updates_survive_a_sigkill() {
    waiting_updates_survive(Stop::Kill).await;
}

async fn waiting_updates_survive(how: Stop) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gossip_store");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&[0x0c]).unwrap();
    let ooo = hex_msgs("generated/out_of_order.hex");
    for m in &ooo[1..] {
        f.write_all(&store_record(m, 1_700_000_002)).unwrap();
    }
    f.flush().unwrap();
    let config = format!(
        "[[sources]]\nname = \"ln\"\ntype = \"lightning\"\npoll_interval_ms = 20\nmax_waiting_updates = 2\ngossip_store = {:?}\n",
        path.display().to_string()
    );
    let mut node = TestNode::start(BIN, &config);
    let end = format!("{}:", std::fs::metadata(&path).unwrap().len());
    assert!(
        wait_until(T, || async {
            let (_, s) = node.get("/v1/sources/ln").await;
            s["checkpoints"][0]["position"]
                .as_str()
                .is_some_and(|p| p.starts_with(&end))
        })
        .await
    );
    let problems = "kind=ln.problem.*";
    assert_eq!(
        count(&node, problems).await,
        1,
        "one update over max_waiting_updates = 2"
    );
    stop(&mut node, how);
    node.spawn();
    assert!(health_ok(&node).await);
    assert_eq!(
        count(&node, problems).await,
        1,
        "the restart turned no waiting update into a problem"
    );
    f.write_all(&store_record(&ooo[0], 1_700_000_003)).unwrap();
    f.flush().unwrap();
    assert!(
        wait_until(T, || async { count(&node, "kind=ln.channel_update").await == 2 }).await,
        "the two kept updates are verified once their announcement arrives"
    );
    assert_eq!(count(&node, problems).await, 1);
    // A second restart with nothing waiting keeps nothing stale.
    stop(&mut node, how);
    node.spawn();
    assert!(health_ok(&node).await);
    assert_eq!(count(&node, problems).await, 1);
    assert_eq!(count(&node, "kind=ln.channel_update").await, 2);
}

/// Item 14: a restart restores the graph from its snapshot and reads only the log after it (proved with
/// a snapshot that holds a channel the log never had), falls back to the whole log when the snapshot is
/// damaged or from another store, and the sources learn known channels from the meta entries (proved
/// with a channel known only there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_lightning_restart_reads_the_snapshot_not_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let gossip = dir.path().join("gossip_store");
    std::fs::write(&gossip, [0x0c]).unwrap();
    let config = format!(
        "[[sources]]\nname = \"ln\"\ntype = \"lightning\"\npoll_interval_ms = 20\ngossip_store = {:?}\n",
        gossip.display().to_string()
    );
    let mut node = TestNode::start(BIN, &config);
    assert!(health_ok(&node).await);
    assert_eq!(node.terminate(), Some(0));
    assert_eq!(
        import(&node, "ln", &fixture("cln_gossip_store_sample.hex"))["accepted"],
        138
    );
    assert_eq!(import(&node, "ln", &fixture("generated/valid.hex"))["accepted"], 6);
    node.spawn();
    let (_, before) = node.get("/v1/lightning/graph").await;
    let open = before["channels"].as_array().unwrap().len();
    assert!(open > 30, "{open}");
    let announcements = count(&node, "kind=ln.channel_announcement").await;
    assert_eq!(node.terminate(), Some(0));

    let data = node.dir.path().join("data");
    let snap_path = tributary_sources::lightning::keeper::snapshot::path_in(&data);
    let snap = tributary_sources::lightning::keeper::snapshot::load(&snap_path)
        .unwrap()
        .expect("written at shutdown");
    assert!(snap.seq >= 138 + 6, "covers the log: {}", snap.seq);
    // The known channels are in meta entries, up to the same position.
    let ooo = hex_msgs("generated/out_of_order.hex");
    {
        let store = tributary_store::FjallStore::open(&data).unwrap();
        let progress = store.get_meta(known::KNOWN_CHANNELS_KEY).await.unwrap().unwrap();
        let (seq, chunks) = known::parse_progress(&progress).unwrap();
        assert_eq!(seq, snap.seq);
        let mut all = Vec::new();
        for (_, text) in store.meta_prefix(known::KNOWN_CHUNK_PREFIX).await.unwrap() {
            all.extend(known::decode_chunk(&text).unwrap());
        }
        assert_eq!(all.len(), announcements, "every announcement of the log");
        // Doctor them: a channel whose announcement was never stored, known only here.
        let Ok(tributary_sources::lightning::Gossip::ChannelAnnouncement(a)) = decode(&ooo[0]) else {
            panic!("an announcement");
        };
        let extra = known::KnownChannel {
            chain_hash: a.chain_hash,
            short_channel_id: a.short_channel_id,
            node_ids: [a.node_id_1, a.node_id_2],
        };
        store
            .put_meta(&known::chunk_key(chunks), &known::encode_chunk(&[extra]))
            .await
            .unwrap();
        store
            .put_meta(known::KNOWN_CHANNELS_KEY, &known::render_progress(seq, chunks + 1))
            .await
            .unwrap();
    }
    // Doctor the snapshot the same way: the graph gets a channel (800000x3x0) the log never had.
    let mut graphs = snap.sources;
    let (g, problems) = graphs.remove("ln").unwrap();
    let mut doctored: Graph = g;
    // Its announcement and the update at T0+3 only: the updates at T0+1 and T0+2 come from the log.
    for m in &ooo[..2] {
        doctored.apply(&decode(m).unwrap(), 1_700_000_000);
    }
    let sources = std::collections::BTreeMap::from([("ln".to_owned(), (&doctored, &problems))]);
    tributary_sources::lightning::keeper::snapshot::write(&snap_path, &sources, snap.seq, snap.id).unwrap();
    // The updates of 800000x3x0 arrive, without their announcement.
    let mut f = std::fs::OpenOptions::new().append(true).open(&gossip).unwrap();
    for m in &ooo[1..] {
        f.write_all(&store_record(m, 1_700_000_005)).unwrap();
    }
    f.flush().unwrap();
    node.spawn();
    let (s, c) = node.get("/v1/lightning/channels/800000x3x0").await;
    assert_eq!(
        s, 200,
        "the graph came from the snapshot, not from the log before it: {c}"
    );
    assert!(
        wait_until(T, || async {
            node.get("/v1/events?kind=ln.channel_update&limit=1000").await.1["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["key"] == "800000x3x0")
                .count()
                == 3
        })
        .await,
        "the updates verified against the channel known only from the meta entries"
    );
    let problems = node.get("/v1/lightning/problems").await.1;
    assert_eq!(problems["problems"].as_array().unwrap().len(), 1, "{problems}");
    // The log after the snapshot is applied on top of it: the update at T0+1 is in force at T0+1.
    let (_, c) = node.get("/v1/lightning/channels/800000x3x0?at=1700000001").await;
    assert_eq!(c["updates"][0]["valid_from"], 1_700_000_001, "{c}");
    assert_eq!(node.terminate(), Some(0));

    // A damaged snapshot, then one from another store: reported, and the graph comes from the log.
    let good = std::fs::read(&snap_path).unwrap();
    let mut damaged = good.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0xff;
    std::fs::write(&snap_path, &damaged).unwrap();
    node.spawn();
    assert!(health_ok(&node).await);
    let (_, after) = node.get("/v1/lightning/graph").await;
    // 800000x3x0's updates are in the log, its announcement is not: not in the graph.
    assert_eq!(
        after["channels"].as_array().unwrap().len(),
        open,
        "rebuilt from the whole log"
    );
    assert_eq!(node.get("/v1/lightning/channels/800000x3x0").await.0, 404);
    assert_eq!(node.terminate(), Some(0));
    let other = tributary_sources::lightning::keeper::snapshot::load(&snap_path)
        .unwrap()
        .unwrap();
    let sources: std::collections::BTreeMap<String, (&Graph, &std::collections::BTreeMap<String, u64>)> =
        other.sources.iter().map(|(k, (g, p))| (k.clone(), (g, p))).collect();
    tributary_sources::lightning::keeper::snapshot::write(
        &snap_path,
        &sources,
        other.seq,
        Some(tributary_core::EventId([7; 32])),
    )
    .unwrap();
    node.spawn();
    assert!(health_ok(&node).await);
    assert_eq!(
        node.get("/v1/lightning/graph").await.1["channels"]
            .as_array()
            .unwrap()
            .len(),
        open
    );
}
