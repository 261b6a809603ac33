//! Configuration of the `http` source.

use serde::{Deserialize, Serialize};

/// `[[sources]] type = "http"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// Unique source name; the route is `/v1/sources/{name}/events`.
    pub name: String,
    /// Tenants that may read this source's events (`["*"]` for every tenant). Default: none (admin only).
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Report the source as stalled in `/health` when it stores nothing for this long (ms). Default: never.
    #[serde(default)]
    pub stall_after_ms: Option<u64>,
    /// Largest accepted request body in bytes (larger ones get 413). Default 16 MiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

fn default_max_body() -> usize {
    16 * 1024 * 1024
}

impl HttpSourceConfig {
    /// Problems with this config, as (field, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        if self.max_body_bytes == 0 {
            return vec![("max_body_bytes".into(), "expected a positive number of bytes".into())];
        }
        Vec::new()
    }
}
