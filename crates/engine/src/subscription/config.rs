//! `[[subscriptions]]`.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::time::Duration;
use tributary_core::FilterConfig;
use tributary_sinks::SinkConfig;

/// A subscription as configured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// Unique name. It keys the subscription's cursor and is part of every `webhook-id`: a renamed
    /// subscription is a new one (it starts from `start` again, under new `webhook-id`s).
    pub name: String,
    /// The owning tenant: its API keys see and manage this subscription, which only ever receives events
    /// of sources shared with that tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Which events (see `docs/filters.md`). Default: every event.
    #[serde(default)]
    pub filter: FilterConfig,
    /// Where they go.
    pub sink: SinkConfig,
    /// The retry schedule.
    #[serde(default)]
    pub retry: RetryConfig,
    /// `none` (default): deliver concurrently; `per_key`: events of one key arrive in sequence order.
    #[serde(default)]
    pub ordering: Ordering,
    /// Deliveries in flight at once. Default 16.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// At most this many deliveries per second (attempts included). Default: unlimited.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Where a new subscription starts: `beginning` (default) of the log, or its `end`.
    #[serde(default)]
    pub start: Start,
    /// When to stop hammering a failing endpoint.
    #[serde(default)]
    pub circuit_breaker: BreakerConfig,
}

fn default_in_flight() -> usize {
    16
}

/// The bounds of every number a subscription sets, checked by [`SubscriptionConfig::validate`] for the
/// config file and the API alike (a 422 names the field). `docs/security.md` lists them.
pub mod bounds {
    use std::time::Duration;

    /// Longest subscription name, in bytes.
    pub const NAME_MAX: usize = 64;
    /// Largest `max_in_flight`: each delivery in flight may hold a connection.
    pub const MAX_IN_FLIGHT: usize = 256;
    /// Slowest `rate_limit`, deliveries per second (one every 100 s).
    pub const RATE_MIN: f64 = 0.01;
    /// Fastest `rate_limit`, deliveries per second.
    pub const RATE_MAX: f64 = 1_000_000.0;
    /// Most entries in `retry.schedule`.
    pub const SCHEDULE_MAX: usize = 32;
    /// Longest delay in `retry.schedule`.
    pub const DELAY_MAX: Duration = Duration::from_secs(7 * 24 * 3600);
    /// Largest `circuit_breaker.failure_threshold`.
    pub const THRESHOLD_MAX: u32 = 1_000_000;
    /// Longest `circuit_breaker.cooldown_ms` and `max_cooldown_ms` (24 hours).
    pub const COOLDOWN_MAX_MS: u64 = 24 * 3600 * 1000;
    /// Most entries in each of `filter.kinds`, `filter.sources` and `filter.keys`.
    pub const FILTER_LIST_MAX: usize = 1024;
    /// Most predicates in `filter.where`.
    pub const PREDICATES_MAX: usize = 64;
    /// Longest kind pattern, source name, key or predicate path in a filter, in bytes.
    pub const FILTER_STRING_MAX: usize = 1024;
}

/// Ordering mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// No ordering promise; maximal throughput.
    #[default]
    None,
    /// Events with the same key arrive in sequence order; a failing event holds back only its own key.
    PerKey,
}

/// Where a new subscription's cursor starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// The whole log.
    #[default]
    Beginning,
    /// Only events appended from now on.
    End,
}

/// `retry = { schedule = ["0s", "5s", "5m"], jitter = 0.2 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Delay before each attempt: the first entry is for the first attempt (normally `0s`), and an event is
    /// dead-lettered after `len` attempts. Default: 0s, 5s, 5m, 30m, 2h, 5h, 10h, 10h.
    #[serde(default = "default_schedule")]
    pub schedule: Vec<String>,
    /// Random spread applied to each delay, as a fraction (0.2 = ±20%). Default 0.2.
    #[serde(default = "default_jitter")]
    pub jitter: f64,
}

