//! Configuration of the `evm` source.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// `[[sources]] type = "evm"`: the logs of one chain from one or more providers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvmSourceConfig {
    /// The chain's id (`eth_chainId`); each provider is checked against it at start. Part of every event id.
    pub chain_id: u64,
    /// JSON-RPC providers of the chain (`http://`, `https://`, `ws://`, `wss://`), one to [`MAX_PROVIDERS`].
    /// They carry credentials: logs, errors and views show them masked ([`RpcUrl`]).
    pub rpc: Vec<RpcUrl>,
    /// Where to start when there is no checkpoint: a block number, `"latest"` or `"finalized"`. Default
    /// `"latest"`. Used once; afterwards the checkpoint rules.
    #[serde(default)]
    pub from_block: FromBlock,
    /// Deliver a log only once its block is this many blocks deep (0: at the head). At most
    /// [`MAX_CONFIRMATIONS`].
    #[serde(default)]
    pub confirmations: u64,
    /// Contracts to watch (0x + 40 hex digits). Empty: every contract.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Positional topic filters, as `eth_getLogs` takes them: `topics[i]` lists the accepted values of
    /// topic i (32-byte hex); an empty list accepts anything. At most 4 positions.
    #[serde(default)]
    pub topics: Vec<Vec<String>>,
    /// Human-readable ABI event entries (`"event Transfer(address indexed from, address indexed to,
    /// uint256 value)"`) used to decode logs into `event` and `args`.
    #[serde(default)]
    pub abi: Vec<String>,
    /// The starting block range of `eth_getLogs`; halved on a provider's limit errors, grown back to this.
    /// 1 to [`MAX_BLOCK_RANGE`]. Default 2,000.
    #[serde(default = "default_range")]
    pub max_block_range: u64,
    /// Recent block hashes kept to detect reorganisations; blocks this close to the head are read one by
    /// one. 1 to [`MAX_REORG_DEPTH`]. Default 128.
    #[serde(default = "default_reorg_depth")]
    pub reorg_depth: u64,
    /// Allow providers on loopback, private and link-local addresses (a local node). Default false.
    #[serde(default)]
    pub allow_private_networks: bool,
    /// How often to ask the provider for its head, in milliseconds. A WebSocket provider's `newHeads`
    /// wake the source at once in between; this polling is the fallback.
    /// 10 to 600,000. Default 1,000.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// Longest wait for one JSON-RPC answer, in milliseconds. 100 to 600,000. Default 30,000.
    #[serde(default = "default_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Largest JSON-RPC answer read, in bytes; a larger `eth_getLogs` answer halves the range. 1 KiB to
    /// 1 GiB. Default 64 MiB.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
}

/// Upper bound of `rpc` entries.
pub const MAX_PROVIDERS: usize = 16;
/// Upper bound of `confirmations`.
pub const MAX_CONFIRMATIONS: u64 = 10_000;
/// Upper bound of `max_block_range`.
pub const MAX_BLOCK_RANGE: u64 = 1_000_000;
/// Upper bound of `reorg_depth`.
pub const MAX_REORG_DEPTH: u64 = 10_000;
/// Upper bound of `addresses` entries.
pub const MAX_ADDRESSES: usize = 10_000;
/// Upper bound of values in one topic position.
pub const MAX_TOPIC_VALUES: usize = 1_000;
/// Upper bound of `abi` entries.
pub const MAX_ABI_ENTRIES: usize = 1_000;

fn default_range() -> u64 {
    2000
}
fn default_reorg_depth() -> u64 {
    128
}
fn default_poll_ms() -> u64 {
    1000
}
fn default_timeout_ms() -> u64 {
    30_000
}
fn default_max_response() -> usize {
    64 << 20
}

