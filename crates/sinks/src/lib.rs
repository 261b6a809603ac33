//! Sinks: where a subscription's events are delivered.
//!
//! Every sink is registered in exactly one place, the closed [`SinkConfig`] enum, and built by its one
//! [`SinkConfig::build`] `match`. A sink reports every attempt as an explicit
//! [`AttemptReport`](tributary_core::AttemptReport) (`Delivered | Retriable | Rejected`); retries, backoff
//! and dead-lettering belong to the engine.
//!
//! - [`http_client`]: the one guarded outbound HTTP client (timeouts, no redirects, SSRF guard that refuses
//!   private, loopback, link-local and similar addresses unless a sink allows private networks).
//! - [`webhook`]: the Standard Webhooks sink (`webhook-id`, `webhook-timestamp`, `webhook-signature`), its
//!   config, the signer and verifier, and secret generation.

pub mod http_client;
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
}

impl SinkConfig {
    /// A destination the SSRF guard will certainly refuse at delivery (decided without resolving names):
    /// the field, the host as written, and why (`loopback`, `private`, ...).
    pub fn refused_destination(&self) -> Option<(&'static str, String, &'static str)> {
        match self {
            SinkConfig::Webhook(config) => config.refused_destination().map(|(host, why)| ("url", host, why)),
        }
    }

    /// Builds the running sink.
    pub fn build(&self, cx: SinkContext) -> Result<Arc<dyn Sink>, SinkError> {
        match self {
            SinkConfig::Webhook(config) => Ok(Arc::new(config.build(cx)?)),
        }
    }

    /// Checks the config without building anything (for config loading and the API).
    pub fn validate(&self) -> Result<(), SinkError> {
        match self {
            SinkConfig::Webhook(config) => config.validate(),
        }
    }

    /// Whether the engine must generate (and persist) a signing secret and pass it in
    /// [`SinkContext::secret`], because the config names none.
    pub fn needs_generated_secret(&self) -> bool {
        match self {
            SinkConfig::Webhook(config) => config.secret.is_none(),
        }
    }

    /// The sink's type name as written in config (`webhook`).
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkConfig::Webhook(_) => "webhook",
        }
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
