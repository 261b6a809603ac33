//! tributary sources: where events come from.
//!
//! - [`json_event`]: the JSON event shape shared by the `http` and `file` sources, and its validation.
//! - [`http`]: `POST /v1/sources/{name}/events` (served by the API crate; this crate parses and validates).
//! - [`file`](mod@file): newline-delimited JSON events followed from a checkpointed byte offset.
//! - [`lightning`] (feature `lightning`): BOLT #7 gossip decoding, verification, ln-history ids, gossip
//!   file formats, the channel graph in time, and the `lightning` source (`gossip_store`, ZeroMQ).
//! - [`postgres`] (feature `postgres-source`): change capture over logical replication (`pgoutput`),
//!   table changes and transactional outbox tables.
//! - [`evm`] (feature `evm`): contract logs of an EVM chain from JSON-RPC providers, reorganisations as
//!   retractions.
//!
//! Every source type is registered once, one line of `source_types!` in this file, which makes the
//! [`SourceConfig`] enum and dispatches to the [`SourceType`] its config implements (the types with the
//! common fields use `common_source_fields!`). A source type with state of its own for the whole node
//! (the Lightning graph) adds a field to [`Services`], started by [`Services::start`] and served by
//! [`Services::routes`]; the engine and the API only hold and mount them.

#[cfg(feature = "evm")]
pub mod evm;
pub mod file;
pub mod http;
pub mod json_event;
#[cfg(feature = "lightning")]
pub mod lightning;
#[cfg(feature = "postgres-source")]
pub mod postgres;

use serde::{Deserialize, Serialize};
use tributary_core::Source;
use tributary_plugin::{OpenApiRouter, ServiceContext};

/// What every source type's config provides; [`SourceConfig`] dispatches to it, so a new source
/// implements this for its config and adds one line to `source_types!` (below).
pub trait SourceType {
    /// The `type` as written in config (`file`).
    fn type_name(&self) -> &'static str;
    /// The source's unique name.
    fn name(&self) -> &str;
    /// Tenants that may read this source's events (`*` = all).
    fn tenants(&self) -> &[String];
    /// `stall_after_ms`: after how long without progress the source counts as stalled.
    fn stall_after_ms(&self) -> Option<u64>;
    /// Every problem of the type's own fields, each with its path relative to the source.
    fn problems(&self) -> Vec<(String, String)>;
    /// The running component.
    fn build(&self) -> BuiltSource;
}

