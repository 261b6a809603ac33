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
    /// Problems as (path relative to the subscription, message).
    pub fn validate(&self, source_names: &HashSet<&str>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            out.push((
                "name".into(),
                format!("expected letters, digits, '-' or '_', got {:?}", self.name),
            ));
        }
        if let Err(errors) = self.filter.compile() {
            out.extend(errors.into_iter().map(|e| (format!("filter.{}", e.at), e.message)));
        }
        for (i, s) in self.filter.sources.iter().enumerate() {
            if !source_names.contains(s.as_str()) {
                out.push((
                    format!("filter.sources[{i}]"),
                    format!("no source named {s:?}; define it under [[sources]]"),
                ));
            }
        }
        match self.sink.validate() {
            Ok(()) => {}
            Err(tributary_sinks::SinkError::Config { field, message }) => out.push((format!("sink.{field}"), message)),
            Err(tributary_sinks::SinkError::Secret { field, source }) => {
                out.push((format!("sink.{field}"), source.to_string()))
            }
            Err(e) => out.push(("sink".into(), e.to_string())),
        }
        if self.retry.schedule.is_empty() {
            out.push((
                "retry.schedule".into(),
                "expected at least one delay, e.g. [\"0s\"]".into(),
            ));
        }
        for (i, s) in self.retry.schedule.iter().enumerate() {
            if let Err(e) = humantime::parse_duration(s) {
                out.push((
                    format!("retry.schedule[{i}]"),
                    format!("expected a duration such as \"5s\" or \"30m\", got {s:?} ({e})"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.retry.jitter) {
            out.push((
                "retry.jitter".into(),
                format!("expected a fraction between 0 and 1, got {}", self.retry.jitter),
            ));
        }
        if self.max_in_flight == 0 {
            out.push(("max_in_flight".into(), "expected at least 1".into()));
        }
        if let Some(r) = self.rate_limit
            && !(r > 0.0 && r.is_finite())
        {
            out.push((
                "rate_limit".into(),
                format!("expected a positive number of events per second, got {r}"),
            ));
        }
        if self.circuit_breaker.failure_threshold == 0 {
            out.push(("circuit_breaker.failure_threshold".into(), "expected at least 1".into()));
        }
        out
    }
}
