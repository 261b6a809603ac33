//! The source compliance kit (`tributary_testkit::source_compliance`, ADR 0006) run for every source
//! type on its real peer: `file` (a file appended to), `http` (events posted to the node), `postgres`
//! (rows inserted into a private PostgreSQL), `evm` (Transfer logs on anvil), `lightning` (validly signed
//! gossip appended to a `gossip_store`).

use crate::BIN;
use serde_json::json;
use std::io::Write;
use tributary_testkit::source_compliance::{SourceCase, check_source};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_source_passes_the_compliance_kit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    std::fs::File::create(&path).unwrap();
    let case = SourceCase {
        type_name: "file",
        source: format!(
            "type = \"file\"\npath = {:?}\npoll_interval_ms = 20",
            path.display().to_string()
        ),
        per_feed: 200,
    };
    check_source(BIN, &case, |_, round| {
        let path = path.clone();
        async move {
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            for i in 0..200 {
                writeln!(
                    f,
                    "{}",
                    json!({"kind": "compliance.file", "data": {"round": round, "i": i}})
                )
                .unwrap();
            }
            f.flush().unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_source_passes_the_compliance_kit() {
    let case = SourceCase {
        type_name: "http",
        source: "type = \"http\"".into(),
        per_feed: 200,
    };
    check_source(BIN, &case, |node_url, round| async move {
        let events: Vec<_> = (0..200)
            .map(|i| json!({"kind": "compliance.http", "data": {"round": round, "i": i}}))
            .collect();
        let r = reqwest::Client::new()
            .post(format!("{node_url}/v1/sources/compliance/events"))
            .bearer_auth(tributary_testkit::ADMIN_KEY)
            .json(&events)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap_or_default());
    })
    .await;
}

#[cfg(feature = "postgres-source")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_source_passes_the_compliance_kit() {
    // `snapshot = true`: rows committed before the source made its slot are read by the snapshot, those
    // after by the stream, each once (the first input may come before the slot exists).
    let pg = tributary_testkit::PgServer::start();
    let db = crate::pg_cdc::connect(&pg).await;
    db.batch_execute("CREATE TABLE items (id bigint PRIMARY KEY, note text)")
        .await
        .unwrap();
    let case = SourceCase {
        type_name: "postgres",
        source: format!(
            "type = \"postgres\"\nurl = {:?}\nslot = \"tributary_compliance\"\npublication = \"tributary_compliance\"\ntables = [\"public.items\"]\nsnapshot = true\nstatus_interval_ms = 200\nreconnect_max_ms = 500",
            pg.url("postgres")
        ),
        per_feed: 200,
    };
    let db = std::sync::Arc::new(db);
    check_source(BIN, &case, |_, round| {
        let db = db.clone();
        async move {
            let from = round as i64 * 200;
            db.execute(
                "INSERT INTO items SELECT n, 'row ' || n FROM generate_series($1::bigint, $2::bigint) AS n",
                &[&from, &(from + 199)],
            )
            .await
            .unwrap();
        }
    })
    .await;
}

#[cfg(feature = "evm")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_source_passes_the_compliance_kit() {
    use crate::evm_peer::{Kind, Peer, TRANSFER, TRANSFER_ABI};
    let anvil = Peer::start(Kind::Anvil).await;
    let contract = anvil.deploy().await;
    let case = SourceCase {
        type_name: "evm",
        source: format!(
            "type = \"evm\"\nchain_id = 31337\nrpc = [{:?}]\nfrom_block = 0\nconfirmations = 0\naddresses = [\"{contract}\"]\ntopics = [[\"{TRANSFER}\"]]\nabi = [\"{TRANSFER_ABI}\"]\nallow_private_networks = true\npoll_interval_ms = 50",
            anvil.url
        ),
        per_feed: 100,
    };
    let anvil = std::sync::Arc::new(anvil);
    check_source(BIN, &case, |_, _| {
        let (anvil, contract) = (anvil.clone(), contract.clone());
        async move {
            // 100 Transfer logs in four transactions (one block each).
            for _ in 0..4 {
                anvil.spray(&contract, 25).await;
            }
        }
    })
    .await;
}

#[cfg(feature = "lightning")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightning_source_passes_the_compliance_kit() {
    use tributary_sources::lightning::formats::crc32c;
    use tributary_sources::lightning::generate;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gossip_store");
    // Core Lightning's store: a version byte, then records appended as gossip arrives.
    std::fs::write(&path, [0x0c]).unwrap();
    let case = SourceCase {
        type_name: "lightning",
        source: format!(
            "type = \"lightning\"\ngossip_store = {:?}\npoll_interval_ms = 20",
            path.display().to_string()
        ),
        per_feed: 100,
    };
    check_source(BIN, &case, |_, round| {
        let path = path.clone();
        async move {
            // 25 validly signed channels, each an announcement and three updates: 100 distinct events.
            let messages = generate::channels(round as u32 * 25, 25, 3);
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            for (i, msg) in messages.iter().enumerate() {
                let ts = 1_700_000_000 + i as u32;
                let mut record = Vec::with_capacity(12 + msg.len());
                record.extend_from_slice(&0u16.to_be_bytes());
                record.extend_from_slice(&(msg.len() as u16).to_be_bytes());
                record.extend_from_slice(&crc32c(ts, msg).to_be_bytes());
                record.extend_from_slice(&ts.to_be_bytes());
                record.extend_from_slice(msg);
                f.write_all(&record).unwrap();
            }
            f.flush().unwrap();
        }
    })
    .await;
}
