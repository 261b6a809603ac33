//! Configuration of the `nostr` source (issue 11): the keys as the issue spells them, and the archive's
//! tuning keys with their bounds.

use super::{NostrFilter, RelayUrl};
use serde::{Deserialize, Serialize, Serializer};
use std::path::PathBuf;
use std::time::Duration;

/// `[[sources]] type = "nostr"`: relays archived, with the filters asked of each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NostrSourceConfig {
    /// Relays always archived (`wss://…`, `ws://…`), in any spelling: each is kept in its normal form.
    #[serde(default)]
    pub relays: Vec<String>,
    /// Candidate relays, one URL a line (BigBrotr's `seed_relays.txt`); lines that are not relay URLs are
    /// counted by reason and shown in `/v1/sources`. Read when the source starts.
    #[serde(default)]
    pub seed_file: Option<PathBuf>,
    /// Learn relays from kind 10002 (NIP-65) and kind 3 relay lists and from relay hints of the events
    /// archived. Default false.
    #[serde(default)]
    pub discover: bool,
    /// NIP-01 filters asked of every relay. Default: one empty filter (every event).
    #[serde(default = "default_filters", serialize_with = "filters_json")]
    pub filters: Vec<NostrFilter>,
    /// The most relays connected at once (the connection budget): the configured relays first, then
    /// the seed file's, then discovered ones. 1 to [`MAX_RELAYS`]. Default 500.
    #[serde(default = "default_max_relays")]
    pub max_relays: usize,
    /// Largest event accepted, in bytes of its JSON; a larger one is a reject. 1 KiB to 16 MiB. Default
    /// 262,144.
    #[serde(default = "default_max_event_bytes")]
    pub max_event_bytes: usize,
    /// A SOCKS5 proxy (`socks5://host:port`) for `.onion` relays (and `.i2p`/`.loki` ones when the proxy
    /// reaches them). Without it those relays are listed but not connected.
    #[serde(default)]
    pub proxy: Option<String>,
    /// Allow relays on loopback, private and local addresses (a relay on this machine). Default false.
    #[serde(default)]
    pub allow_private_networks: bool,
    /// Events asked per `REQ` window; a window answered with this many is split. 1 to
    /// [`super::filter::MAX_LIMIT`]. Default 500.
    #[serde(default = "default_req_limit")]
    pub req_limit: u64,
    /// Longest wait for a relay to connect or to send the next message of an answer, in milliseconds.
    /// 100 to 600,000. Default 15,000.
    #[serde(default = "default_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Optional NIP-11 and NIP-66 checks of the relays.
    #[serde(default)]
    pub monitor: Option<MonitorConfig>,
}

/// `[sources.monitor]`: relay health checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Seconds between two checks of a relay. 60 to 604,800. Default 3,600.
    #[serde(default = "default_interval_s")]
    pub interval_s: u64,
    /// A file holding the monitor's secret key (`nsec1…` or 64 hex digits): sign and publish kind 30166
    /// and 10166 events.
    #[serde(default)]
    pub publish_key_file: Option<PathBuf>,
    /// Relays the announcements are published to.
    #[serde(default)]
    pub publish_relays: Vec<String>,
}

/// Upper bound of `max_relays`.
pub const MAX_RELAYS: usize = 10_000;
/// Upper bound of `relays` entries.
pub const MAX_LISTED_RELAYS: usize = 10_000;
/// Upper bound of `filters` entries.
pub const MAX_FILTERS: usize = 16;

fn default_filters() -> Vec<NostrFilter> {
    vec![NostrFilter::default()]
}
fn default_max_relays() -> usize {
    500
}
fn default_max_event_bytes() -> usize {
    262_144
}
fn default_req_limit() -> u64 {
    500
}
fn default_timeout_ms() -> u64 {
    15_000
}
fn default_interval_s() -> u64 {
    3600
}

fn filters_json<S: Serializer>(filters: &[NostrFilter], s: S) -> Result<S::Ok, S::Error> {
    let list: Vec<serde_json::Value> = filters.iter().map(NostrFilter::to_json).collect();
    list.serialize(s)
}

impl NostrSourceConfig {
    /// The wait for a connection or the next message of an answer.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The configured relays in their normal form (the invalid ones are config problems, see
    /// [`NostrSourceConfig::validate`]), each once, in order.
    pub fn relay_urls(&self) -> Vec<RelayUrl> {
        let mut seen = std::collections::BTreeSet::new();
        (self.relays.iter())
            .filter_map(|r| RelayUrl::parse(r, self.allow_private_networks).ok())
            .filter(|r| seen.insert(r.clone()))
            .collect()
    }

