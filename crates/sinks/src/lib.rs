//! Sinks: where a subscription's events are delivered.
//!
//! Every sink is registered in exactly one place, the closed [`SinkConfig`] enum, and built by its one
//! [`SinkConfig::build`] `match`. A sink reports every attempt as an explicit
//! [`AttemptReport`](tributary_core::AttemptReport) (`Delivered | Retriable | Rejected`); retries, backoff
//! and dead-lettering belong to the engine.
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

/// The configuration of one subscription's sink: `[subscriptions.sink] type = "webhook"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// Standard Webhooks: signed HTTP POSTs of JSON.
    Webhook(WebhookConfig),
    /// Entries of a Redis (or Valkey) stream.
    #[cfg(feature = "redis")]
    Redis(redis::RedisConfig),
    /// Rows of a PostgreSQL table.
    #[cfg(feature = "postgres")]
    Postgres(postgres::PostgresConfig),
    /// Messages of a NATS JetStream stream.
    #[cfg(feature = "nats")]
    Nats(nats::NatsConfig),
    /// Records of a Kafka topic.
    #[cfg(feature = "kafka")]
    Kafka(kafka::KafkaConfig),
}

impl SinkConfig {
    /// Every sink type of this build, as written in config.
    pub const TYPES: &[&str] = &[
        "webhook",
        #[cfg(feature = "redis")]
        "redis",
        #[cfg(feature = "postgres")]
        "postgres",
        #[cfg(feature = "nats")]
        "nats",
        #[cfg(feature = "kafka")]
        "kafka",
    ];

    /// A destination the SSRF guard will certainly refuse at delivery (decided without resolving names):
    /// the field, the host as written, and why (`loopback`, `private`, ...).
    pub fn refused_destination(&self) -> Option<(&'static str, String, &'static str)> {
        match self {
            SinkConfig::Webhook(config) => config.refused_destination().map(|(host, why)| ("url", host, why)),
            // The operator chose the address of the sinks that reach its own network.
            #[cfg(feature = "redis")]
            SinkConfig::Redis(_) => None,
            #[cfg(feature = "postgres")]
            SinkConfig::Postgres(_) => None,
            #[cfg(feature = "nats")]
            SinkConfig::Nats(_) => None,
            #[cfg(feature = "kafka")]
            SinkConfig::Kafka(_) => None,
        }
    }

    /// Builds the running sink.
    pub fn build(&self, cx: SinkContext) -> Result<Arc<dyn Sink>, SinkError> {
        match self {
            SinkConfig::Webhook(config) => Ok(Arc::new(config.build(cx)?)),
            #[cfg(feature = "redis")]
            SinkConfig::Redis(config) => Ok(Arc::new(config.build()?)),
            #[cfg(feature = "postgres")]
            SinkConfig::Postgres(config) => Ok(Arc::new(config.build()?)),
            #[cfg(feature = "nats")]
            SinkConfig::Nats(config) => Ok(Arc::new(config.build()?)),
            #[cfg(feature = "kafka")]
            SinkConfig::Kafka(config) => Ok(Arc::new(config.build()?)),
        }
    }

    /// Checks the config without building anything (for config loading and the API).
    pub fn validate(&self) -> Result<(), SinkError> {
        match self {
            SinkConfig::Webhook(config) => config.validate(),
            #[cfg(feature = "redis")]
            SinkConfig::Redis(config) => config.validate(),
            #[cfg(feature = "postgres")]
            SinkConfig::Postgres(config) => config.validate(),
            #[cfg(feature = "nats")]
            SinkConfig::Nats(config) => config.validate(),
            #[cfg(feature = "kafka")]
            SinkConfig::Kafka(config) => config.validate(),
        }
    }

    /// Whether the engine must generate (and persist) a signing secret and pass it in
    /// [`SinkContext::secret`], because the config names none.
    pub fn needs_generated_secret(&self) -> bool {
        match self {
            SinkConfig::Webhook(config) => config.secret.is_none(),
            #[cfg(feature = "redis")]
            SinkConfig::Redis(_) => false,
            #[cfg(feature = "postgres")]
            SinkConfig::Postgres(_) => false,
            #[cfg(feature = "nats")]
            SinkConfig::Nats(_) => false,
            #[cfg(feature = "kafka")]
            SinkConfig::Kafka(_) => false,
        }
    }

    /// The sink's type name as written in config (`webhook`).
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkConfig::Webhook(_) => "webhook",
            #[cfg(feature = "redis")]
            SinkConfig::Redis(_) => "redis",
            #[cfg(feature = "postgres")]
            SinkConfig::Postgres(_) => "postgres",
            #[cfg(feature = "nats")]
            SinkConfig::Nats(_) => "nats",
            #[cfg(feature = "kafka")]
            SinkConfig::Kafka(_) => "kafka",
        }
    }

    /// Why a tenant may not create this sink, if it may not: the field and the reason. Sinks that reach
    /// systems inside the operator's network (everything but the webhook) are the admin's; a webhook's
    /// `allow_private_networks` too.
    pub fn tenant_refusal(&self) -> Option<(&'static str, String)> {
        match self {
            SinkConfig::Webhook(w) if w.allow_private_networks => Some((
                "allow_private_networks",
                "only the admin may allow private networks".into(),
            )),
            SinkConfig::Webhook(_) => None,
            #[allow(unreachable_patterns)]
            other => Some((
                "type",
                format!(
                    "only the admin may create {} subscriptions (they reach systems inside the operator's network); tenants deliver with type = \"webhook\"",
                    other.type_name()
                ),
            )),
        }
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

impl SinkError {
    pub(crate) fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            message: message.into(),
        }
    }
}
