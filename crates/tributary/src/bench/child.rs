//! The node under test, as a child process of the bench.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The admin key of bench nodes.
pub const KEY: &str = "bench-admin-key";

/// A `tributary run` child on a temporary store.
pub struct ChildNode {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Keeps the store until the node is dropped.
    pub dir: tempfile::TempDir,
}

impl ChildNode {
    /// Starts `tributary run` with `[node]` on a temporary store plus `body` (sources, subscriptions).
    pub fn start(body: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        Self::start_in(dir, body)
    }

    /// Starts on an existing directory (its `data` store is reused).
    pub fn start_in(dir: tempfile::TempDir, body: &str) -> anyhow::Result<Self> {
        Self::start_in_with_node(dir, "", body)
    }

    /// [`ChildNode::start_in`] with `node_lines` added to `[node]` (another store, a node id).
    pub fn start_in_with_node(dir: tempfile::TempDir, node_lines: &str, body: &str) -> anyhow::Result<Self> {
        let config = format!(
            "[node]\ndata_dir = {:?}\nlisten = \"127.0.0.1:0\"\nadmin_key = \"{KEY}\"\n{node_lines}\n{body}",
            dir.path().join("data").display().to_string()
        );
        let path = dir.path().join("bench.toml");
        std::fs::write(&path, config)?;
        let exe = std::env::current_exe().context("cannot find the tributary binary")?;
        let mut child = Command::new(exe)
            .args(["run", "--config"])
            .arg(&path)
            .env("TRIBUTARY_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot start the node")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("tributary listening on ") else {
            bail!("the node did not start: {line:?}");
        };
        Ok(Self {
            url: url.to_owned(),
            child,
            dir,
        })
    }

    /// The node's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident and peak resident memory in bytes, from /proc.
    pub fn rss(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// SIGTERM and wait; returns the store directory for a restart.
    pub fn stop(mut self) -> anyhow::Result<tempfile::TempDir> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        self.child.wait()?;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir()?);
        Ok(dir)
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
