//! Nostr test peers: nostr-rs-relay (cargo-installed by `./scripts/peers.sh`, `~/.cargo/bin` or
//! `TRIBUTARY_NOSTR_RS_RELAY`) and PyPI nostr-relay (in the repository's `.venv`, from
//! `./scripts/python-env.sh`), each started on a free loopback port with a database of its own and killed
//! when dropped; a small client that publishes signed events and waits for each `OK`.

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tributary_sources::nostr::NostrEvent;
use tributary_sources::nostr::sign::Keys;

/// Which relay implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// nostr-rs-relay (Rust, SQLite).
    Rs,
    /// PyPI nostr-relay (Python, SQLite through SQLAlchemy).
    Py,
}

/// A running relay.
pub struct Relay {
    child: Child,
    _dir: tempfile::TempDir,
    /// `ws://127.0.0.1:PORT`, the relay's normal form.
    pub url: String,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Runs `script` from `scripts/` when `path` is missing, and panics saying what is missing if it still is.
fn ensure(path: &std::path::Path, script: &str) {
    if path.exists() {
        return;
    }
    let script = repo().join("scripts").join(script);
    let status = Command::new("bash").arg(&script).stdout(Stdio::null()).status();
    assert!(
        status.is_ok_and(|s| s.success()) && path.exists(),
        "{} is missing and {} did not install it",
        path.display(),
        script.display()
    );
}

fn rs_bin() -> PathBuf {
    let bin = std::env::var_os("TRIBUTARY_NOSTR_RS_RELAY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("CARGO_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cargo"));
            home.join("bin/nostr-rs-relay")
        });
    ensure(&bin, "peers.sh");
    bin
}

fn py_bin() -> PathBuf {
    let bin = repo().join(".venv/bin/nostr-relay");
    ensure(&bin, "python-env.sh");
    bin
}

impl Relay {
    /// Starts a relay of `kind`; `max_limit` caps the events it returns per REQ (Py only; Rs: none).
    pub async fn start(kind: Kind, max_limit: Option<u32>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let url = format!("ws://127.0.0.1:{port}");
        let mut cmd = match kind {
            Kind::Rs => {
                let config = dir.path().join("config.toml");
                std::fs::write(
                    &config,
                    format!(
                        "[info]\nrelay_url = \"{url}\"\nname = \"tributary test relay\"\ndescription = \"nostr-rs-relay for the nostr source tests\"\n\
                         [database]\ndata_directory = {:?}\n[network]\naddress = \"127.0.0.1\"\nport = {port}\n\
                         [options]\nreject_future_seconds = 1800\n",
                        dir.path().display().to_string()
                    ),
                )
                .expect("write relay config");
                let mut c = Command::new(rs_bin());
                c.arg("-c").arg(&config);
                c
            }
            Kind::Py => {
                let config = dir.path().join("config.yaml");
                // Its default `is_recent` validator refuses old created_at: the archive tests publish history.
                std::fs::write(
                    &config,
                    format!(
                        "DEBUG: false\nrelay_name: tributary test relay\nrelay_description: nostr-relay for the nostr source tests\n\
                         storage:\n  sqlalchemy.url: sqlite+aiosqlite:///{}/nostr.sqlite3\n  validators:\n    - nostr_relay.validators.is_not_too_large\n    - nostr_relay.validators.is_signed\n\
                         gunicorn:\n  bind: 127.0.0.1:{port}\n  workers: 1\n  loglevel: warning\n  reload: false\n\
                         authentication:\n  enabled: false\nmessage_timeout: 1800\nsubscription_limit: 32\nmax_limit: {}\n",
                        dir.path().display(),
                        max_limit.unwrap_or(6000)
                    ),
                )
                .expect("write relay config");
                let mut c = Command::new(py_bin());
                c.arg("-c").arg(&config).arg("serve").current_dir(dir.path());
                c
            }
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {kind:?}: {e}"));
        let mut relay = Self { child, _dir: dir, url };
        let deadline = Instant::now() + Duration::from_secs(60);
        while query(&relay.url, json!({"limit": 1})).await.is_err() {
            if let Ok(Some(status)) = relay.child.try_wait() {
                panic!("{kind:?} exited at start ({status}); run it by hand to see why");
            }
            assert!(Instant::now() < deadline, "{kind:?} did not answer a REQ within 60 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        relay
    }
}

/// The keys of test author `n`.
pub fn author(n: u8) -> Keys {
    Keys::from_secret(&[n.max(1); 32]).expect("a valid key")
}

/// A kind-1 note of `keys` at `created_at`.
pub fn note(keys: &Keys, created_at: u64, content: &str) -> NostrEvent {
    keys.sign(1, created_at, vec![], content.to_owned())
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Publishes `events` to the relay at `url`, waiting for an accepting `OK` for each.
pub async fn publish(url: &str, events: &[NostrEvent]) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    for chunk in events.chunks(50) {
        for e in chunk {
            ws.send(Message::text(json!(["EVENT", e.to_json()]).to_string()))
                .await
                .expect("send EVENT");
        }
        let mut waiting: std::collections::HashSet<String> = chunk.iter().map(|e| hex::encode(e.id)).collect();
        while !waiting.is_empty() {
            let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await
                .unwrap_or_else(|_| panic!("{url}: no OK within 30 s"))
                .expect("connection open")
                .expect("a message");
            let Message::Text(t) = m else { continue };
            let v: Value = serde_json::from_str(&t).expect("JSON");
            if v[0] == "OK" {
                assert!(
                    v[2] == true || v[3].as_str().is_some_and(|s| s.starts_with("duplicate")),
                    "{url} refused: {v}"
                );
                waiting.remove(v[1].as_str().unwrap_or_default());
            }
        }
    }
    let _ = ws.close(None).await;
}

/// The events the relay at `url` answers `filter` with (until EOSE).
pub async fn query(url: &str, filter: Value) -> Result<Vec<Value>, String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.map_err(|e| e.to_string())?;
    ws.send(Message::text(json!(["REQ", "q", filter]).to_string()))
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .map_err(|_| "no EOSE within 10 s".to_owned())?
            .ok_or("closed")?
            .map_err(|e| e.to_string())?;
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
        match v[0].as_str() {
            Some("EVENT") => out.push(v[2].clone()),
            Some("EOSE") => break,
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    Ok(out)
}