fn default_schedule() -> Vec<String> {
    ["0s", "5s", "5m", "30m", "2h", "5h", "10h", "10h"]
        .map(String::from)
        .to_vec()
}
fn default_jitter() -> f64 {
    0.2
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            schedule: default_schedule(),
            jitter: default_jitter(),
        }
    }
}

impl RetryConfig {
    /// The schedule as durations (validated before use).
    pub fn delays(&self) -> Vec<Duration> {
        self.schedule
            .iter()
            .filter_map(|s| humantime::parse_duration(s).ok())
            .collect()
    }
}

/// `circuit_breaker = { failure_threshold = 10, cooldown_ms = 5000, max_cooldown_ms = 300000 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive retriable failures that open the breaker. Default 10.
    #[serde(default = "default_threshold")]
    pub failure_threshold: u32,
    /// First pause before probing again, in milliseconds; doubles on each failed probe. Default 5,000.
    #[serde(default = "default_cooldown")]
    pub cooldown_ms: u64,
    /// Longest pause, in milliseconds. Default 300,000.
    #[serde(default = "default_max_cooldown")]
    pub max_cooldown_ms: u64,
}

fn default_threshold() -> u32 {
    10
}
fn default_cooldown() -> u64 {
    5_000
}
fn default_max_cooldown() -> u64 {
    300_000
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: default_threshold(),
            cooldown_ms: default_cooldown(),
            max_cooldown_ms: default_max_cooldown(),
        }
    }
}

impl SubscriptionConfig {
    /// The name its tenant uses: `name` without the `{tenant}:` prefix of a tenant's API subscription.
    pub fn display_name(&self) -> &str {
        match (&self.tenant, self.name.split_once(':')) {
            (Some(t), Some((prefix, short))) if prefix == t => short,
            _ => &self.name,
        }
    }

    /// `{tenant}:{name}` for a tenant's subscription named without its prefix; other names as they are.
    pub fn qualify(&mut self) {
        if let Some(t) = &self.tenant
            && !self.name.contains(':')
        {
            self.name = format!("{t}:{}", self.name);
        }
    }

