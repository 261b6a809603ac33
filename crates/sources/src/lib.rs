//! tributary sources: where events come from.
//!
//! - [`json_event`]: the JSON event shape shared by the `http` and `file` sources, and its validation.
//! - [`http`]: `POST /v1/sources/{name}/events` (served by the API crate; this crate parses and validates).
//! - [`file`](mod@file): newline-delimited JSON events followed from a checkpointed byte offset.
//! - [`lightning`] (feature `lightning`): BOLT #7 gossip decoding, verification, ln-history ids, gossip
//!   file formats, the channel graph in time, and the `lightning` source (`gossip_store`, ZeroMQ).
//! - [`postgres`] (feature `postgres-source`): change capture over logical replication (`pgoutput`),
//!   table changes and transactional outbox tables.
//!
//! Every source is registered once, in [`SourceConfig`]; [`SourceConfig::build`] is the one place that
//! turns a config into a running component.

pub mod file;
pub mod http;
pub mod json_event;
#[cfg(feature = "lightning")]
pub mod lightning;
#[cfg(feature = "postgres-source")]
pub mod postgres;

use serde::{Deserialize, Serialize};
use tributary_core::Source;

/// A configured source. Adding a source adds one variant here and one arm in [`SourceConfig::build`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// Events pushed over HTTP.
    Http(http::HttpSourceConfig),
    /// Newline-delimited JSON events read from a file.
    File(file::FileSourceConfig),
    /// Lightning gossip (BOLT #7) from Core Lightning: `gossip_store`, ZeroMQ collectors, imports.
    #[cfg(feature = "lightning")]
    Lightning(lightning::LightningSourceConfig),
    /// PostgreSQL change capture: logical replication with `pgoutput`, table changes and outbox rows.
    /// (Boxed: the config is several times larger than the others.)
    #[cfg(feature = "postgres-source")]
    Postgres(Box<postgres::PostgresSourceConfig>),
}

/// A built source: either a task that pulls events, or a push endpoint that the API serves.
pub enum BuiltSource {
    /// Runs as a task.
    Task(Box<dyn Source>),
    /// Receives pushed batches through the API.
    Push(http::HttpSource),
}

impl SourceConfig {
    /// The source's unique name.
    pub fn name(&self) -> &str {
        match self {
            Self::Http(c) => &c.name,
            Self::File(c) => &c.name,
            #[cfg(feature = "lightning")]
            Self::Lightning(c) => &c.name,
            #[cfg(feature = "postgres-source")]
            Self::Postgres(c) => &c.name,
        }
    }

    /// Tenants that may read this source's events (`*` = all).
    pub fn tenants(&self) -> &[String] {
        match self {
            Self::Http(c) => &c.tenants,
            Self::File(c) => &c.tenants,
            #[cfg(feature = "lightning")]
            Self::Lightning(c) => &c.tenants,
            #[cfg(feature = "postgres-source")]
            Self::Postgres(c) => &c.tenants,
        }
    }

    /// Whether `tenant` may read this source's events.
    pub fn shared_with(&self, tenant: &str) -> bool {
        self.tenants().iter().any(|t| t == "*" || t == tenant)
    }

    /// After how long without progress the source counts as stalled.
    pub fn stall_after(&self) -> Option<std::time::Duration> {
        let ms = match self {
            Self::Http(c) => c.stall_after_ms,
            Self::File(c) => c.stall_after_ms,
            #[cfg(feature = "lightning")]
            Self::Lightning(c) => c.stall_after_ms,
            #[cfg(feature = "postgres-source")]
            Self::Postgres(c) => c.stall_after_ms,
        };
        ms.map(std::time::Duration::from_millis)
    }

    /// The `type` tag as written in the config.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::File(_) => "file",
            #[cfg(feature = "lightning")]
            Self::Lightning(_) => "lightning",
            #[cfg(feature = "postgres-source")]
            Self::Postgres(_) => "postgres",
        }
    }

    /// Checks the config, returning every problem with a path relative to the source.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let name = self.name();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            errors.push((
                "name".to_owned(),
                format!("expected letters, digits, '-' or '_', got {name:?}"),
            ));
        }
        match self {
            Self::Http(c) => errors.extend(c.validate()),
            Self::File(c) => errors.extend(c.validate()),
            #[cfg(feature = "lightning")]
            Self::Lightning(c) => errors.extend(c.validate()),
            #[cfg(feature = "postgres-source")]
            Self::Postgres(c) => errors.extend(c.validate()),
        }
        errors
    }

    /// Builds the running component.
    pub fn build(&self) -> BuiltSource {
        match self {
            Self::Http(c) => BuiltSource::Push(http::HttpSource::new(c.clone())),
            Self::File(c) => BuiltSource::Task(Box::new(file::FileSource::new(c.clone()))),
            #[cfg(feature = "lightning")]
            Self::Lightning(c) => BuiltSource::Task(Box::new(lightning::LightningSource::new(c.clone()))),
            #[cfg(feature = "postgres-source")]
            Self::Postgres(c) => BuiltSource::Task(Box::new(postgres::PostgresSource::new((**c).clone()))),
        }
    }
}
