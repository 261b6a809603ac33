//! Configuration of the `file` source.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[[sources]] type = "file"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// The newline-delimited JSON file to follow.
    pub path: PathBuf,
    /// Lines per atomic append. Default 1,000.
    #[serde(default = "default_batch")]
    pub batch_lines: usize,
    /// How often to look for new lines at the end of the file, in milliseconds. Default 200.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// Longest line read, in bytes (without its newline). A longer line is skipped without being held in
    /// memory and kept as a reject. Default 1 MiB ([`DEFAULT_MAX_LINE_BYTES`]), at most 64 MiB.
    #[serde(default = "default_max_line")]
    pub max_line_bytes: usize,
    /// Largest event `data` in bytes (as compact JSON). A larger one is a reject. Default 256 KiB
    /// ([`DEFAULT_MAX_EVENT_BYTES`]), at most 16 MiB.
    #[serde(default = "default_max_event")]
    pub max_event_bytes: usize,
}

/// Default of `max_line_bytes`: 1 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// Upper bound of `max_line_bytes`: 64 MiB.
pub const MAX_LINE_BYTES: usize = 64 << 20;
/// Default of `max_event_bytes`: 256 KiB.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 << 10;
/// Upper bound of `max_event_bytes`: 16 MiB.
pub const MAX_EVENT_BYTES: usize = 16 << 20;
/// Upper bound of `batch_lines`.
pub const MAX_BATCH_LINES: usize = 100_000;

fn default_max_line() -> usize {
    DEFAULT_MAX_LINE_BYTES
}
fn default_max_event() -> usize {
    DEFAULT_MAX_EVENT_BYTES
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
        if self.batch_lines == 0 || self.batch_lines > MAX_BATCH_LINES {
            errors.push((
                "batch_lines".into(),
                format!("expected 1 to {MAX_BATCH_LINES}, got {}", self.batch_lines),
            ));
        }
        if !(1..=MAX_LINE_BYTES).contains(&self.max_line_bytes) {
            errors.push((
                "max_line_bytes".into(),
                format!("expected 1 to {MAX_LINE_BYTES} (64 MiB), got {}", self.max_line_bytes),
            ));
        }
        if !(1..=MAX_EVENT_BYTES).contains(&self.max_event_bytes) {
            errors.push((
                "max_event_bytes".into(),
                format!("expected 1 to {MAX_EVENT_BYTES} (16 MiB), got {}", self.max_event_bytes),
            ));
        }
        errors
    }
}
