//! The config file: one TOML document, overridden by environment variables.
//!
//! `TRIBUTARY__NODE__LISTEN=0.0.0.0:8080` overrides `[node] listen`; `TRIBUTARY_ADMIN_KEY` sets
//! `[node] admin_key`. Validation collects every problem, each with its path (`subscriptions[1].filter.kinds[0]`).

use crate::subscription::SubscriptionConfig;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use tributary_sources::SourceSpec;

pub use crate::config_node::{NODE_LIMITS, NodeConfig};
pub use crate::config_store::{PostgresStore, StoreKind};

/// The whole config file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The node itself.
    #[serde(default)]
    pub node: NodeConfig,
    /// Where events come from.
    #[serde(default)]
    pub sources: Vec<SourceSpec>,
    /// Who receives which events.
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionConfig>,
    /// When `/health` reports a subscription as degraded.
    #[serde(default)]
    pub health: HealthConfig,
    /// Node-wide limits that keep one tenant from exhausting the node.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// `[limits]`: node-wide bounds (each documented in `docs/security.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Subscriptions one tenant may create through the API. Default 100, at most 10,000.
    #[serde(default = "default_subscriptions_per_tenant")]
    pub max_subscriptions_per_tenant: usize,
    /// Deliveries in flight at once across every subscription of the node (each may hold a connection and
    /// a file descriptor). Default 1,024, at most 65,536.
    #[serde(default = "default_deliveries_in_flight")]
    pub max_deliveries_in_flight: usize,
    /// Sink types besides `webhook` that a tenant may create through the API, by tenant (`"*"`: every
    /// tenant): `[limits.tenant_sinks] acme = ["redis"]`. Those sinks reach systems inside the operator's
    /// network, so by default only the admin may create them. Default: none.
    #[serde(default)]
    pub tenant_sinks: BTreeMap<String, Vec<String>>,
}

fn default_subscriptions_per_tenant() -> usize {
    100
}
fn default_deliveries_in_flight() -> usize {
    1024
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_subscriptions_per_tenant: default_subscriptions_per_tenant(),
            max_deliveries_in_flight: default_deliveries_in_flight(),
            tenant_sinks: BTreeMap::new(),
        }
    }
}

impl LimitsConfig {
    fn validate(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !(1..=10_000).contains(&self.max_subscriptions_per_tenant) {
            out.push(format!(
                "limits.max_subscriptions_per_tenant: expected 1 to 10000, got {}",
                self.max_subscriptions_per_tenant
            ));
        }
        if !(1..=65_536).contains(&self.max_deliveries_in_flight) {
            out.push(format!(
                "limits.max_deliveries_in_flight: expected 1 to 65536, got {}",
                self.max_deliveries_in_flight
            ));
        }
        for (tenant, types) in &self.tenant_sinks {
            for (i, t) in types.iter().enumerate() {
                if !tributary_sinks::SinkConfig::TYPES.contains(&t.as_str()) {
                    out.push(format!(
                        "limits.tenant_sinks.{tenant}[{i}]: unknown sink type {t:?}; this build has {}",
                        tributary_sinks::SinkConfig::TYPES.join(", ")
                    ));
                }
            }
        }
        out
    }

    /// Whether the config grants `tenant` the sink type `sink` (`[limits.tenant_sinks]`).
    pub fn grants_sink(&self, tenant: &str, sink: &str) -> bool {
        [tenant, "*"]
            .iter()
            .filter_map(|t| self.tenant_sinks.get(*t))
            .any(|types| types.iter().any(|t| t == sink))
    }
}

/// `[health]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// A subscription with more events than this behind its cursor is `degraded`. Default 10,000.
    #[serde(default = "default_max_backlog")]
    pub max_backlog: u64,
    /// A subscription with more dead letters than this is `degraded`. Default 0.
    #[serde(default)]
    pub max_dead_letters: u64,
}

fn default_max_backlog() -> u64 {
    10_000
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            max_backlog: default_max_backlog(),
            max_dead_letters: 0,
        }
    }
}

/// Every problem found in a config, each as `path: message`.
#[derive(Debug, thiserror::Error)]
#[error("config {file}: {} problem(s):\n  {}", problems.len(), problems.join("\n  "))]
pub struct ConfigError {
    /// The file (or `<inline>`).
    pub file: String,
    /// One line per problem.
    pub problems: Vec<String>,
}

