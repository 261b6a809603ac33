//! Configuration of the `file` source.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[[sources]] type = "file"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// Unique source name.
    pub name: String,
    /// Tenants that may read this source's events (`["*"]` for every tenant). Default: none (admin only).
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Report the source as stalled in `/health` when it stores nothing for this long (ms). Default: never.
    #[serde(default)]
    pub stall_after_ms: Option<u64>,
    /// The newline-delimited JSON file to follow.
    pub path: PathBuf,
    /// Lines per atomic append. Default 1,000.
    #[serde(default = "default_batch")]
    pub batch_lines: usize,
    /// How often to look for new lines at the end of the file, in milliseconds. Default 200.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
}

fn default_batch() -> usize {
    1000
}
fn default_poll_ms() -> u64 {
    200
}

impl FileSourceConfig {
    /// How long to wait at end of file.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms.max(1))
    }

    /// Problems with this config, as (field, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        if self.path.as_os_str().is_empty() {
            errors.push(("path".into(), "expected a file path".into()));
        }
        if self.batch_lines == 0 {
            errors.push(("batch_lines".into(), "expected a positive number".into()));
        }
        errors
    }
}
