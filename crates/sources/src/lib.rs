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
//! - [`nostr`] (feature `nostr`): a verified archive of Nostr relays, one observation per relay that
//!   served an event.
//!
//! Every source type is registered once, one line of `source_types!` in this file, which makes the
//! [`SourceConfig`] enum and dispatches to the [`SourceType`] its config implements (`type_impl!`). The
//! fields every source has are parsed once, into [`SourceSpec`]. A source type with state of its own for
//! the whole node (the Lightning graph) adds a field to [`Services`], started by [`Services::start`] and served by
//! [`Services::routes`]; the engine and the API only hold and mount them.

#[cfg(feature = "evm")]
pub mod evm;
pub mod file;
pub mod http;
pub mod json_event;
#[cfg(feature = "lightning")]
pub mod lightning;
#[cfg(feature = "nostr")]
pub mod nostr;
#[cfg(feature = "postgres-source")]
pub mod postgres;

use serde::{Deserialize, Serialize};
use tributary_core::Source;
use tributary_plugin::{OpenApiRouter, ServiceContext};

/// What every source type's config provides; [`SourceConfig`] dispatches to it, so a new source
/// implements this for its config and adds one line to `source_types!` (below). The fields every source
/// has (`name`, `tenants`, `stall_after_ms`) are not the type's: they are parsed once, into
/// [`SourceSpec`].
pub trait SourceType {
    /// The `type` as written in config (`file`).
    fn type_name(&self) -> &'static str;
    /// Every problem of the type's own fields, each with its path relative to the source.
    fn problems(&self) -> Vec<(String, String)>;
    /// The running component of the source named `name`.
    fn build(&self, name: &str) -> BuiltSource;
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
    /// Events of Nostr relays, verified, with the relays that served them.
    "nostr" => Nostr(nostr::NostrSourceConfig), cfg(feature = "nostr");
}

impl<T: SourceType> SourceType for Box<T> {
    fn type_name(&self) -> &'static str {
        (**self).type_name()
    }
    fn problems(&self) -> Vec<(String, String)> {
        (**self).problems()
    }
    fn build(&self, name: &str) -> BuiltSource {
        (**self).build(name)
    }
}

/// A built source: either a task that pulls events, or a push endpoint that the API serves.
pub enum BuiltSource {
    /// Runs as a task.
    Task(Box<dyn Source>),
    /// Receives pushed batches through the API.
    Push(http::HttpSource),
}

/// `[[sources]]`: the fields every source has, parsed once, and its type's own config (`type` and the
/// type's keys). The config loader parses the two parts separately (so a type's unknown-field check
/// stays exact); the derived `Deserialize` reads the same shape in one go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceSpec {
    /// The source's unique name (letters, digits, `-`, `_`).
    pub name: String,
    /// Tenants that may read this source's events (`["*"]` for every tenant). Default: none (admin only).
    #[serde(default)]
    pub tenants: Vec<String>,
    /// Report the source as stalled in `/health` when it stores nothing for this long (ms). Default: never.
    #[serde(default)]
    pub stall_after_ms: Option<u64>,
    /// The type and its own keys.
    #[serde(flatten)]
    pub kind: SourceConfig,
}

/// The fields of [`SourceSpec`] every source has, as written in config.
pub const COMMON_FIELDS: [&str; 3] = ["name", "tenants", "stall_after_ms"];

/// The common fields alone (what the config loader parses before the type's own keys).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommonFields {
    /// See [`SourceSpec::name`].
    pub name: String,
    /// See [`SourceSpec::tenants`].
    #[serde(default)]
    pub tenants: Vec<String>,
    /// See [`SourceSpec::stall_after_ms`].
    #[serde(default)]
    pub stall_after_ms: Option<u64>,
}

impl SourceSpec {
    /// The common fields and the type's config, put together.
    pub fn new(common: CommonFields, kind: SourceConfig) -> Self {
        Self {
            name: common.name,
            tenants: common.tenants,
            stall_after_ms: common.stall_after_ms,
            kind,
        }
    }

    /// The source's unique name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Tenants that may read this source's events (`*` = all).
    pub fn tenants(&self) -> &[String] {
        &self.tenants
    }

    /// Whether `tenant` may read this source's events.
    pub fn shared_with(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|t| t == "*" || t == tenant)
    }

    /// After how long without progress the source counts as stalled.
    pub fn stall_after(&self) -> Option<std::time::Duration> {
        self.stall_after_ms.map(std::time::Duration::from_millis)
    }

    /// The `type` tag as written in the config.
    pub fn type_name(&self) -> &'static str {
        self.kind.source_type().type_name()
    }

    /// Checks the config, returning every problem with a path relative to the source.
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        let name = &self.name;
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
        errors.extend(self.kind.source_type().problems());
        errors
    }

    /// Builds the running component.
    pub fn build(&self) -> BuiltSource {
        self.kind.source_type().build(&self.name)
    }
}

/// Implements [`SourceType`] for a config struct with an inherent `validate(&self) -> Vec<(String,
/// String)>` and a builder given the source's name.
macro_rules! type_impl {
    ($config:ty, $name:literal, |$c:ident, $n:ident| $build:expr) => {
        impl $crate::SourceType for $config {
            fn type_name(&self) -> &'static str {
                $name
            }
            fn problems(&self) -> Vec<(String, String)> {
                self.validate()
            }
            fn build(&self, $n: &str) -> $crate::BuiltSource {
                let $c = self;
                $build
            }
        }
    };
}

type_impl!(http::HttpSourceConfig, "http", |c, name| BuiltSource::Push(
    http::HttpSource::new(name, c.clone())
));
type_impl!(file::FileSourceConfig, "file", |c, _name| BuiltSource::Task(Box::new(
    file::FileSource::new(c.clone())
)));
#[cfg(feature = "postgres-source")]
type_impl!(
    postgres::PostgresSourceConfig,
    "postgres",
    |c, _name| BuiltSource::Task(Box::new(postgres::PostgresSource::new(c.clone())))
);
#[cfg(feature = "evm")]
type_impl!(evm::EvmSourceConfig, "evm", |c, _name| BuiltSource::Task(Box::new(
    evm::EvmSource::new(c.clone())
)));
#[cfg(feature = "nostr")]
type_impl!(nostr::NostrSourceConfig, "nostr", |c, _name| BuiltSource::Task(
    Box::new(nostr::NostrSource::new(c.clone()))
));
#[cfg(feature = "lightning")]
type_impl!(lightning::LightningSourceConfig, "lightning", |c, _name| {
    BuiltSource::Task(Box::new(lightning::LightningSource::new(c.clone())))
});

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
    pub fn start(sources: &[SourceSpec], cx: &ServiceContext) -> Self {
        #[cfg(not(feature = "lightning"))]
        let _ = (sources, cx);
        Self {
            #[cfg(feature = "lightning")]
            lightning: {
                let configs: std::collections::BTreeMap<String, lightning::routes::ImportSettings> = (sources.iter())
                    .filter_map(|s| match &s.kind {
                        SourceConfig::Lightning(c) => Some((
                            s.name.clone(),
                            lightning::routes::ImportSettings {
                                network: c.network,
                                max_waiting: c.max_waiting_updates,
                            },
                        )),
                        _ => None,
                    })
                    .collect();
                let names: Vec<String> = (sources.iter())
                    .filter(|s| matches!(s.kind, SourceConfig::Lightning(_)))
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
