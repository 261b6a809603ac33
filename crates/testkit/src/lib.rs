//! Test harness for tributary's integration tests.
//!
//! - [`TestNode`]: the real `tributary` binary on a temporary data directory, started with a config,
//!   stopped with SIGTERM or killed with SIGKILL, restarted on the same store.
//! - [`Receiver`]: a webhook endpoint that verifies signatures and answers as the test says
//!   (re-exported from `tributary_sinks::webhook::receiver`).
//! - [`wait_until`]: poll a condition with a deadline (never a bare sleep).
//! - [`compliance`]: the checks every sink type passes on the real binary and its real server;
//!   [`source_compliance`]: those every source type passes on the real binary and its real peer.
//! - [`kafka`]: a tansu broker on a free port ([`Tansu`]) and a confluent-kafka reader ([`kafka_read`]).
//! - [`postgres`]: a private PostgreSQL with `wal_level = logical` on a free port ([`PgServer`]).

pub mod compliance;

pub mod kafka;

pub use kafka::{Tansu, kafka_read, python};

pub mod postgres;
pub mod source_compliance;

pub use postgres::PgServer;
pub use tributary_sinks::webhook::receiver::{Received, Receiver, Reply};

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin key every test node uses.
pub const ADMIN_KEY: &str = "test-admin-key";

/// A `tributary run` child process.
pub struct TestNode {
    bin: PathBuf,
    /// The temporary directory holding the config and the data directory.
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    client: reqwest::Client,
}

impl TestNode {
    /// Writes `config_body` (everything but `[node]`) next to a `[node]` section on a fresh temporary store
    /// and starts the binary.
    pub fn start(bin: impl AsRef<Path>, config_body: &str) -> Self {
        Self::start_with_node(bin, "", config_body)
    }

    /// Like [`start`](Self::start), with `node_lines` (TOML lines such as `max_connections = 8`) added to
    /// the `[node]` section.
    pub fn start_with_node(bin: impl AsRef<Path>, node_lines: &str, config_body: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut node = Self {
            bin: bin.as_ref().to_owned(),
            dir,
            child: None,
            url: String::new(),
            client: reqwest::Client::new(),
        };
        let config = format!(
            "[node]\ndata_dir = {:?}\nlisten = \"127.0.0.1:0\"\nadmin_key = \"{ADMIN_KEY}\"\nshutdown_grace_ms = 5000\n{node_lines}\n\n{config_body}",
            node.dir.path().join("data").display().to_string()
        );
        std::fs::write(node.config_path(), config).expect("write config");
        node.spawn();
        node
    }

    /// The config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("tributary.toml")
    }

    /// Starts (again) on the same store and config.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "node already running");
        let mut child = Command::new(&self.bin)
            .arg("run")
            .arg("--config")
            .arg(self.config_path())
            .env(
                "TRIBUTARY_LOG",
                std::env::var("TRIBUTARY_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn tributary");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("tributary listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        self.url = url.to_owned();
        self.child = Some(child);
    }

    /// The process id of the running node.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// A `kB` line of `/proc/<pid>/status` (`VmHWM` is the peak resident memory, `VmRSS` the current),
    /// in bytes.
    pub fn memory(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        let line = status.lines().find(|l| l.starts_with(&format!("{field}:")))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// How many file descriptors the node has open.
    pub fn open_fds(&self) -> Option<usize> {
        Some(std::fs::read_dir(format!("/proc/{}/fd", self.pid()?)).ok()?.count())
    }

    /// SIGKILL: no chance to flush or commit anything.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill");
            c.wait().expect("wait");
        }
    }

    /// SIGTERM, then waits for the exit; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        self.signal("-TERM")
    }

    /// SIGINT (Ctrl-C), then waits for the exit; returns the exit code.
    pub fn interrupt(&mut self) -> Option<i32> {
        self.signal("-INT")
    }

    fn signal(&mut self, sig: &str) -> Option<i32> {
        let mut c = self.child.take()?;
        let pid = c.id().to_string();
        Command::new("kill").args([sig, &pid]).status().expect("send signal");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "node did not exit within 30 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// POSTs a JSON body to a source; returns status and parsed body.
    pub async fn post_events(&self, source: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self
            .client
            .post(format!("{}/v1/sources/{source}/events", self.url))
            .bearer_auth(ADMIN_KEY)
            .json(body)
            .send()
            .await
            .expect("post events");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }

    /// GET with the admin key; returns status and parsed body.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("get");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }

    /// POST with the admin key and no body.
    pub async fn post(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("post");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }

    /// A raw request builder against the node.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes; returns the last answer.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A webhook sink section for `[[subscriptions]]` pointing at `url` with `secret`.
pub fn webhook_sink(url: &str, secret: &str) -> String {
    format!(
        "[subscriptions.sink]\ntype = \"webhook\"\nurl = \"{url}\"\nsecret = \"{secret}\"\nallow_private_networks = true\n"
    )
}
