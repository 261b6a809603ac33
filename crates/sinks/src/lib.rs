//! Sinks: where a subscription's events are delivered.
//!
//! Every sink is registered in exactly one place, one line of `sink_types!` in this file, which makes the
//! closed [`SinkConfig`] enum and dispatches to the [`SinkType`] its config implements. A sink reports
//! every attempt as an explicit [`AttemptReport`](tributary_core::AttemptReport) (`Delivered | Retriable |
//! Rejected | Pause`); retries, backoff and dead-lettering belong to the engine.
//!
//! - [`http_client`]: the one guarded outbound HTTP client (timeouts, no redirects, SSRF guard that refuses
//!   private, loopback, link-local and similar addresses unless a sink allows private networks).
//! - [`batch`]: the coalescer that turns concurrent deliveries into `deliver_batch` calls.
//! - [`postgres`] (feature `postgres`): rows of a PostgreSQL table, exactly once.
//! - [`webhook`]: the Standard Webhooks sink (`webhook-id`, `webhook-timestamp`, `webhook-signature`), its
//!   config, the signer and verifier, and secret generation.

pub mod batch;
pub mod format;
pub mod http_client;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
pub mod url;
pub mod webhook;

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tributary_core::Sink;

pub use webhook::{
    PreviousSecret, SecretError, VerifyError, WebhookConfig, WebhookSecret, WebhookSink, generate_secret, sign, verify,
    verify_headers,
};

/// What every sink type's config provides. [`SinkConfig`] dispatches each of its methods to the
/// config of its type, so a new sink implements this for its config and adds one line to
/// [`sink_types!`] (below).
pub trait SinkType {
    /// The `type` as written in config (`webhook`).
    fn type_name(&self) -> &'static str;
    /// Every problem of the config, each with its field, without building anything.
    fn problems(&self) -> Vec<SinkError>;
    /// The running sink.
    fn build_sink(&self, cx: SinkContext) -> Result<Arc<dyn Sink>, SinkError>;
    /// A destination the SSRF guard will certainly refuse at delivery: the field, the host as written,
    /// and why. The default (`None`) is for sinks that reach the operator's own network, whose address
    /// the operator chose.
    fn refused_destination(&self) -> Option<(&'static str, String, &'static str)> {
        None
    }
    /// Whether a tenant may create this sink through the API; the default: only the admin may (the
    /// sinks that reach systems inside the operator's network), unless `[limits.tenant_sinks]` grants
    /// the type.
    fn tenant_refusal(&self) -> Option<(&'static str, String)> {
        Some((
            "type",
            format!(
                "only the admin may create {} subscriptions (they reach systems inside the operator's network); tenants deliver with type = \"webhook\"",
                self.type_name()
            ),
        ))
    }
    /// Whether the engine must generate (and persist) a signing secret and pass it in
    /// [`SinkContext::secret`], because the config names none.
    fn needs_generated_secret(&self) -> bool {
        false
    }
}