    /// Every problem, with its path relative to the source.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let mut err = |path: String, msg: String| errors.push((path, msg));
        if self.relays.is_empty() && self.seed_file.is_none() {
            err(
                "relays".into(),
                "expected at least one relay URL (relays = [\"wss://relay.example.com\"]) or a seed_file".into(),
            );
        }
        if self.relays.len() > MAX_LISTED_RELAYS {
            err(
                "relays".into(),
                format!("expected at most {MAX_LISTED_RELAYS} relays, got {}", self.relays.len()),
            );
        }
        for (i, r) in self.relays.iter().enumerate() {
            if let Err(e) = RelayUrl::parse(r, self.allow_private_networks) {
                err(format!("relays[{i}]"), e.to_string());
            }
        }
        if self.filters.is_empty() || self.filters.len() > MAX_FILTERS {
            err(
                "filters".into(),
                format!(
                    "expected 1 to {MAX_FILTERS} filters ([{{}}] for every event), got {}",
                    self.filters.len()
                ),
            );
        }
        for (i, f) in self.filters.iter().enumerate() {
            if f.limit.is_some() {
                err(
                    format!("filters[{i}].limit"),
                    "the archive sets the limit of each window itself (req_limit); remove limit".into(),
                );
            }
        }
        let mut range = |path: &str, v: u64, lo: u64, hi: u64| {
            if !(lo..=hi).contains(&v) {
                err(path.into(), format!("expected {lo} to {hi}, got {v}"));
            }
        };
        range("max_relays", self.max_relays as u64, 1, MAX_RELAYS as u64);
        range("max_event_bytes", self.max_event_bytes as u64, 1024, 16 << 20);
        range("req_limit", self.req_limit, 1, super::filter::MAX_LIMIT);
        range("request_timeout_ms", self.request_timeout_ms, 100, 600_000);
        if let Some(m) = &self.monitor {
            range("monitor.interval_s", m.interval_s, 60, 604_800);
        }
        if let Some(m) = &self.monitor {
            for (i, r) in m.publish_relays.iter().enumerate() {
                if let Err(e) = RelayUrl::parse(r, self.allow_private_networks) {
                    err(format!("monitor.publish_relays[{i}]"), e.to_string());
                }
            }
            if m.publish_key_file.is_some() && m.publish_relays.is_empty() {
                err(
                    "monitor.publish_relays".into(),
                    "publish_key_file is set: list the relays to publish the announcements to".into(),
                );
            }
        }
        if let Some(p) = &self.proxy
            && let Err(e) = super::socks::ProxyAddr::parse(p)
        {
            err("proxy".into(), e);
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> NostrSourceConfig {
        toml::from_str(toml_text).unwrap_or_else(|e| panic!("{toml_text}: {e}"))
    }

    #[test]
    fn the_issue_config_parses_and_validates() {
        let c = parse(
            r#"
            relays = ["wss://relay.damus.io", "wss://nos.lol"]
            seed_file = "relays.txt"
            discover = true
            filters = [{ kinds = [0, 1, 3, 10002] }]
            max_relays = 500
            max_event_bytes = 262144
            proxy = "socks5://127.0.0.1:9050"
            allow_private_networks = false
            [monitor]
            interval_s = 3600
            publish_key_file = "monitor.nsec"
            publish_relays = ["wss://relay.nostr.watch"]
            "#,
        );
        assert_eq!(c.validate(), vec![]);
        assert_eq!(c.relay_urls().len(), 2);
        assert_eq!(c.filters[0].kinds.as_ref().map(|k| k.len()), Some(4));
        // It serialises (for `describe`) with the filters as NIP-01 JSON.
        let shown = serde_json::to_value(&c).unwrap();
        assert_eq!(shown["filters"], serde_json::json!([{"kinds": [0, 1, 3, 10002]}]));
    }

    #[test]
    fn problems_name_their_key() {
        let c = parse(
            r#"
            relays = ["https://relay.example.com", "ws://127.0.0.1:7777"]
            filters = [{ kinds = [1], limit = 5 }]
            max_relays = 0
            max_event_bytes = 10
            req_limit = 0
            proxy = "http://127.0.0.1:9050"
            [monitor]
            interval_s = 1
            publish_key_file = "k"
            "#,
        );
        let paths: Vec<String> = c.validate().into_iter().map(|(p, _)| p).collect();
        for want in [
            "relays[0]",
            "relays[1]",
            "filters[0].limit",
            "max_relays",
            "max_event_bytes",
            "req_limit",
            "proxy",
            "monitor.interval_s",
            "monitor.publish_relays",
        ] {
            assert!(paths.iter().any(|p| p == want), "{want} missing from {paths:?}");
        }
        let none = parse("filters = []");
        let paths: Vec<String> = none.validate().into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["relays", "filters"]);
        assert!(toml::from_str::<NostrSourceConfig>("relay = []").is_err());
    }
}