impl EvmSourceConfig {
    /// The head polling interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// Every problem, with its path relative to the source.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let mut err = |path: String, msg: String| errors.push((path, msg));
        if self.chain_id == 0 {
            err(
                "chain_id".into(),
                "expected the chain's id (1 for Ethereum, 8453 for Base), got 0".into(),
            );
        }
        if self.rpc.is_empty() || self.rpc.len() > MAX_PROVIDERS {
            err(
                "rpc".into(),
                format!("expected 1 to {MAX_PROVIDERS} provider URLs, got {}", self.rpc.len()),
            );
        }
        let mut shown = std::collections::BTreeSet::new();
        for (i, url) in self.rpc.iter().enumerate() {
            if let Err(e) = url.check(self.allow_private_networks) {
                err(format!("rpc[{i}]"), e);
            }
            if !shown.insert(url.masked()) {
                err(
                    format!("rpc[{i}]"),
                    format!(
                        "{} is listed twice (as masked); each provider is followed once",
                        url.masked()
                    ),
                );
            }
        }
        if self.confirmations > MAX_CONFIRMATIONS {
            err(
                "confirmations".into(),
                format!("expected 0 to {MAX_CONFIRMATIONS}, got {}", self.confirmations),
            );
        }
        if self.addresses.len() > MAX_ADDRESSES {
            err(
                "addresses".into(),
                format!(
                    "expected at most {MAX_ADDRESSES} addresses, got {}",
                    self.addresses.len()
                ),
            );
        }
        for (i, a) in self.addresses.iter().enumerate() {
            if !is_hex(a, 20) {
                err(
                    format!("addresses[{i}]"),
                    format!("expected 0x and 40 hex digits, got {a:?}"),
                );
            }
        }
        if self.topics.len() > 4 {
            err(
                "topics".into(),
                format!(
                    "expected at most 4 positions (a log has at most 4 topics), got {}",
                    self.topics.len()
                ),
            );
        }
        for (i, position) in self.topics.iter().enumerate() {
            if position.len() > MAX_TOPIC_VALUES {
                err(
                    format!("topics[{i}]"),
                    format!("expected at most {MAX_TOPIC_VALUES} values, got {}", position.len()),
                );
            }
            for (j, t) in position.iter().enumerate() {
                if !is_hex(t, 32) {
                    err(
                        format!("topics[{i}][{j}]"),
                        format!("expected 0x and 64 hex digits, got {t:?}"),
                    );
                }
            }
        }
        if self.abi.len() > MAX_ABI_ENTRIES {
            err(
                "abi".into(),
                format!("expected at most {MAX_ABI_ENTRIES} entries, got {}", self.abi.len()),
            );
        }
        for (i, entry) in self.abi.iter().enumerate() {
            if let Err(e) = super::abi::parse_entry(entry) {
                err(format!("abi[{i}]"), e);
            }
        }
        if !(1..=MAX_BLOCK_RANGE).contains(&self.max_block_range) {
            err(
                "max_block_range".into(),
                format!("expected 1 to {MAX_BLOCK_RANGE}, got {}", self.max_block_range),
            );
        }
        if !(1..=MAX_REORG_DEPTH).contains(&self.reorg_depth) {
            err(
                "reorg_depth".into(),
                format!("expected 1 to {MAX_REORG_DEPTH}, got {}", self.reorg_depth),
            );
        }
        if !(10..=600_000).contains(&self.poll_interval_ms) {
            err(
                "poll_interval_ms".into(),
                format!("expected 10 to 600000, got {}", self.poll_interval_ms),
            );
        }
        if !(100..=600_000).contains(&self.request_timeout_ms) {
            err(
                "request_timeout_ms".into(),
                format!("expected 100 to 600000, got {}", self.request_timeout_ms),
            );
        }
        if !(1024..=1 << 30).contains(&self.max_response_bytes) {
            err(
                "max_response_bytes".into(),
                format!("expected 1024 to 1073741824 (1 GiB), got {}", self.max_response_bytes),
            );
        }
        errors
    }
}

