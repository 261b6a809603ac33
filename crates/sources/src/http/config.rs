//! Configuration of the `http` source.

use crate::json_event::EventLimits;
use serde::{Deserialize, Serialize};

/// `[[sources]] type = "http"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// Largest accepted request body in bytes (larger ones get 413). Default 16 MiB; at most 1 GiB.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Most events in one request (more get 413). Default 10,000; at most 1,000,000.
    #[serde(default = "default_max_events")]
    pub max_events_per_request: usize,
    /// Longest `data` of one event, as JSON text in bytes (longer gets 413). Default 1 MiB; at most 1 GiB
    /// (a body is never larger than `max_body_bytes` anyway).
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
    /// Longest `key` of one event, in bytes (longer gets 413). Default 1,024; at most 65,536.
    #[serde(default = "default_max_key_bytes")]
    pub max_key_bytes: usize,
}

fn default_max_body() -> usize {
    16 * 1024 * 1024
}
fn default_max_events() -> usize {
    10_000
}
fn default_max_event_bytes() -> usize {
    1024 * 1024
}
fn default_max_key_bytes() -> usize {
    1024
}

impl HttpSourceConfig {
    /// Problems with this config, as (field, message).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut bound = |field: &str, value: usize, most: usize| {
            if !(1..=most).contains(&value) {
                out.push((field.to_owned(), format!("expected 1 to {most}, got {value}")));
            }
        };
        bound("max_body_bytes", self.max_body_bytes, 1024 * 1024 * 1024);
        bound("max_events_per_request", self.max_events_per_request, 1_000_000);
        bound("max_event_bytes", self.max_event_bytes, 1024 * 1024 * 1024);
        bound("max_key_bytes", self.max_key_bytes, 65_536);
        out
    }

    /// The limits on one request's events.
    pub fn event_limits(&self) -> EventLimits {
        EventLimits {
            max_events: self.max_events_per_request,
            max_data_bytes: self.max_event_bytes,
            max_key_bytes: self.max_key_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded() {
        let mut c: HttpSourceConfig = serde_json::from_str("{}").unwrap();
        assert!(c.validate().is_empty());
        assert_eq!(
            (c.max_events_per_request, c.max_event_bytes, c.max_key_bytes),
            (10_000, 1 << 20, 1024)
        );
        c.max_body_bytes = 200;
        assert!(
            c.validate().is_empty(),
            "a small body limit with the default data limit"
        );
        c.max_key_bytes = 70_000;
        c.max_events_per_request = 0;
        let problems = c.validate();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].0, "max_events_per_request");
        assert!(problems[1].1.contains("expected 1 to 65536, got 70000"), "{problems:?}");
    }
}
