//! A private PostgreSQL server for tests: `initdb` in a temporary directory, `wal_level = logical`, a free
//! loopback port, trust authentication; stopped (immediately) when dropped. The machine's own server is
//! never touched. As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root).

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL: &str = "install PostgreSQL (apt-get install postgresql; ./scripts/peers.sh does this)";

/// A running private server.
pub struct PgServer {
    /// Holds the data directory, the socket and the log.
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The loopback port.
    pub port: u16,
    running: bool,
    /// More `-c name=value` settings.
    extra: String,
}

/// The newest server under /usr/lib/postgresql (Debian's layout), or `TRIBUTARY_PG_BIN`.
fn bin_dir() -> PathBuf {
    if let Ok(p) = std::env::var("TRIBUTARY_PG_BIN") {
        return p.into();
    }
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap_or_else(|e| panic!("no /usr/lib/postgresql ({e}): {INSTALL}"))
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let v = versions
        .last()
        .unwrap_or_else(|| panic!("no server under /usr/lib/postgresql: {INSTALL}"));
    PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a server program, as `postgres` when we are root.
fn run(bin: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let path = bin.join(program);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}: {INSTALL}", path.display()))
}

impl PgServer {
    /// Creates and starts a server on a free port of 127.0.0.1; waits (at most 60 s) until it accepts
    /// connections. Panics with the reason (and how to install PostgreSQL) when it cannot.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// Like [`start`](Self::start) with more server settings (`-c logical_decoding_work_mem=64kB`).
    pub fn start_with(extra: &str) -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("tributary-pg")
            .tempdir()
            .expect("temp dir");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cannot give {} to the postgres user", dir.path().display());
        }
        let data = dir.path().join("data");
        let out = run(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let mut server = Self {
            dir,
            bin,
            port,
            running: false,
            extra: extra.to_owned(),
        };
        server.resume();
        server
    }

    /// `postgres://postgres@127.0.0.1:PORT/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Starts the server again after [`stop`](Self::stop) (same data, same port).
    pub fn resume(&mut self) {
        assert!(!self.running, "server already running");
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-p {} -k {} -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 -c listen_addresses=127.0.0.1 -c fsync=off {}",
            self.port,
            self.dir.path().display(),
            self.extra
        );
        let out = run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8"),
                "-l",
                log.to_str().expect("utf-8"),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}; log: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not listen on port {} within 60 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.running = true;
    }

    /// Stops the server at once (`pg_ctl -m immediate`: like a crash, recovered at the next start).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        let data = self.dir.path().join("data");
        let _ = run(
            &self.bin,
            "pg_ctl",
            &["-D", data.to_str().expect("utf-8"), "-m", "immediate", "-w", "stop"],
        );
        self.running = false;
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}
