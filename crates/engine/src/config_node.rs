//! `[node]`: where the node listens and keeps its store, its limits, and who it is among the nodes
//! sharing a PostgreSQL store.

use crate::config_store::StoreKind;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[node]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Where the embedded store keeps its files. Default `./data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The HTTP API's address. Default `127.0.0.1:8080`; port 0 picks a free one.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The admin API key (or env `TRIBUTARY_ADMIN_KEY`). Without it the API refuses every request.
    #[serde(default)]
    pub admin_key: Option<String>,
    /// How long in-flight deliveries may take to finish on shutdown, in milliseconds. Default 10,000.
    #[serde(default = "default_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// `"embedded"` (default), `"memory"`, or `{ type = "postgres", url = "...", schema = "..." }`.
    #[serde(default)]
    pub store: StoreKind,
    /// A client that has not sent a whole request head (request line and headers) this long after the
    /// connection opened or went idle is disconnected, in milliseconds. Default 10,000; 100 to 600,000.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Most connections the API serves at once; more wait in the listen backlog until one closes.
    /// Default 1,024; 1 to 65,536.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A token (at least 16 characters) that may read `/metrics` and the detailed `/health`, sent as
    /// `Authorization: Bearer <token>`, besides the admin key. Default: none (admin key only).
    #[serde(default)]
    pub metrics_token: Option<String>,
    /// Memory the ingest requests being served may hold together, in bytes: each request counts its
    /// body and its decoded events until it is answered; one that does not fit answers 429 with
    /// Retry-After (413 when it could never fit). Default 268,435,456 (256 MiB); 1 MiB to 64 GiB.
    #[serde(default = "default_max_ingest_in_flight_bytes")]
    pub max_ingest_in_flight_bytes: u64,
    /// This node's id among the nodes sharing a PostgreSQL store (docs/scale-out.md): 1 to 64 letters,
    /// digits and `-_.:`, unique among them. Default: the host name and the listen port.
    #[serde(default)]
    pub node_id: Option<String>,
    /// Where the other nodes and operators reach this node's API, shown by `GET /v1/cluster`.
    /// Default: `http://` and the listen address.
    #[serde(default)]
    pub advertise_url: Option<String>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}
fn default_grace_ms() -> u64 {
    10_000
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
fn default_max_connections() -> usize {
    1024
}
fn default_max_ingest_in_flight_bytes() -> u64 {
    256 * 1024 * 1024
}

/// Bounds of the `[node]` limits: (field, least, most).
pub const NODE_LIMITS: [(&str, u64, u64); 3] = [
    ("header_read_timeout_ms", 100, 600_000),
    ("max_connections", 1, 65_536),
    ("max_ingest_in_flight_bytes", 1024 * 1024, 64 * 1024 * 1024 * 1024),
];

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            listen: default_listen(),
            admin_key: None,
            shutdown_grace_ms: default_grace_ms(),
            store: StoreKind::default(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            max_connections: default_max_connections(),
            metrics_token: None,
            max_ingest_in_flight_bytes: default_max_ingest_in_flight_bytes(),
            node_id: None,
            advertise_url: None,
        }
    }
}

impl NodeConfig {
    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    /// The header-read timeout.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub(crate) fn limit_problems(&self) -> Vec<String> {
        let values = [
            self.header_read_timeout_ms,
            self.max_connections as u64,
            self.max_ingest_in_flight_bytes,
        ];
        let mut out = Vec::new();
        for ((field, least, most), value) in NODE_LIMITS.into_iter().zip(values) {
            if !(least..=most).contains(&value) {
                out.push(format!("node.{field}: expected {least} to {most}, got {value}"));
            }
        }
        if self.metrics_token.as_deref().is_some_and(|t| t.len() < 16) {
            out.push("node.metrics_token: expected at least 16 characters".into());
        }
        if let StoreKind::Postgres(pg) = &self.store {
            out.extend(crate::config_store::postgres_problems(pg));
        }
        if let Some(id) = &self.node_id {
            let valid =
                !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
            if !valid {
                out.push(format!(
                    "node.node_id: {id:?} is not a node id; use 1 to 64 letters, digits and - _ . :"
                ));
            }
        }
        if let Some(url) = &self.advertise_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            out.push(format!("node.advertise_url: {url:?} is not an http:// or https:// URL"));
        }
        out
    }
}