/// The registry: one line per sink type (its `type`, variant, config and cargo feature) makes the
/// [`SinkConfig`] enum, [`SinkConfig::TYPES`] and the dispatch to [`SinkType`].
macro_rules! sink_types {
    ($($(#[doc = $doc:literal])* $name:literal => $variant:ident($config:ty), $cfg:meta;)*) => {
        /// The configuration of one subscription's sink: `[subscriptions.sink] type = "webhook"`.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", deny_unknown_fields)]
        pub enum SinkConfig {
            $($(#[doc = $doc])* #[$cfg] #[serde(rename = $name)] $variant($config),)*
        }

        impl SinkConfig {
            /// Every sink type of this build, as written in config.
            pub const TYPES: &[&str] = &[$(#[$cfg] $name,)*];

            /// The config of this sink's type.
            fn sink_type(&self) -> &dyn SinkType {
                match self {
                    $(#[$cfg] Self::$variant(config) => config,)*
                }
            }
        }
    };
}

sink_types! {
    /// Standard Webhooks: signed HTTP POSTs of JSON.
    "webhook" => Webhook(WebhookConfig), cfg(all());
    /// Entries of a Redis (or Valkey) stream.
    "redis" => Redis(redis::RedisConfig), cfg(feature = "redis");
    /// Rows of a PostgreSQL table.
    "postgres" => Postgres(postgres::PostgresConfig), cfg(feature = "postgres");
    /// Messages of a NATS JetStream stream.
    "nats" => Nats(nats::NatsConfig), cfg(feature = "nats");
    /// Records of a Kafka topic.
    "kafka" => Kafka(kafka::KafkaConfig), cfg(feature = "kafka");
}

impl SinkConfig {
    /// A destination the SSRF guard will certainly refuse at delivery (decided without resolving names):
    /// the field, the host as written, and why (`loopback`, `private`, ...).
    pub fn refused_destination(&self) -> Option<(&'static str, String, &'static str)> {
        self.sink_type().refused_destination()
    }

    /// Builds the running sink.
    pub fn build(&self, cx: SinkContext) -> Result<Arc<dyn Sink>, SinkError> {
        self.sink_type().build_sink(cx)
    }

    /// Every problem of the config, each with its field, without building anything (for config loading,
    /// `tributary validate` and the API).
    pub fn problems(&self) -> Vec<SinkError> {
        self.sink_type().problems()
    }

    /// The first of [`problems`](Self::problems), if any.
    pub fn validate(&self) -> Result<(), SinkError> {
        first_problem(self.problems())
    }

    /// Whether the engine must generate (and persist) a signing secret and pass it in
    /// [`SinkContext::secret`], because the config names none.
    pub fn needs_generated_secret(&self) -> bool {
        self.sink_type().needs_generated_secret()
    }

    /// The sink's type name as written in config (`webhook`).
    pub fn type_name(&self) -> &'static str {
        self.sink_type().type_name()
    }

    /// Why a tenant may not create this sink, if it may not: the field and the reason. Sinks that reach
    /// systems inside the operator's network (everything but the webhook) are the admin's; a webhook's
    /// `allow_private_networks` too.
    pub fn tenant_refusal(&self) -> Option<(&'static str, String)> {
        self.sink_type().tenant_refusal()
    }

    /// Whether the sink signs with secrets that the engine keeps (generates, carries over, rotates).
    pub fn has_secrets(&self) -> bool {
        matches!(self, SinkConfig::Webhook(_))
    }

    /// Gives the sink a new secret when it names none (a created subscription).
    pub fn ensure_secret(&mut self) {
        if let SinkConfig::Webhook(w) = self
            && w.secret.is_none()
        {
            w.secret = Some(generate_secret());
        }
    }

    /// Keeps the secrets of `old` when this config names none (an update without `secret`).
    pub fn keep_secrets_of(&mut self, old: &SinkConfig) {
        if let (SinkConfig::Webhook(w), SinkConfig::Webhook(old)) = (self, old)
            && w.secret.is_none()
        {
            w.secret = old.secret.clone();
            w.previous_secrets = old.previous_secrets.clone();
        }
    }

    /// Keeps the secret of a stored record that does not load (its `sink.secret`) when this config names
    /// none, else gives a new one (a broken subscription fixed by an update).
    pub fn keep_secret_of_record(&mut self, record: Option<&serde_json::Value>) {
        if let SinkConfig::Webhook(w) = self
            && w.secret.is_none()
        {
            w.secret = record
                .and_then(|r| r.get("sink"))
                .and_then(|s| s.get("secret"))
                .and_then(|s| s.as_str())
                .map(str::to_owned);
        }
        self.ensure_secret();
    }

    /// The current secret and the previous ones still signing, for a sink with secrets.
    pub fn secrets(&self) -> Option<(Option<&str>, &[PreviousSecret])> {
        match self {
            SinkConfig::Webhook(w) => Some((w.secret.as_deref(), &w.previous_secrets)),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// A new current secret (returned); the old one keeps signing until `expires_at`. `None` for a sink
    /// without secrets.
    pub fn rotate_secret(
        &mut self,
        now: tributary_core::Timestamp,
        expires_at: tributary_core::Timestamp,
    ) -> Option<String> {
        // Irrefutable in a build with no other sink type.
        #[allow(irrefutable_let_patterns)]
        let SinkConfig::Webhook(w) = self else {
            return None;
        };
        w.previous_secrets.retain(|p| p.expires_at > now);
        if let Some(current) = w.secret.take() {
            w.previous_secrets.push(PreviousSecret {
                secret: current,
                expires_at,
            });
        }
        // Many rotations within the overlap: the secrets expiring first stop signing early.
        w.previous_secrets.sort_by_key(|p| std::cmp::Reverse(p.expires_at));
        w.previous_secrets.truncate(webhook::config::MAX_PREVIOUS);
        let secret = generate_secret();
        w.secret = Some(secret.clone());
        Some(secret)
    }
}

/// What the engine hands to [`SinkConfig::build`]. Construct it with [`SinkContext::new`]; fields may be
/// added later.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SinkContext {
    /// The subscription's name.
    pub subscription: Arc<str>,
    /// The effective signing secret (`whsec_…`) when the sink's config names none: the engine generates one
    /// with [`generate_secret`] once, persists it and passes it here on every build. A secret in the
    /// sink's own config takes precedence.
    pub secret: Option<String>,
}

impl SinkContext {
    /// A context for the named subscription, with no generated secret.
    pub fn new(subscription: impl Into<Arc<str>>) -> Self {
        Self {
            subscription: subscription.into(),
            secret: None,
        }
    }

    /// Sets the generated secret used when the config has none.
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.secret = Some(secret.into());
        self
    }
}

/// Why a sink could not be configured, built or could not sign.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A config field is wrong; the message says what was expected and what was given.
    #[error("{field}: {message}")]
    Config {
        /// The field, as written in config (`url`, `headers.x-foo`).
        field: String,
        /// What was wrong and what to do.
        message: String,
    },
    /// A signing secret is malformed.
    #[error("{field}: {source}")]
    Secret {
        /// Where the secret came from (`secret`, `previous_secrets[0].secret`, `generated secret`).
        field: String,
        /// What is wrong with it.
        #[source]
        source: SecretError,
    },
    /// The HTTP client could not be built (for example no TLS roots available).
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Problems of a config, collected so that validation reports every one of them at once.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<SinkError>);

impl Problems {
    /// Runs one check; a failure is kept and the next check still runs.
    pub(crate) fn check(&mut self, check: impl FnOnce() -> Result<(), SinkError>) {
        if let Err(e) = check() {
            self.0.push(e);
        }
    }

    /// The problems found, in the order of the checks.
    pub(crate) fn into_vec(self) -> Vec<SinkError> {
        self.0
    }
}

/// `Ok` without problems, else the first.
pub(crate) fn first_problem(problems: Vec<SinkError>) -> Result<(), SinkError> {
    problems.into_iter().next().map_or(Ok(()), Err)
}

impl SinkError {
    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            message: message.into(),
        }
    }
}