/// Whether `s` is `0x` followed by exactly `bytes` bytes of hex (either case).
pub(crate) fn is_hex(s: &str, bytes: usize) -> bool {
    s.strip_prefix("0x")
        .is_some_and(|h| h.len() == bytes * 2 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `from_block`: a number, `"latest"` or `"finalized"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FromBlock {
    /// This block (inclusive).
    Number(u64),
    /// The head when the source first starts.
    #[default]
    Latest,
    /// The provider's finalized block when the source first starts.
    Finalized,
}

impl Serialize for FromBlock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => s.serialize_u64(*n),
            Self::Latest => s.serialize_str("latest"),
            Self::Finalized => s.serialize_str("finalized"),
        }
    }
}

impl<'de> Deserialize<'de> for FromBlock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = FromBlock;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a block number, \"latest\" or \"finalized\"")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<FromBlock, E> {
                Ok(FromBlock::Number(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<FromBlock, E> {
                u64::try_from(n)
                    .map(FromBlock::Number)
                    .map_err(|_| E::custom(format!("expected a block number of 0 or more, got {n}")))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<FromBlock, E> {
                match s {
                    "latest" => Ok(FromBlock::Latest),
                    "finalized" => Ok(FromBlock::Finalized),
                    other => Err(E::custom(format!(
                        "expected a block number, \"latest\" or \"finalized\", got {other:?}"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A provider URL. Its credentials (userinfo, path and query, where providers put API keys) never appear
/// in `Debug`, `Display` or serialized views: those show [`RpcUrl::masked`].
#[derive(Clone, PartialEq, Eq)]
pub struct RpcUrl(String);

impl RpcUrl {
    /// A URL as written (for tests and tools).
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its secret parts masked: the password or a lone userinfo token, and the path and query
    /// (`wss://user:***@host/***`). A URL with neither is shown as is (`http://127.0.0.1:8545`).
    pub fn masked(&self) -> String {
        let shown = tributary_core::url::redacted_url(&self.0, tributary_core::url::LoneUserinfo::Token);
        let Some((scheme, rest)) = shown.split_once("://") else {
            return "***".into();
        };
        match rest.find(['/', '?', '#']) {
            Some(i) if &rest[i..] != "/" => format!("{scheme}://{}/***", &rest[..i]),
            _ => shown,
        }
    }

    /// The URL as written, credentials included: only for sending requests.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is a WebSocket URL.
    pub fn is_ws(&self) -> bool {
        self.0.starts_with("ws://") || self.0.starts_with("wss://")
    }

    /// The host as written (without brackets, userinfo and port).
    pub(crate) fn host(&self) -> Option<&str> {
        let rest = self.0.split_once("://")?.1;
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if let Some(v6) = host_port.strip_prefix('[') {
            return v6.split_once(']').map(|(h, _)| h);
        }
        Some(host_port.rsplit_once(':').map_or(host_port, |(h, _)| h))
    }

    /// Checks the scheme, the host, and (unless allowed) that the host is not a loopback, private or
    /// link-local address written as such.
    fn check(&self, allow_private: bool) -> Result<(), String> {
        let scheme = self.0.split_once("://").map(|(s, _)| s).unwrap_or("");
        if !matches!(scheme, "http" | "https" | "ws" | "wss") {
            return Err(format!(
                "expected an http://, https://, ws:// or wss:// URL, got {}",
                self.masked()
            ));
        }
        let host = self.host().unwrap_or("");
        if host.is_empty() {
            return Err(format!("{}: no host", self.masked()));
        }
        if !allow_private && let Some(why) = internal_host(host) {
            return Err(format!(
                "{}: the host is {why}; set allow_private_networks = true on the source to use a local node",
                self.masked()
            ));
        }
        Ok(())
    }
}

/// Why a host written as a name or literal address is internal, if it is.
fn internal_host(host: &str) -> Option<&'static str> {
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Some("loopback");
    }
    match host.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(ip) if ip.is_loopback() => Some("loopback"),
        std::net::IpAddr::V4(ip) if ip.is_private() => Some("private"),
        std::net::IpAddr::V4(ip) if ip.is_link_local() => Some("link-local"),
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => Some("unspecified"),
        std::net::IpAddr::V6(ip) if ip.is_loopback() => Some("loopback"),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => Some("unspecified"),
        std::net::IpAddr::V6(ip) if (ip.segments()[0] & 0xfe00) == 0xfc00 => Some("private (fc00::/7)"),
        std::net::IpAddr::V6(ip) if (ip.segments()[0] & 0xffc0) == 0xfe80 => Some("link-local"),
        _ => None,
    }
}

impl fmt::Debug for RpcUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RpcUrl({:?})", self.masked())
    }
}

impl fmt::Display for RpcUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for RpcUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.masked())
    }
}

impl<'de> Deserialize<'de> for RpcUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}