impl Config {
    /// Reads `path`, applies environment overrides and validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_checked(path, Checks::Run)
    }

    /// [`Config::load`] for `tributary validate`: also reports what will certainly fail at delivery time
    /// (a webhook on a loopback or private address without `allow_private_networks`).
    pub fn load_strict(path: &Path) -> Result<Self, ConfigError> {
        Self::load_checked(path, Checks::Strict)
    }

    fn load_checked(path: &Path, checks: Checks) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        if !path.exists() {
            return Err(ConfigError {
                file,
                problems: vec!["file not found; pass an existing TOML file with --config".into()],
            });
        }
        Self::from_figment(Figment::from(Toml::file_exact(path)), file, checks)
    }

    /// Parses TOML text (environment overrides applied) and validates.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::from(Toml::string(text)), "<inline>".into(), Checks::Run)
    }

    fn from_figment(figment: Figment, file: String, checks: Checks) -> Result<Self, ConfigError> {
        let figment = figment.merge(Env::prefixed("TRIBUTARY__").split("__")).merge(
            Env::raw()
                .only(&["TRIBUTARY_ADMIN_KEY"])
                .map(|_| "node.admin_key".into()),
        );
        let config = extract_all(&figment, checks).map_err(|problems| ConfigError {
            file: file.clone(),
            problems,
        })?;
        let mut problems = config.validate();
        if checks == Checks::Strict {
            let subscriptions: Vec<_> = config.subscriptions.iter().enumerate().collect();
            problems.extend(delivery_problems(&subscriptions));
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { file, problems })
        }
    }

    /// Every semantic problem, as `path: message`.
    pub fn validate(&self) -> Vec<String> {
        let sources: Vec<_> = self.sources.iter().enumerate().collect();
        let subscriptions: Vec<_> = self.subscriptions.iter().enumerate().collect();
        let mut out = validate_parts(Some(&self.node), &sources, &subscriptions);
        out.extend(self.limits.validate());
        out
    }
}

/// Which checks a load makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checks {
    /// What `run` needs.
    Run,
    /// Also what will certainly fail at delivery time (`validate`).
    Strict,
}

/// Subscriptions whose every delivery the SSRF guard will refuse (decided without resolving names).
fn delivery_problems(subscriptions: &[(usize, &SubscriptionConfig)]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, s) in subscriptions {
        if let Some((field, host, why)) = s.sink.refused_destination() {
            out.push(format!(
                "subscriptions[{i}].sink.{field}: address {host} is {why}, so every delivery would be refused; set allow_private_networks = true on this sink if the endpoint is meant to be internal"
            ));
        }
    }
    out
}

/// Semantic checks of whatever parsed, each entry with its index in the file.
fn validate_parts(
    node: Option<&NodeConfig>,
    sources: &[(usize, &SourceSpec)],
    subscriptions: &[(usize, &SubscriptionConfig)],
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(node) = node {
        if node.listen.parse::<SocketAddr>().is_err() {
            out.push(format!(
                "node.listen: expected an address such as 127.0.0.1:8080, got {:?}",
                node.listen
            ));
        }
        if node.admin_key.as_deref().is_some_and(|k| k.len() < 8) {
            out.push("node.admin_key: expected at least 8 characters".into());
        }
        out.extend(node.limit_problems());
    }
    let mut names = HashSet::new();
    for (i, s) in sources {
        if !names.insert(s.name()) {
            out.push(format!(
                "sources[{i}].name: {:?} is used by another source; names must be unique",
                s.name()
            ));
        }
        for (field, msg) in s.validate() {
            out.push(format!("sources[{i}].{field}: {msg}"));
        }
    }
    let mut sub_names = HashSet::new();
    for (i, s) in subscriptions {
        if !sub_names.insert(s.name.as_str()) {
            out.push(format!(
                "subscriptions[{i}].name: {:?} is used by another subscription; names must be unique",
                s.name
            ));
        }
        for (field, msg) in s.validate(&names) {
            out.push(format!("subscriptions[{i}].{field}: {msg}"));
        }
    }
    out
}