    /// Problems as (path relative to the subscription, message).
    pub fn validate(&self, source_names: &HashSet<&str>) -> Vec<(String, String)> {
        use bounds::*;
        let mut out = Vec::new();
        let mut problem = |path: &str, message: String| out.push((path.to_owned(), message));
        // A tenant's subscription created through the API is stored as `{tenant}:{name}` (its tenant sees
        // `name`): names are per tenant, so no tenant learns another's names from a conflict.
        let short = self.display_name();
        let qualified_ok = match self.name.split_once(':') {
            None => true,
            Some((t, _)) => self.tenant.as_deref() == Some(t),
        };
        if short.is_empty()
            || short.len() > NAME_MAX
            || !qualified_ok
            || !short
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            problem(
                "name",
                format!(
                    "expected 1 to {NAME_MAX} letters, digits, '-' or '_', got {:?}",
                    truncated(short)
                ),
            );
        }
        self.validate_filter(source_names, &mut problem);
        for e in self.sink.problems() {
            match e {
                tributary_sinks::SinkError::Config { field, message } => problem(&format!("sink.{field}"), message),
                tributary_sinks::SinkError::Secret { field, source } => {
                    problem(&format!("sink.{field}"), source.to_string())
                }
                e => problem("sink", e.to_string()),
            }
        }
        let schedule = &self.retry.schedule;
        if schedule.is_empty() || schedule.len() > SCHEDULE_MAX {
            problem(
                "retry.schedule",
                format!(
                    "expected 1 to {SCHEDULE_MAX} delays, e.g. [\"0s\", \"5s\"], got {}",
                    schedule.len()
                ),
            );
        }
        for (i, s) in schedule.iter().enumerate().take(SCHEDULE_MAX) {
            match humantime::parse_duration(s) {
                Err(e) => problem(
                    &format!("retry.schedule[{i}]"),
                    format!(
                        "expected a duration such as \"5s\" or \"30m\", got {:?} ({e})",
                        truncated(s)
                    ),
                ),
                Ok(d) if d > DELAY_MAX => problem(
                    &format!("retry.schedule[{i}]"),
                    format!("expected at most 7d, got {s:?}"),
                ),
                Ok(_) => {}
            }
        }
        if !(0.0..=1.0).contains(&self.retry.jitter) {
            problem(
                "retry.jitter",
                format!("expected a fraction between 0 and 1, got {}", self.retry.jitter),
            );
        }
        if !(1..=MAX_IN_FLIGHT).contains(&self.max_in_flight) {
            problem(
                "max_in_flight",
                format!("expected 1 to {MAX_IN_FLIGHT}, got {}", self.max_in_flight),
            );
        }
        if let Some(r) = self.rate_limit
            && !(RATE_MIN..=RATE_MAX).contains(&r)
        {
            problem(
                "rate_limit",
                format!("expected {RATE_MIN} to {RATE_MAX} deliveries per second, got {r}"),
            );
        }
        let b = &self.circuit_breaker;
        if !(1..=THRESHOLD_MAX).contains(&b.failure_threshold) {
            problem(
                "circuit_breaker.failure_threshold",
                format!("expected 1 to {THRESHOLD_MAX}, got {}", b.failure_threshold),
            );
        }
        if !(1..=COOLDOWN_MAX_MS).contains(&b.cooldown_ms) {
            problem(
                "circuit_breaker.cooldown_ms",
                format!("expected 1 to {COOLDOWN_MAX_MS} (24 hours), got {}", b.cooldown_ms),
            );
        }
        if !(b.cooldown_ms.max(1)..=COOLDOWN_MAX_MS).contains(&b.max_cooldown_ms) {
            problem(
                "circuit_breaker.max_cooldown_ms",
                format!(
                    "expected cooldown_ms ({}) to {COOLDOWN_MAX_MS} (24 hours), got {}",
                    b.cooldown_ms, b.max_cooldown_ms
                ),
            );
        }
        out
    }

    fn validate_filter(&self, source_names: &HashSet<&str>, problem: &mut impl FnMut(&str, String)) {
        use bounds::*;
        let f = &self.filter;
        let lists = [("kinds", &f.kinds), ("sources", &f.sources), ("keys", &f.keys)];
        let mut too_big = false;
        for (field, list) in lists {
            if list.len() > FILTER_LIST_MAX {
                too_big = true;
                problem(
                    &format!("filter.{field}"),
                    format!("expected at most {FILTER_LIST_MAX} entries, got {}", list.len()),
                );
            }
            if let Some(i) = list.iter().position(|s| s.len() > FILTER_STRING_MAX) {
                too_big = true;
                problem(
                    &format!("filter.{field}[{i}]"),
                    format!("expected at most {FILTER_STRING_MAX} bytes"),
                );
            }
        }
        if f.predicates.len() > PREDICATES_MAX {
            too_big = true;
            problem(
                "filter.where",
                format!(
                    "expected at most {PREDICATES_MAX} predicates, got {}",
                    f.predicates.len()
                ),
            );
        }
        if let Some(i) = f.predicates.iter().position(|p| p.path.len() > FILTER_STRING_MAX) {
            too_big = true;
            problem(
                &format!("filter.where[{i}].path"),
                format!("expected at most {FILTER_STRING_MAX} bytes"),
            );
        }
        if too_big {
            return;
        }
        if let Err(errors) = f.compile() {
            for e in errors {
                problem(&format!("filter.{}", e.at), e.message);
            }
        }
        for (i, s) in f.sources.iter().enumerate() {
            if !source_names.contains(s.as_str()) {
                problem(
                    &format!("filter.sources[{i}]"),
                    format!("no source named {:?}; define it under [[sources]]", truncated(s)),
                );
            }
        }
    }
}

/// At most 80 characters of a value quoted in a message.
fn truncated(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}
