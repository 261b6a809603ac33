//! The file source: bad lines are kept with their line number and never stop it; a partial last line waits;
//! a restart resumes from the checkpoint without re-ingesting.

use crate::{BIN, SECRET};
use std::io::Write;
use std::time::Duration;
use tributary_testkit::{Receiver, TestNode, wait_until};

const T: Duration = Duration::from_secs(20);

fn config(path: &std::path::Path, url: &str) -> String {
    format!(
        "[[sources]]\nname = \"tail\"\ntype = \"file\"\npath = {:?}\npoll_interval_ms = 20\n\n[[subscriptions]]\nname = \"hook\"\n{}",
        path.display().to_string(),
        tributary_testkit::webhook_sink(url, SECRET)
    )
}

async fn event_count(node: &TestNode) -> usize {
    node.get("/v1/events?after=0&limit=1000").await.1["events"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_partial_lines_and_restart() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, r#"{{"kind":"f.e","data":{{"n":1}}}}"#).unwrap();
    writeln!(f, "this is not json").unwrap();
    writeln!(f).unwrap();
    writeln!(f, r#"{{"kind":"f.e"}}"#).unwrap();
    writeln!(f, r#"{{"kind":"f.e","data":{{"n":2}}}}"#).unwrap();
    write!(f, r#"{{"kind":"f.e","data":{{"n":3}}"#).unwrap(); // no newline yet
    f.flush().unwrap();
    let mut node = TestNode::start(BIN, &config(&path, &rx.url()));
    assert!(wait_until(T, || async { event_count(&node).await == 2 }).await);
    let (_, rejects) = node.get("/v1/sources/tail/rejects").await;
    let rejects = rejects["rejects"].as_array().unwrap().clone();
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    assert_eq!(rejects[0]["position"], "line 2");
    assert!(rejects[0]["reason"].as_str().unwrap().contains("not valid JSON"));
    assert_eq!(rejects[1]["position"], "line 4");
    assert!(
        rejects[1]["reason"]
            .as_str()
            .unwrap()
            .contains("data: missing required field")
    );
    // The partial line completes.
    writeln!(f, "}}").unwrap();
    f.flush().unwrap();
    assert!(wait_until(T, || async { event_count(&node).await == 3 }).await);
    let (_, sources) = node.get("/v1/sources").await;
    let position = sources["sources"][0]["checkpoints"][0]["position"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(position.ends_with(":6"), "six lines consumed, got {position}");
    // Restart: nothing is read twice (an observation count of 1 proves it: a re-read would add one).
    assert_eq!(node.terminate(), Some(0));
    node.spawn();
    writeln!(f, r#"{{"kind":"f.e","data":{{"n":4}}}}"#).unwrap();
    f.flush().unwrap();
    assert!(wait_until(T, || async { event_count(&node).await == 4 }).await);
    let (_, list) = node.get("/v1/events?after=0&limit=10").await;
    for e in list["events"].as_array().unwrap() {
        let (_, full) = node.get(&format!("/v1/events/{}", e["id"].as_str().unwrap())).await;
        assert_eq!(full["observations"][0]["count"], 1, "event re-ingested: {full}");
    }
    assert_eq!(
        node.get("/v1/sources/tail/rejects").await.1["rejects"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(rx.wait_for(T, |r| r.len() == 4).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_by_rename_is_followed() {
    let rx = Receiver::start(Some(SECRET.into()), true).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let mut f = std::fs::File::create(&path).unwrap();
    for n in 0..3 {
        writeln!(f, r#"{{"kind":"f.e","data":{{"old":{n}}}}}"#).unwrap();
    }
    let node = TestNode::start(BIN, &config(&path, &rx.url()));
    assert!(wait_until(T, || async { event_count(&node).await == 3 }).await);
    // Rotate: one more line in the old file, rename it, and start a new, longer file at the path.
    writeln!(f, r#"{{"kind":"f.e","data":{{"old":3}}}}"#).unwrap();
    std::fs::rename(&path, dir.path().join("events.ndjson.1")).unwrap();
    let mut g = std::fs::File::create(&path).unwrap();
    for n in 0..5 {
        writeln!(g, r#"{{"kind":"f.e","data":{{"new":{n}}}}}"#).unwrap();
    }
    assert!(
        wait_until(T, || async { event_count(&node).await == 9 }).await,
        "old file finished and new file read from its start"
    );
    let (_, sources) = node.get("/v1/sources").await;
    assert_eq!(
        sources["sources"][0]["checkpoints"][0]["position"],
        format!("{}:5", std::fs::metadata(&path).unwrap().len())
    );
}
