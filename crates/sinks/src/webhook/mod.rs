//! The Standard Webhooks sink (<https://www.standardwebhooks.com>): every event is one signed JSON POST.
//!
//! - [`config`]: [`WebhookConfig`] and [`PreviousSecret`] (URL, secrets and rotation, extra headers,
//!   timeouts, `allow_private_networks`) and their validation.
//! - [`payload`]: the body formats, `standard`, ln-history's `platform_event` and EthHook's `ethhook`.
//! - [`signing`]: secrets (`whsec_…`), [`sign`], [`verify`] / [`verify_headers`] and [`generate_secret`].
//! - [`sink`]: [`WebhookSink`], which renders the body, signs it, sends it through the guarded client and
//!   classifies the outcome into an `AttemptReport`.
//! - [`receiver`] (feature `receiver`): a receiver that verifies every delivery's signature (demo, bench,
//!   tests).

pub mod config;
pub mod payload;
#[cfg(feature = "receiver")]
pub mod receiver;
pub mod signing;
pub mod sink;

#[cfg(test)]
mod tests;

pub use config::{PreviousSecret, WebhookConfig};
pub use payload::PayloadFormat;
pub use signing::{
    DEFAULT_TOLERANCE, SecretError, VerifyError, WebhookSecret, generate_secret, sign, verify, verify_headers,
};
pub use sink::WebhookSink;
