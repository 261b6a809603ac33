//! A Kafka-protocol broker for tests: [tansu](https://crates.io/crates/tansu) with memory storage on a
//! free loopback port, killed when dropped; and [`kafka_read`], which reads a topic back with PyPI's
//! `confluent-kafka` (scripts/kafka_consume.py) as an independent consumer.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL: &str = "install it with `cargo install tansu --features dynostore --locked` (./scripts/peers.sh does this), or set TRIBUTARY_TANSU to its path";

/// A running `tansu broker` with memory storage.
pub struct Tansu {
    child: Child,
    /// `127.0.0.1:PORT`, for `brokers`.
    pub brokers: String,
}

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("TRIBUTARY_TANSU") {
        return p.into();
    }
    let cached = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|d| d.join("bin/tansu"));
    match cached {
        Some(p) if p.exists() => p,
        _ => "tansu".into(),
    }
}

/// Whether the tansu binary is there to start.
pub fn installed() -> bool {
    let bin = binary();
    bin.is_absolute() && bin.exists()
        || std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(&bin).exists()))
}

impl Tansu {
    /// Starts a broker on a free port of 127.0.0.1 and waits (at most 30 s) until it accepts connections.
    /// Panics, saying how to install it, when the binary is missing.
    pub fn start() -> Self {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let bin = binary();
        let child = Command::new(&bin)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/", "--cluster-id", "tributary-test"])
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start tansu ({}: {e}): {INSTALL}", bin.display()));
        let mut broker = Self {
            child,
            brokers: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!(
                    "tansu exited at start ({status}); run it by hand to see why: {} broker --listener-url {url}",
                    bin.display()
                );
            }
            assert!(Instant::now() < deadline, "tansu did not listen on {url} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    /// Kills the broker now (its memory storage is lost).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every record of `topic` as confluent-kafka reads it: `{"partitions": N, "records": [{"partition",
/// "offset", "key", "value", "headers": {..}}, ..]}`, or `None` while the topic does not exist.
/// `python` is the venv's interpreter (`TRIBUTARY_PYTHON`, from ./scripts/python-env.sh).
pub fn kafka_read(python: &str, brokers: &str, topic: &str) -> Option<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/kafka_consume.py");
    let out = Command::new(python)
        .args([script, brokers, topic])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} {script}: {e}; set TRIBUTARY_PYTHON=$(./scripts/python-env.sh)")
        });
    match out.status.code() {
        Some(0) => Some(serde_json::from_slice(&out.stdout).expect("kafka_consume.py prints JSON")),
        Some(2) => None,
        _ => panic!(
            "kafka_consume.py failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// The venv's Python with confluent-kafka: `TRIBUTARY_PYTHON`, else the repository's `.venv`; panics saying
/// how to make it when neither exists.
pub fn python() -> String {
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
    let p = std::env::var("TRIBUTARY_PYTHON").unwrap_or_else(|_| venv.to_owned());
    assert!(
        std::path::Path::new(&p).exists(),
        "{p} not found: run ./scripts/python-env.sh (it installs confluent-kafka into .venv), or set TRIBUTARY_PYTHON"
    );
    p
}