/// The registry: one line per source type (its `type`, variant, config and cargo feature) makes the
/// [`SourceConfig`] enum and the dispatch to [`SourceType`].
macro_rules! source_types {
    ($($(#[doc = $doc:literal])* $name:literal => $variant:ident($config:ty), $cfg:meta;)*) => {
        /// A configured source (`[[sources]] type = "…"`).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub enum SourceConfig {
            $($(#[doc = $doc])* #[$cfg] #[serde(rename = $name)] $variant($config),)*
        }

        impl SourceConfig {
            /// The config of this source's type.
            fn source_type(&self) -> &dyn SourceType {
                match self {
                    $(#[$cfg] Self::$variant(config) => config,)*
                }
            }
        }
    };
}

source_types! {
    /// Events pushed over HTTP.
    "http" => Http(http::HttpSourceConfig), cfg(all());
    /// Newline-delimited JSON events read from a file.
    "file" => File(file::FileSourceConfig), cfg(all());
    /// Lightning gossip (BOLT #7) from Core Lightning: `gossip_store`, ZeroMQ collectors, imports.
    "lightning" => Lightning(lightning::LightningSourceConfig), cfg(feature = "lightning");
    /// PostgreSQL change capture: logical replication with `pgoutput`, table changes and outbox rows.
    /// (Boxed: the config is several times larger than the others.)
    "postgres" => Postgres(Box<postgres::PostgresSourceConfig>), cfg(feature = "postgres-source");
    /// Contract logs of one EVM chain from one or more JSON-RPC providers.
    "evm" => Evm(evm::EvmSourceConfig), cfg(feature = "evm");
}

impl<T: SourceType> SourceType for Box<T> {
    fn type_name(&self) -> &'static str {
        (**self).type_name()
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn tenants(&self) -> &[String] {
        (**self).tenants()
    }
    fn stall_after_ms(&self) -> Option<u64> {
        (**self).stall_after_ms()
    }
    fn problems(&self) -> Vec<(String, String)> {
        (**self).problems()
    }
    fn build(&self) -> BuiltSource {
        (**self).build()
    }
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
        self.source_type().name()
    }

    /// Tenants that may read this source's events (`*` = all).
    pub fn tenants(&self) -> &[String] {
        self.source_type().tenants()
    }

    /// Whether `tenant` may read this source's events.
    pub fn shared_with(&self, tenant: &str) -> bool {
        self.tenants().iter().any(|t| t == "*" || t == tenant)
    }

    /// After how long without progress the source counts as stalled.
    pub fn stall_after(&self) -> Option<std::time::Duration> {
        self.source_type()
            .stall_after_ms()
            .map(std::time::Duration::from_millis)
    }

    /// The `type` tag as written in the config.
    pub fn type_name(&self) -> &'static str {
        self.source_type().type_name()
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
        errors.extend(self.source_type().problems());
        errors
    }

    /// Builds the running component.
    pub fn build(&self) -> BuiltSource {
        self.source_type().build()
    }
}

/// Implements [`SourceType`] for a config struct with the common fields `name`, `tenants` and
/// `stall_after_ms`, an inherent `validate(&self) -> Vec<(String, String)>` and a builder.
macro_rules! common_source_fields {
    ($config:ty, $name:literal, |$c:ident| $build:expr) => {
        impl $crate::SourceType for $config {
            fn type_name(&self) -> &'static str {
                $name
            }
            fn name(&self) -> &str {
                &self.name
            }
            fn tenants(&self) -> &[String] {
                &self.tenants
            }
            fn stall_after_ms(&self) -> Option<u64> {
                self.stall_after_ms
            }
            fn problems(&self) -> Vec<(String, String)> {
                self.validate()
            }
            fn build(&self) -> $crate::BuiltSource {
                let $c = self;
                $build
            }
        }
    };
}

common_source_fields!(http::HttpSourceConfig, "http", |c| BuiltSource::Push(
    http::HttpSource::new(c.clone())
));
common_source_fields!(file::FileSourceConfig, "file", |c| BuiltSource::Task(Box::new(
    file::FileSource::new(c.clone())
)));
#[cfg(feature = "postgres-source")]
common_source_fields!(postgres::PostgresSourceConfig, "postgres", |c| BuiltSource::Task(
    Box::new(postgres::PostgresSource::new(c.clone()))
));
#[cfg(feature = "evm")]
common_source_fields!(evm::EvmSourceConfig, "evm", |c| BuiltSource::Task(Box::new(
    evm::EvmSource::new(c.clone())
)));
#[cfg(feature = "lightning")]
common_source_fields!(lightning::LightningSourceConfig, "lightning", |c| BuiltSource::Task(
    Box::new(lightning::LightningSource::new(c.clone()))
));

/// The background services of the configured sources, one per source type that has one, and the HTTP
/// routes they contribute (`/v1/<type>/…`).
#[derive(Clone, Default)]
pub struct Services {
    /// The channel graphs of the `lightning` sources.
    #[cfg(feature = "lightning")]
    pub lightning: lightning::routes::Lightning,
}

impl Services {
    /// Starts the services the configured `sources` need.
    pub fn start(sources: &[SourceConfig], cx: &ServiceContext) -> Self {
        #[cfg(not(feature = "lightning"))]
        let _ = (sources, cx);
        Self {
            #[cfg(feature = "lightning")]
            lightning: {
                let configs: std::collections::BTreeMap<String, lightning::routes::ImportSettings> = (sources.iter())
                    .filter_map(|s| match s {
                        SourceConfig::Lightning(c) => Some((
                            c.name.clone(),
                            lightning::routes::ImportSettings {
                                network: c.network,
                                max_waiting: c.max_waiting_updates,
                            },
                        )),
                        _ => None,
                    })
                    .collect();
                let names: Vec<String> = (sources.iter())
                    .filter(|s| matches!(s, SourceConfig::Lightning(_)))
                    .map(|s| s.name().to_owned())
                    .collect();
                lightning::routes::Lightning {
                    keeper: (!names.is_empty()).then(|| lightning::keeper::GraphKeeper::start(names, cx)),
                    sources: std::sync::Arc::new(configs),
                }
            },
        }
    }

    /// The routes of every source type built in, over these services (also when none of its sources is
    /// configured: its routes then answer 404 saying how to define one). With no services
    /// (`Services::default()`), the routes for the OpenAPI document.
    pub fn routes(&self) -> OpenApiRouter {
        let routes = OpenApiRouter::new();
        #[cfg(feature = "lightning")]
        let routes = routes.merge(lightning::routes::router(self.lightning.clone()));
        routes
    }
}