/// Deserializes section by section (and each `[[sources]]` / `[[subscriptions]]` entry on its own) so that
/// every malformed part is reported, not only the first.
fn extract_all(figment: &Figment, checks: Checks) -> Result<Config, Vec<String>> {
    use figment::value::Value;
    let mut problems = Vec::new();
    let root = match figment.find_value("") {
        Ok(v) => v,
        Err(e) if matches!(e.kind, figment::error::Kind::MissingField(_)) => Value::from(figment::value::Dict::new()),
        Err(e) => return Err(e.into_iter().map(|e| crate::config_parse::problem(&e)).collect()),
    };
    let dict = root.into_dict().unwrap_or_default();
    const SECTIONS: [&str; 5] = ["node", "sources", "subscriptions", "health", "limits"];
    for key in dict.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            let message = crate::config_parse::unknown_key("section", key, &SECTIONS);
            problems.push(format!("{key}: {message}"));
        }
    }
    use crate::config_parse::one;
    let node = dict
        .get("node")
        .map(|v| one::<NodeConfig>(v, "node", &mut problems))
        .unwrap_or_else(|| Some(NodeConfig::default()));
    let health = dict
        .get("health")
        .map(|v| one::<HealthConfig>(v, "health", &mut problems))
        .unwrap_or_else(|| Some(HealthConfig::default()));
    let limits = dict
        .get("limits")
        .map(|v| one::<LimitsConfig>(v, "limits", &mut problems))
        .unwrap_or_else(|| Some(LimitsConfig::default()));
    let list = |name: &str, problems: &mut Vec<String>| -> Vec<Value> {
        match dict.get(name) {
            None => Vec::new(),
            Some(v) => match v.clone().into_array() {
                Some(items) => items,
                None => {
                    problems.push(format!("{name}: expected an array of tables ([[{name}]])"));
                    Vec::new()
                }
            },
        }
    };
    let sources: Vec<Option<SourceSpec>> = list("sources", &mut problems)
        .iter()
        .enumerate()
        .map(|(i, v)| crate::config_parse::source(v, &format!("sources[{i}]"), &mut problems))
        .collect();
    let subscriptions: Vec<Option<SubscriptionConfig>> = list("subscriptions", &mut problems)
        .iter()
        .enumerate()
        .map(|(i, v)| one(v, &format!("subscriptions[{i}]"), &mut problems))
        .collect();
    if !problems.is_empty() {
        // Also check what did parse, so one run shows every problem.
        let parsed_sources: Vec<(usize, &SourceSpec)> = sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
            .collect();
        let parsed_subs: Vec<(usize, &SubscriptionConfig)> = subscriptions
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|s| (i, s)))
            .collect();
        problems.extend(validate_parts(node.as_ref(), &parsed_sources, &parsed_subs));
        if checks == Checks::Strict {
            problems.extend(delivery_problems(&parsed_subs));
        }
        if let Some(limits) = &limits {
            problems.extend(limits.validate());
        }
        return Err(problems);
    }
    Ok(Config {
        node: node.unwrap_or_default(),
        sources: sources.into_iter().flatten().collect(),
        subscriptions: subscriptions.into_iter().flatten().collect(),
        health: health.unwrap_or_default(),
        limits: limits.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[node]
data_dir = "./data"
listen = "127.0.0.1:8080"
admin_key = "change-me"

[[sources]]
name = "ingest"
type = "http"

[[subscriptions]]
name = "all"
filter = { kinds = ["*"] }
[subscriptions.sink]
type = "webhook"
url = "http://127.0.0.1:9000/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
allow_private_networks = true
"#;

    /// `store` is a name or a table; a table's problems are all reported with their path, and the
    /// password never shows in `Debug`.
    #[test]
    fn store_names_and_the_postgres_table() {
        let with = |store: &str| {
            EXAMPLE.replace(
                "admin_key = \"change-me\"",
                &format!("admin_key = \"change-me\"\nstore = {store}"),
            )
        };
        assert_eq!(
            Config::from_toml(&with("\"memory\"")).unwrap().node.store,
            StoreKind::Memory
        );
        let c = Config::from_toml(&with(
            r#"{ type = "postgres", url = "postgres://u:secret@127.0.0.1/db" }"#,
        ))
        .unwrap();
        let StoreKind::Postgres(pg) = &c.node.store else {
            panic!("not postgres: {:?}", c.node.store)
        };
        assert_eq!(
            (pg.schema.as_str(), pg.pool_size, pg.timeout_ms),
            ("tributary", 16, 10_000)
        );
        assert!(!format!("{:?}", c.node).contains("secret"));
        let err = |store: &str| Config::from_toml(&with(store)).unwrap_err().problems.join("\n");
        assert!(
            err("\"postgres\"").contains("needs its connection"),
            "{}",
            err("\"postgres\"")
        );
        assert!(err("\"fjall\"").contains("unknown store \"fjall\""));
        let all = err(r#"{ type = "postgres", url = "mysql://h", schema = "A", pool_size = 0, timeout_ms = 1 }"#);
        for field in [
            "node.store.url:",
            "node.store.schema:",
            "node.store.pool_size:",
            "node.store.timeout_ms:",
        ] {
            assert!(all.contains(field), "{field} missing from {all}");
        }
    }

    #[test]
    fn issue_example_parses() {
        let c = Config::from_toml(EXAMPLE).unwrap();
        assert_eq!(c.sources.len(), 1);
        assert_eq!(c.subscriptions[0].name, "all");
    }

    /// The fields every source has are parsed apart from the type's own keys (`SourceSpec`): a typo in
    /// either is reported with its path and a suggestion, together with the type's other problems.
    #[test]
    fn common_source_fields_and_type_keys_are_checked_apart() {
        let text = EXAMPLE.replace(
            "name = \"ingest\"\ntype = \"http\"",
            "name = \"ingest\"\ntype = \"http\"\ntenant = [\"*\"]\nmax_body_byte = 10\nmax_events_per_request = 0",
        );
        let err = Config::from_toml(&text).unwrap_err();
        let all = err.problems.join("\n");
        assert!(
            all.contains("sources[0].tenant: unknown field; did you mean \"tenants\"?"),
            "{all}"
        );
        assert!(
            all.contains("sources[0].max_body_byte: unknown field; did you mean \"max_body_bytes\"?"),
            "{all}"
        );
        assert!(
            all.contains("sources[0].max_events_per_request: expected 1 to 1000000"),
            "{all}"
        );
        let ok = EXAMPLE.replace(
            "name = \"ingest\"\ntype = \"http\"",
            "name = \"ingest\"\ntype = \"http\"\ntenants = [\"*\"]\nstall_after_ms = 5000",
        );
        let c = Config::from_toml(&ok).unwrap();
        assert_eq!(
            (c.sources[0].name(), c.sources[0].tenants()),
            ("ingest", &["*".to_owned()][..])
        );
        assert_eq!(c.sources[0].stall_after(), Some(std::time::Duration::from_secs(5)));
        assert_eq!(c.sources[0].type_name(), "http");
        let missing = EXAMPLE.replace("name = \"ingest\"\ntype = \"http\"", "type = \"http\"");
        let all = Config::from_toml(&missing).unwrap_err().problems.join("\n");
        assert!(all.contains("sources[0]") && all.contains("name"), "{all}");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = EXAMPLE
            .replace("listen = \"127.0.0.1:8080\"", "listen = \"nowhere\"")
            .replace(
                "filter = { kinds = [\"*\"] }",
                "filter = { kinds = [\"a..b\"], sources = [\"missing\"] }",
            );
        let err = Config::from_toml(&text).unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("node.listen: expected an address"), "{all}");
        assert!(
            all.contains("subscriptions[0].filter.kinds[0]: invalid kind pattern"),
            "{all}"
        );
        assert!(
            all.contains("subscriptions[0].filter.sources[0]: no source named \"missing\""),
            "{all}"
        );
    }

    #[test]
    fn every_sink_problem_is_reported_at_once_with_its_path() {
        let text = EXAMPLE.replace(
            "allow_private_networks = true",
            "allow_private_networks = true\ntimeout = \"0s\"\nconnect_timeout = \"2m\"\nprevious_secrets = [{ secret = \"nope\", expires_at = \"2030-01-01T00:00:00Z\" }]",
        );
        let err = Config::from_toml(&text).unwrap_err();
        let all = err.problems.join("\n");
        for says in [
            "subscriptions[0].sink.timeout: must be greater than zero",
            "subscriptions[0].sink.connect_timeout: expected at most 1m",
            "subscriptions[0].sink.previous_secrets[0].secret",
        ] {
            assert!(all.contains(says), "{says} missing from:\n{all}");
        }
    }

    #[test]
    fn tenant_sink_grants_name_known_types() {
        let c = Config::from_toml(&format!(
            "{EXAMPLE}\n[limits.tenant_sinks]\nacme = [\"webhook\"]\n\"*\" = []\n"
        ))
        .unwrap();
        assert!(c.limits.grants_sink("acme", "webhook"));
        assert!(!c.limits.grants_sink("globex", "webhook"));
        let err = Config::from_toml(&format!(
            "{EXAMPLE}\n[limits.tenant_sinks]\nacme = [\"carrier-pigeon\"]\n"
        ))
        .unwrap_err();
        let all = err.problems.join("\n");
        assert!(
            all.contains("limits.tenant_sinks.acme[0]: unknown sink type \"carrier-pigeon\"; this build has webhook"),
            "{all}"
        );
    }

    #[test]
    fn malformed_entries_are_all_reported() {
        let text = EXAMPLE
            .replace("[node]", "[node]\nshutdown_grace_ms = \"soon\"")
            .replace("type = \"http\"", "type = \"http\"\nmax_body_bytes = \"big\"")
            + "\n[[subscriptions]]\nname = \"second\"\n";
        let err = Config::from_toml(&text).unwrap_err();
        let all = err.problems.join("\n");
        assert!(all.contains("node.shutdown_grace_ms"), "{all}");
        assert!(all.contains("sources[0]"), "{all}");
        assert!(all.contains("subscriptions[1]") && all.contains("sink"), "{all}");
        assert!(err.problems.len() >= 3, "{all}");
    }

    #[test]
    fn node_limits_are_bounded() {
        let text = EXAMPLE.replace(
            "[node]",
            "[node]\nmax_connections = 0\nheader_read_timeout_ms = 1\nmax_ingest_in_flight_bytes = 10\nmetrics_token = \"short\"",
        );
        let all = Config::from_toml(&text).unwrap_err().problems.join("\n");
        for needle in [
            "node.max_connections: expected 1 to 65536, got 0",
            "node.header_read_timeout_ms: expected 100 to 600000, got 1",
            "node.max_ingest_in_flight_bytes: expected 1048576 to",
            "node.metrics_token: expected at least 16 characters",
        ] {
            assert!(all.contains(needle), "{needle} in {all}");
        }
        let c = Config::from_toml(EXAMPLE).unwrap();
        assert_eq!((c.node.max_connections, c.node.header_read_timeout_ms), (1024, 10_000));
    }

    #[test]
    fn one_run_reports_unknown_fields_typos_bad_kinds_and_private_endpoints() {
        let text = EXAMPLE
            .replace("[node]", "[node]\ncolour = \"blue\"")
            .replace(
                "filter = { kinds = [\"*\"] }",
                "filter = { kinds = [\"orders..*\"] }\nmax_in_fligth = 4",
            )
            .replace("allow_private_networks = true", "secert = \"x\"");
        let path = std::env::temp_dir().join(format!("tributary-config-test-{}.toml", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let strict = Config::load_strict(&path).unwrap_err().problems;
        let run = Config::load(&path).unwrap_err().problems;
        std::fs::remove_file(&path).unwrap();
        let all = strict.join("\n");
        for needle in [
            "node.colour: unknown field, expected one of",
            "subscriptions[0].max_in_fligth: unknown field; did you mean \"max_in_flight\"?",
            "subscriptions[0].sink.secert: unknown field; did you mean \"secret\"?",
            "subscriptions[0].filter.kinds[0]: invalid kind pattern \"orders..*\"",
            "subscriptions[0].sink.url: address 127.0.0.1 is loopback, so every delivery would be refused",
        ] {
            assert!(all.contains(needle), "{needle:?} in\n{all}");
        }
        assert_eq!(strict.len(), 5, "{all}");
        // `run` starts a node with such a sink (the guard refuses each delivery, with advice).
        assert_eq!(run.len(), 4, "{run:?}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Config::from_toml(&EXAMPLE.replace("[node]", "[node]\ndata_dri = \"x\"")).unwrap_err();
        assert!(err.problems[0].contains("data_dri"), "{:?}", err.problems);
    }
}
